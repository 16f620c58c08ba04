"""The API's endpoints: each parses its request, calls the rule the pages call, in one transaction, and answers
JSON; every refusal is problem+json (tracker.api.problems). The description is at /api/v1/openapi.json."""

from __future__ import annotations

import io
from collections.abc import Callable
from http import HTTPStatus
from typing import TypeVar

from flask import Flask, current_app, g, jsonify, request, send_file
from flask_smorest import Api, Blueprint
from flask_smorest.utils import prepare_response
from marshmallow import RAISE
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, joinedload
from werkzeug.exceptions import HTTPException

from .. import queries
from ..accounts import users
from ..custody import approvals, handover, policy, rules
from ..custody import operations as custody
from ..desk import flags
from ..errors import ApprovalRequired, DomainError
from ..http import attempt, client_address, csrf, db, now
from ..i18n import gettext
from ..items import register
from ..labels import layouts, qr, render
from ..labels import service as label_service
from ..models import ApiScope, Checkout, Event, Flag, HandoverOffer, Item, LabelToken, Role, User
from . import auth, schemas
from .problems import MEDIA_TYPE, Problem, from_domain, from_http, response

T = TypeVar("T")
URL_PREFIX = "/api/v1"

blp = Blueprint("api", __name__, url_prefix=URL_PREFIX, description="Items, custody, overdue flags, events, users")


class TrackerApi(Api):
    """flask-smorest, answering errors as problem+json and only on the API's own paths (the pages keep theirs)."""

    ERROR_SCHEMA = schemas.ProblemSchema

    def _register_error_handlers(self) -> None:
        """The blueprint handles its errors itself; smorest's app-wide handler would turn the pages' 404s into JSON."""

    def _register_responses(self) -> None:
        for status in HTTPStatus:
            if 400 <= status < 600:
                doc = {"description": status.phrase, "schema": self.ERROR_SCHEMA}
                prepare_response(doc, self.spec, MEDIA_TYPE)
                self.spec.components.response(status.name, doc, lazy=True)
        doc = {"description": "An error, as problem+json", "schema": self.ERROR_SCHEMA}
        prepare_response(doc, self.spec, MEDIA_TYPE)
        self.spec.components.response("DEFAULT_ERROR", doc, lazy=True)


def problems(*codes: int):
    """Document the problem responses an endpoint can give, besides 401 and 429 which every one can."""

    def wrap(view):
        for code in sorted({401, 429, *codes}, reverse=True):
            view = blp.alt_response(code, response=HTTPStatus(code).name)(view)
        return view

    return wrap


# --- plumbing ------------------------------------------------------------------------------------------------------


def me() -> User:
    return auth.user()


def _policy() -> policy.Policy:
    return policy.from_config(current_app.config)


def perform(action: Callable[[Session], T]) -> T:
    """Run one rule in the request's one transaction (the pages' `attempt`); a refusal answers as a problem."""
    with attempt(explain=False) as done:
        result = action(db())
    if not done:
        raise from_domain(done.error)
    return result


def _answer(schema: type, value, status: int):
    """An answer under one of an endpoint's other documented statuses (smorest dumps only with the main schema)."""
    resp = jsonify(schema().dump(value))
    resp.status_code = status
    return resp


def _not_found(what: str) -> Problem:
    return Problem(404, what, kind="not-found")


def _item(tag: str) -> Item:
    found = queries.item_by_tag(db(), tag) if len(tag) <= 64 else None
    if found is None:
        raise _not_found(gettext("No item has the asset tag %(tag)s.", tag=tag[:40]))
    return found


def _labelled(token: str) -> Item:
    label: LabelToken | None = queries.label_by_token(db(), token) if len(token) <= 64 else None
    if label is None:
        raise _not_found(gettext("This is not one of our labels."))
    if label.replaced_at is not None:
        raise Problem(410, gettext("This label was replaced by a new one; use the new label."), kind="label-replaced")
    return label.item


def _by_id(model: type[T], ident: int) -> T | None:
    return db().get(model, ident) if 0 < ident <= schemas.MAX_ID else None


def _user_by_email(email: str, field: str) -> User:
    found = users.find_by_email(db(), email)
    if found is None:
        raise Problem(422, gettext("No user has that e-mail address."), kind="invalid",
                      errors={field: [gettext("No user has that e-mail address.")]})
    return found


def _page(stmt, args: dict) -> dict:
    page = queries.paginate(db(), stmt, args["page"], args["per_page"])
    return {"rows": page.rows, "page": page.page, "pages": page.pages, "total": page.total}


def _may_see(co: Checkout | None) -> bool:
    return co is not None and (me().privileged or co.holder_id == me().id)


class Shown:
    """A row as the API shows it: the object's own attributes plus what the request adds (an item's status, who
    holds it where the caller may see that, a token's scopes), without setting anything on the ORM object."""

    def __init__(self, obj, **extra):
        self._obj, self._extra = obj, extra

    def __getattr__(self, name: str):
        return self._extra[name] if name in self._extra else getattr(self._obj, name)


def _with_status(items: list[Item]) -> list[Shown]:
    """Each item with its status and, where the caller may see it, its open check-out (one query for all)."""
    open_by_item = queries.open_checkouts_by_item(db(), [i.id for i in items])
    shown = []
    for it in items:
        co = open_by_item.get(it.id)
        shown.append(Shown(it, status="retired" if it.retired else "out" if co is not None else "in",
                           checkout=co if _may_see(co) else None))
    return shown


# --- items ---------------------------------------------------------------------------------------------------------


@blp.get("/items")
@auth.requires(ApiScope.read)
@blp.arguments(schemas.ItemQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.ItemPage)
@problems(403)
def list_items(args):
    """Items in the register, by asset tag; filter by kind, data class, status or text."""
    stmt = queries.items_stmt(q=args["q"], kind=args.get("kind", ""), status=args["status"],
                              data_class=args.get("data_class", ""))
    page = _page(stmt, args)
    page["rows"] = _with_status(page["rows"])
    return page


@blp.get("/items/<tag>")
@auth.requires(ApiScope.read)
@blp.response(200, schemas.ItemSchema)
@problems(403, 404)
def get_item(tag: str):
    """One item by its asset tag (typed forms such as USB-2 find USB-0002), with who holds it if you may see that."""
    return _with_status([_item(tag)])[0]


def _item_values(item: Item | None, body: dict) -> dict:
    """The register's raw values: the item's own (for an update) overlaid with what the request gives."""
    values = {} if item is None else {
        "kind": item.kind.value, "name": item.name, "asset_tag": item.asset_tag, "serial": item.serial,
        "department": item.department, "data_class": item.data_class.value, "encrypted": item.encrypted,
        "people_count": item.people_count, "notes": item.notes, "bag": item.bag.asset_tag if item.bag else None,
        "encryption_method": item.encryption_method,
        "storage_place": item.home_place.name if item.home_place else None, "site": item.site.name if item.site else None}
    if item is not None and "site" in body and "storage_place" not in body:
        values.pop("storage_place")  # another site: its place is named anew, or none
    return {**values, **body}


@blp.post("/items")
@auth.requires(ApiScope.admin, Role.admin)
@blp.arguments(schemas.ItemCreate)
@blp.response(201, schemas.ItemSchema)
@problems(400, 403)
def create_item(body):
    """Register an item (admins); it gets the next free asset tag of its kind unless one is given, and a label."""
    item = perform(lambda s: register.create(s, now(), register.validate(_item_values(None, body)), me(),
                                             source=client_address()))
    return _with_status([item])[0]


@blp.patch("/items/<tag>")
@auth.requires(ApiScope.admin, Role.admin)
@blp.arguments(schemas.ItemUpdate)
@blp.response(200, schemas.ItemSchema)
@problems(400, 403, 404)
def update_item(body, tag: str):
    """Change an item's details (admins); fields left out keep their values."""
    item = _item(tag)
    item = perform(lambda s: register.update(s, now(), item, register.validate(_item_values(item, body)), me(),
                                             source=client_address()))
    return _with_status([item])[0]


@blp.post("/items/<tag>/retire")
@auth.requires(ApiScope.admin, Role.admin)
@blp.response(200, schemas.ItemSchema)
@problems(403, 404)
def retire_item(tag: str):
    """Take an item out of service (admins); an item that is out must come back first."""
    item = _item(tag)
    item = perform(lambda s: register.retire(s, now(), item, me(), source=client_address()))
    return _with_status([item])[0]


@blp.get("/items/<tag>/label")
@auth.requires(ApiScope.admin, Role.admin)
@blp.response(200, schemas.LabelSchema)
@problems(403, 404)
def get_label(tag: str):
    """The item's current label token and the address its QR code holds (admins: whoever has it can scan it)."""
    item = _item(tag)
    token = queries.current_tokens(db(), [item.id]).get(item.id)
    if token is None:
        raise _not_found(gettext("This item has no label yet."))
    return _label(item, token)


@blp.post("/items/<tag>/label")
@auth.requires(ApiScope.admin, Role.admin)
@blp.response(201, schemas.LabelSchema)
@problems(403, 404)
def reissue_label(tag: str):
    """Give the item a new label token (admins); the old label stops working and says so when scanned."""
    item = _item(tag)
    label = perform(lambda s: register.issue_label(s, now(), item, me(), source=client_address()))
    return _label(item, label.token)


@blp.get("/items/<tag>/label.png")
@auth.requires(ApiScope.admin, Role.admin)
@blp.arguments(schemas.LabelFileQuery, location="query", unknown=RAISE)
@blp.response(200, {"type": "string", "contentMediaType": "image/png"}, content_type="image/png",
              description="The label as a 300 dpi PNG")
@problems(403, 404)
def label_file(args, tag: str):
    """The item's label as a PNG for a sheet layout or a label printer (admins), as the labels page previews it."""
    item = _item(tag)
    layout = layouts.get(args["layout"])
    opts = label_service.options_from(current_app.config, show_name=args["show_name"])
    data = next(label_service.label_data(db(), label_service.ids_stmt([item.id]), opts), None)
    if data is None:
        raise _not_found(gettext("This item has no label yet."))
    img = (render.printer_png(data, layout) if isinstance(layout, layouts.Printer)
           else render.render_png(data, layout.label_w, layout.label_h))
    return send_file(io.BytesIO(render.png_bytes(img)), mimetype="image/png", download_name=f"{item.asset_tag}.png")


def _label(item: Item, token: str) -> dict:
    return {"asset_tag": item.asset_tag, "token": token, "url": qr.label_url(current_app.config["BASE_URL"], token)}


# --- custody: by asset tag or by label token --------------------------------------------------------------------------


def _check_out(item: Item, body: dict):
    holder = me()
    if body.get("holder"):
        if not me().privileged:
            raise Problem(403, gettext("Only the security desk can check an item out for someone else."),
                          kind="forbidden")
        holder = _user_by_email(body["holder"], "holder")
    pol = _policy().for_item(item)  # the item's site's clock
    # No due time: today's day end, or earlier where the item's take-out rules cap it (a curfew, a maximum).
    due = body.get("due_at") or rules.due_by(rules.governing(db(), item, pol), now(), pol)
    args = dict(item=item, holder=holder, due_at=due, purpose=body["purpose"], destination=body["destination"],
                reason=body["reason"], policy=pol, handling_ack=body["handling_ack"], source=client_address())
    with attempt(explain=False) as done:  # the pages' take-out: an approval in advance for today is used
        co = approvals.take_out(db(), now(), actor=me(), **args)
    error = done.error
    if isinstance(error, ApprovalRequired):  # as on the pages: the take-out waits for its approval
        req = perform(lambda s: approvals.request_checkout(s, now(), **args))
        return _answer(schemas.PendingSchema, {"request_id": req.id, "status": req.status.value,
                                               "asset_tag": item.asset_tag}, 202)
    if error is not None:
        raise from_domain(error)
    return co, 201


def _return(item: Item, body: dict):
    present = None
    if body.get("present") is not None:
        tags = {c.asset_tag: c.id for c in item.contents}
        unknown = [t for t in body["present"] if t.upper() not in tags]
        if unknown:
            raise Problem(422, gettext("Not in this bag: %(tags)s", tags=", ".join(unknown)[:200]), kind="invalid",
                          errors={"present": [gettext("Not in this bag: %(tags)s", tags=", ".join(unknown)[:200])]})
        present = {tags[t.upper()] for t in body["present"]}
    result = perform(lambda s: custody.return_item(s, now(), item=item, actor=me(), present=present, policy=_policy(),
                                                   erasure=body.get("erasure"), erasure_method=body.get("erasure_method"),
                                                   source=client_address()))
    return {"checkout": result.checkout, "returned": [i.asset_tag for i in result.returned],
            "missing": [i.asset_tag for i in result.missing]}


def _hand_over(item: Item, body: dict):
    """As on the pages: the holder (or the desk for them) offers, and custody moves when the receiver accepts
    (202 with the offer); the desk may move it at once with `direct` (200 with the new check-out)."""
    to = _user_by_email(body["to"], "to")
    if body.get("direct"):
        return _answer(schemas.CheckoutSchema, perform(lambda s: custody.hand_over(
            s, now(), item=item, to=to, actor=me(), direct=True, shown_checkout_id=body.get("checkout_id"),
            source=client_address())), 200)
    return perform(lambda s: handover.offer(s, now(), item=item, to=to, actor=me(), policy=_policy(),
                                            shown_checkout_id=body.get("checkout_id"), source=client_address())), 202


def _offer(offer_id: int) -> HandoverOffer:
    """The offer, for its receiver, its giver and the security desk; to anyone else it does not exist."""
    found = db().get(HandoverOffer, offer_id) if offer_id <= schemas.MAX_ID else None
    if found is None or (me().id not in (found.to_user_id, found.from_user_id, found.offered_by_id)
                         and not me().privileged):
        raise _not_found(gettext("No such hand-over offer."))
    return found


CUSTODY_PROBLEMS = (403, 404, 409)


@blp.post("/items/<tag>/checkout")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.CheckoutRequestBody)
@blp.response(201, schemas.CheckoutSchema)
@blp.alt_response(202, schema=schemas.PendingSchema, success=True, description="Waiting for approval")
@problems(400, *CUSTODY_PROBLEMS)
def check_out_by_tag(body, tag: str):
    """Take an item out (for yourself; the desk may name a holder). 409 if it is out, saying by whom since when."""
    return _check_out(_item(tag), body)


@blp.post("/labels/<token>/checkout")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.CheckoutRequestBody)
@blp.response(201, schemas.CheckoutSchema)
@blp.alt_response(202, schema=schemas.PendingSchema, success=True, description="Waiting for approval")
@problems(400, 410, *CUSTODY_PROBLEMS)
def check_out_by_label(body, token: str):
    """Take out the item a label's token names (the token in the label's QR code)."""
    return _check_out(_labelled(token), body)


@blp.post("/items/<tag>/return")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.ReturnRequestBody)
@blp.response(200, schemas.ReturnSchema)
@problems(400, *CUSTODY_PROBLEMS)
def return_by_tag(body, tag: str):
    """Bring an item back (yours; the desk may return anyone's); a bag's contents not listed stay out as missing."""
    return _return(_item(tag), body)


@blp.post("/labels/<token>/return")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.ReturnRequestBody)
@blp.response(200, schemas.ReturnSchema)
@problems(400, 410, *CUSTODY_PROBLEMS)
def return_by_label(body, token: str):
    """Bring back the item a label's token names."""
    return _return(_labelled(token), body)


@blp.post("/items/<tag>/handover")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.HandoverRequestBody)
@blp.response(202, schemas.OfferSchema, description="Offered: the holder keeps it until the receiver accepts")
@blp.alt_response(200, schema=schemas.CheckoutSchema, success=True, description="Moved directly by the desk")
@problems(400, 422, *CUSTODY_PROBLEMS)
def hand_over_by_tag(body, tag: str):
    """Offer an item that is out to a colleague (its holder, or the desk for them); it moves when they accept.
    The desk may move it at once with `direct`."""
    return _hand_over(_item(tag), body)


@blp.post("/labels/<token>/handover")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.HandoverRequestBody)
@blp.response(202, schemas.OfferSchema, description="Offered: the holder keeps it until the receiver accepts")
@blp.alt_response(200, schema=schemas.CheckoutSchema, success=True, description="Moved directly by the desk")
@problems(400, 410, 422, *CUSTODY_PROBLEMS)
def hand_over_by_label(body, token: str):
    """Offer the item a label's token names to a colleague (as by asset tag)."""
    return _hand_over(_labelled(token), body)


@blp.get("/handovers")
@auth.requires(ApiScope.read)
@blp.response(200, schemas.OfferSchema(many=True))
@problems()
def offers_for_me():
    """The hand-over offers waiting for you to accept today, oldest first."""
    return handover.waiting_for(db(), me(), now(), _policy())


@blp.post("/handovers/<int:offer_id>/accept")
@auth.requires(ApiScope.act)
@blp.arguments(schemas.AcceptOfferBody)
@blp.response(200, schemas.CheckoutSchema)
@problems(400, 422, *CUSTODY_PROBLEMS)
def accept_offer(body, offer_id: int):
    """Take the item offered to you (ticking the handling rules where its class asks): custody moves to you."""
    offer = _offer(offer_id)
    return perform(lambda s: handover.accept(s, now(), offer=offer, actor=me(), handling_ack=body["handling_ack"],
                                             policy=_policy(), source=client_address()))


@blp.post("/handovers/<int:offer_id>/decline")
@auth.requires(ApiScope.act)
@blp.response(200, schemas.OfferSchema)
@problems(400, 422, *CUSTODY_PROBLEMS)
def decline_offer(offer_id: int):
    """Say no to an offer made to you: the giver keeps the item."""
    offer = _offer(offer_id)
    return perform(lambda s: handover.decline(s, now(), offer=offer, actor=me(), source=client_address()))


@blp.post("/handovers/<int:offer_id>/cancel")
@auth.requires(ApiScope.act)
@blp.response(200, schemas.OfferSchema)
@problems(400, 422, *CUSTODY_PROBLEMS)
def cancel_offer(offer_id: int):
    """Take back an offer you made (or, for the desk, any offer) before it is accepted."""
    offer = _offer(offer_id)
    return perform(lambda s: handover.cancel(s, now(), offer=offer, actor=me(), source=client_address()))


# --- what is out ----------------------------------------------------------------------------------------------------


@blp.get("/checkouts")
@auth.requires(ApiScope.read)
@blp.arguments(schemas.CheckoutQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.CheckoutPage)
@problems(403)
def list_checkouts(args):
    """What is out now, by due time: everything for the desk, your own for anyone else."""
    moment = now()
    if me().privileged:
        stmt = queries.desk_stmt(moment, state="overdue" if args["overdue"] else "")
    else:
        stmt = (select(Checkout).options(joinedload(Checkout.item), joinedload(Checkout.holder))
                .where(Checkout.holder_id == me().id, Checkout.returned_at.is_(None))
                .order_by(Checkout.due_at, Checkout.id))
        if args["overdue"]:
            stmt = stmt.where(Checkout.due_at <= moment)
    return _page(stmt, args)


@blp.get("/checkouts/<int:checkout_id>")
@auth.requires(ApiScope.read)
@blp.response(200, schemas.CheckoutSchema)
@problems(403, 404)
def get_checkout(checkout_id: int):
    """One check-out, open or ended: yours, or anyone's for the desk (404 for someone else's)."""
    co = _by_id(Checkout, checkout_id)
    if co is None or not _may_see(co):
        raise _not_found(gettext("There is no such check-out."))
    return co


# --- overdue flags ---------------------------------------------------------------------------------------------------

DESK = (Role.security, Role.admin)


def _flag(flag_id: int) -> Flag:
    found = _by_id(Flag, flag_id)
    if found is None:
        raise _not_found(gettext("There is no such flag."))
    return found


@blp.get("/flags")
@auth.requires(ApiScope.read, *DESK)
@blp.arguments(schemas.FlagQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.FlagPage)
@problems(403)
def list_flags(args):
    """Overdue flags (the desk): open ones by default, oldest first."""
    stmt = select(Flag).options(joinedload(Flag.checkout).joinedload(Checkout.item),
                                joinedload(Flag.checkout).joinedload(Checkout.holder))
    if args["status"] == "open":
        stmt = stmt.where(Flag.status.in_(flags.OPEN))
    elif args["status"] != "all":
        stmt = stmt.where(Flag.status == args["status"])
    return _page(stmt.order_by(Flag.created_at, Flag.id), args)


@blp.post("/flags/<int:flag_id>/acknowledge")
@auth.requires(ApiScope.act, *DESK)
@blp.arguments(schemas.AcknowledgeBody)
@blp.response(200, schemas.FlagSchema)
@problems(400, 403, 404)
def acknowledge_flag(body, flag_id: int):
    """Say the desk is on it, with a note and maybe a new due time."""
    flag = _flag(flag_id)
    return perform(lambda s: flags.acknowledge(s, now(), flag, me(), body["note"], new_due=body.get("new_due"),
                                               source=client_address()))


@blp.post("/flags/<int:flag_id>/resolve")
@auth.requires(ApiScope.act, *DESK)
@blp.arguments(schemas.ResolveBody)
@blp.response(200, schemas.FlagSchema)
@problems(400, 403, 404)
def resolve_flag(body, flag_id: int):
    """Close a flag: the item came back (it is returned now) or someone confirmed it is safe."""
    flag = _flag(flag_id)
    return perform(lambda s: flags.resolve(s, now(), flag, me(), body["how"], confirmed_by=body["confirmed_by"],
                                           note=body["note"], source=client_address(), policy=_policy()))


# --- the audit trail -----------------------------------------------------------------------------------------------


@blp.get("/events")
@auth.requires(ApiScope.read, *DESK)
@blp.arguments(schemas.EventQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.EventPage)
@problems(403, 404)
def list_events(args):
    """The audit trail in chain order, with each event's hash and its predecessor's (verify the chain yourself)."""
    stmt = select(Event).order_by(Event.seq)
    if args.get("item"):
        stmt = stmt.where(Event.item_id == _item(args["item"]).id)
    if args.get("since"):
        stmt = stmt.where(Event.at >= args["since"])
    if args.get("until"):
        stmt = stmt.where(Event.at < args["until"])
    return _page(stmt, args)


# --- users ---------------------------------------------------------------------------------------------------------


@blp.get("/me")
@auth.requires(ApiScope.read)
@blp.response(200, schemas.MeSchema)
@problems(403)
def whoami():
    """The token's user and its scopes."""
    return Shown(me(), scopes=sorted(s.value for s in g.api_scopes))


@blp.get("/users")
@auth.requires(ApiScope.admin, Role.admin)
@blp.arguments(schemas.UserQuery, location="query", unknown=RAISE)
@blp.response(200, schemas.UserPage)
@problems(403)
def list_users(args):
    """Every account (admins), active first, by name."""
    return _page(queries.users_stmt(args["q"]), args)


@blp.get("/users/<int:user_id>")
@auth.requires(ApiScope.admin, Role.admin)
@blp.response(200, schemas.UserSchema)
@problems(403, 404)
def get_user(user_id: int):
    """One account (admins)."""
    found = _by_id(User, user_id)
    if found is None:
        raise _not_found(gettext("There is no such user."))
    return found


# --- errors, headers, registration ----------------------------------------------------------------------------------


@blp.before_request
def _authenticate():
    auth.authenticate()


@blp.after_request
def _private(resp):
    resp.headers["Cache-Control"] = "no-store"
    return resp


@blp.errorhandler(Problem)
def _problem(problem: Problem):
    return response(problem)


@blp.errorhandler(DomainError)
def _refused(err: DomainError):
    return response(from_domain(err))


@blp.errorhandler(OperationalError)
def _busy(_err: OperationalError):
    return response(Problem(503, gettext("The database is busy. Nothing was recorded; please try again."),
                            headers={"Retry-After": "5"}))


@blp.errorhandler(HTTPException)
def _http(exc: HTTPException):
    return response(from_http(exc))


def _unrouted():
    """An API address with no endpoint, or a method it does not take: a problem, not the pages' HTML."""
    err = request.routing_exception
    if err is not None and auth.is_api_path(request.path) and isinstance(err, HTTPException):
        return response(from_http(err))
    return None


def init_app(app: Flask) -> None:
    app.config.setdefault("API_TITLE", "Custody tracker API")
    app.config.setdefault("API_VERSION", "1")
    app.config.setdefault("OPENAPI_VERSION", "3.1.0")
    app.config.setdefault("OPENAPI_URL_PREFIX", URL_PREFIX)
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.session_interface = auth.CookielessApi()
    api = TrackerApi(app, spec_kwargs={"security": [{"bearer": []}]})
    api.spec.components.security_scheme("bearer", {"type": "http", "scheme": "bearer",
                                                   "description": "A personal API token (Your settings → API tokens)"})
    csrf.exempt(blp)
    api.register_blueprint(blp)
    app.before_request(_unrouted)
