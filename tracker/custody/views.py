"""The phone pages: the scan of a label, one-tap take out / return / take over, and the person's own items."""

from __future__ import annotations

import functools
from datetime import datetime

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import and_, bindparam, select
from sqlalchemy.orm import contains_eager

from .. import audit, clock, queries
from ..accounts import signin
from ..accounts.people import suggesting_people
from ..errors import AlreadyOut, ApprovalRequired, DomainError, Incomplete, InvalidInput, NotPermitted
from ..http import (
    actor,
    attempt,
    back,
    client_address,
    db,
    flash_error,
    found_or_404,
    now,
    privileged,
    record_aside,
    safe_next,
    signed_in,
)
from ..i18n import DISPOSAL_METHOD_LABELS, describe, gettext, handling_rules, reader_zone
from ..models import Checkout, HandoverOffer, Item, Kind, LabelToken, OfferStatus, TakeoutRule, User
from . import approval_views, approvals, confirmations, found, handover, policy, rules
from . import operations as custody
from .forms import AcceptOfferForm, CheckoutForm, FoundMessageForm, HandoverForm, InspectionForm, ReturnForm

bp = Blueprint("custody", __name__)


def _policy(item: Item | None = None) -> policy.Policy:
    """The settings' policy; for an item, on the clock of its site (its due times are that office's)."""
    pol = policy.from_config(current_app.config)
    return pol.for_item(item) if item is not None else pol


def _item_or_404(tag: str) -> Item:
    return found_or_404(queries.item_by_tag(db(), tag))


def _checkout_form(shown_only: bool = False) -> CheckoutForm:
    """The take-out form: as sent (validated, its CSRF token checked), or `shown_only` on the item's page, where
    nothing is read from the request and the page writes its CSRF token itself (csrf_token())."""
    if not shown_only:
        return CheckoutForm()
    return CheckoutForm(formdata=None, meta={"csrf": False})


def _default_due(it: Item, moment: datetime) -> datetime:
    """Today's day end, or earlier where the item's take-out rule caps it (a curfew, a maximum duration)."""
    pol = _policy(it)
    return rules.due_by(rules.governing(db(), it, pol), moment, pol)


def _prefill(form: CheckoutForm, due: datetime, me: User) -> None:
    """Purpose and destination from the person's last own take-out (never a hand-over); due at today's day end
    of the item's site (or the rule's earlier limit), shown in the reader's zone like every time on the page."""
    form.due.data = clock.local(due, reader_zone()).replace(tzinfo=None)
    last = queries.last_own_trip(db(), me)
    if last is not None:
        form.purpose.data, form.destination.data = last


def _render_item(it: Item, here: str, form: CheckoutForm | None = None, due: datetime | None = None,
                 label: LabelToken | None = None, requests: bool | None = None, saved_rule=rules.UNREAD):
    """The item's page; with `form`, the take-out form as the person sent it (refused), its details open; with
    the `label` scanned, its holder may confirm custody ("I still have it") where the rule asks. `requests` and
    `saved_rule`: whether the page may have a request to show, and the item's saved rule (None: none), where the
    scan read them with the label."""
    s = db()
    moment = now()
    me = current_user._get_current_object()  # read a dozen times below: the user, not the proxy each time
    pol = _policy(it)
    co, inspection = custody.on_page(it.on_page_checkouts)  # loaded with the label on a scan, else read here
    parent = s.get(Checkout, co.parent_id) if co is not None and co.parent_id else None
    in_bag_out = parent is not None and parent.returned_at is None
    contents = [c for c in it.contents if not c.retired] if it.kind == Kind.bag else []
    content_status = queries.open_checkouts_by_item(s, [c.id for c in contents])
    pending, ready = approvals.on_item_page(s, moment, it.id, me, pol, maybe=requests)
    if pending is not None and pending.for_date is not None and pending.requester_id != me.id:
        pending = None  # someone's approval in advance for a later day: the item goes out today as usual
    tokens = queries.current_tokens(s, [c.id for c in contents]) if contents and co is not None else {}
    refused = form is not None
    if contents or saved_rule is rules.UNREAD:
        table = rules.table(s, pol)
        rule_of = functools.partial(rules.lookup, table)
    else:  # every rule below is the item's own, read with the label
        (own,) = rules.governing(s, it, pol, [], saved=saved_rule)

        def rule_of(_item: Item) -> rules.Rule:
            return own
    governing = [rule_of(x) for x in [it, *contents]] if co is None else []
    default_due = rules.due_by(governing, moment, pol)
    # The take-out form is on the page only while the item is in and free to go (the template's conditions): its
    # prefill reads the person's last trip, and the desk's "for" list every active person.
    offered = co is None and pending is None and inspection is None and not it.retired and not it.disposed
    if form is None and offered:
        form = _checkout_form(shown_only=True)
        _prefill(form, default_due, me)
    if form is not None and me.privileged:
        suggesting_people(form.holder)
    returning = [it, *(c for c in contents if co is not None and getattr(content_status.get(c.id), "parent_id", None)
                       == co.id)]
    return render_template(
        "custody/item.html", item=it, co=co, in_bag_out=in_bag_out, bag_checkout=parent, contents=contents,
        content_status=content_status, form=form, refused=refused, pending=pending, here=here, now=moment,
        awaited=approvals.awaited(s, pending) if pending is not None else [],
        ready=ready if co is None else None,
        tokens=tokens, needs_ack=any(rules.needs_handling_ack(s, moment, x, r, pol)
                                     for r, x in zip(governing, [it, *contents], strict=False)),
        needs_witness=any(r.witness for r in governing),
        rules=handling_rules(),
        default_due=due or default_due, approval_required=pol.approval_required,
        offer=handover.still_open(co, moment, pol) if co is not None else None,
        history=queries.item_events(s, it) if me.privileged else [],
        needs_erasure=co is not None and any(rule_of(x).erasure_on_return for x in returning),
        erasure_methods=custody.ERASURE_METHODS, inspection=inspection,
        disposal_methods=tuple(DISPOSAL_METHOD_LABELS),
        confirm_token=label.token if label and co and co.holder_id == me.id
        and confirmations.asks(rule_of(it)) else None,
        next_count=rules.next_count_on(rule_of(it), it, pol.for_item(it).timezone))


@bp.get("/items/<tag>")
@signed_in
def item(tag: str):
    it = _item_or_404(tag)
    return _render_item(it, url_for("custody.item", tag=it.asset_tag))


@bp.get("/find")
@signed_in
def find():
    tag = (request.args.get("tag") or "").strip()
    it = queries.item_by_tag(db(), tag) if tag else None
    if it is None:
        if tag:
            flash(gettext("No item has the asset tag %(tag)s.", tag=tag[:40]), "error")
        return render_template("custody/find.html", tag=tag[:40]), (404 if tag else 200)
    return redirect(url_for("custody.item", tag=it.asset_tag))


@functools.cache
def _scan_statement(reader: bool, privileged: bool):
    """The scan's one read: the label, its item with what its page shows of its check-outs (and a hand-over offer
    waiting on one), whether the page may have a request for approval to show (`approvals.on_item_page`, for
    `:reader_id` at `:now`), the item's saved take-out rule, if any, and, for someone signed in, the header's count
    of approvals waiting for them (`:actor_id`). One per kind of reader, built once."""
    waiting = [approvals.waiting_count_column(privileged)] if reader else []
    return (select(LabelToken, approvals.may_show_requests(LabelToken.item_id), TakeoutRule, *waiting)
            .join(LabelToken.item)
            .outerjoin(TakeoutRule, and_(TakeoutRule.kind == Item.kind, TakeoutRule.data_class == Item.data_class))
            .options(contains_eager(LabelToken.item).joinedload(Item.on_page_checkouts)
                     .joinedload(Checkout.waiting_offers))
            .where(LabelToken.token == bindparam("token")))


@bp.get("/s/<token>")
@bp.get("/S/<token>")
def scan(token: str):
    """The target of every label (the QR holds /S/ in capitals to stay in QR alphanumeric mode)."""
    me = current_user._get_current_object()
    reader = me.id if me.is_authenticated else None
    row = db().execute(_scan_statement(reader is not None, reader is not None and me.privileged),
                       {"token": queries.token_text(token), "reader_id": reader, "actor_id": reader, "now": now()}
                       ).unique().first()
    if row is None:
        return _not_a_label()
    label, may_show_requests, saved_rule, *waiting = row
    if waiting:
        approval_views.counted(waiting[0] or 0)
    if not current_user.is_authenticated:
        # Staff sign in and come back here; anyone else learns whom to call, and nothing about the item.
        if request.method == "GET":  # a HEAD (link previews, monitors) is not someone holding the item
            record_aside(lambda s: found.record_scan(s, now(), label, client_address()))
        return render_template("custody/found.html", token=label.token, sent=False, **found.contact(current_app.config))
    if label.replaced_at is not None:
        record_aside(lambda s: _record_old_label_scan(s, label))
        return render_template("custody/replaced.html", label=label), 410
    if label.item.retired:
        return render_template("custody/retired.html", item=label.item), 410
    return _render_item(label.item, request.path, label=label, requests=may_show_requests, saved_rule=saved_rule)


def _not_a_label():
    return render_template("custody/invalid.html"), 404


def _record_old_label_scan(s, label: LabelToken) -> None:
    audit.record(s, now(), "scan_replaced_label", actor=s.get(User, current_user.id), item=s.get(Item, label.item_id),
                 source=client_address(), token_issued=label.created_at.isoformat())


@bp.post("/s/<token>/found")
@bp.post("/S/<token>/found")
def found_message(token: str):
    """A finder's message to the security desk; needs no account and reveals nothing."""
    label = queries.label_by_token(db(), token)
    if label is None:
        return _not_a_label()
    form = FoundMessageForm()
    message, contact = form.message.data or "", form.contact.data or ""
    with attempt() as done:
        found.leave_message(db(), now(), label, message, contact, client_address())
    if not done:
        return render_template("custody/found.html", token=label.token, sent=False, message=message[:2000],
                               contact=contact[:200], **found.contact(current_app.config)), 400
    return render_template("custody/found.html", token=label.token, sent=True, **found.contact(current_app.config))


def _back(it: Item):
    return back("custody.item", 303, tag=it.asset_tag)


# The take-out form's field for each argument of the rules that a refusal can be about.
_FIELD_OF = {"purpose": "purpose", "destination": "destination", "due_at": "due", "reason": "reason",
             "handling_ack": "rules_ack", "witness": "witness_email", "for_date": "for_date", "holder": "holder"}


def _refused(it: Item, form: CheckoutForm, error: DomainError | None = None, due: datetime | None = None):
    """The page again as the person filled it in, each message next to its field (and said at the top): 400."""
    for part in (error.errors if isinstance(error, Incomplete) else [error] if error is not None else []):
        field = form[_FIELD_OF[part.about]]
        field.errors = [*field.errors, describe(part)]
    for errors in form.errors.values():
        for e in errors:
            flash(str(e), "error")
    here = safe_next(request.form.get("next")) or url_for("custody.item", tag=it.asset_tag)
    return _render_item(it, here, form=form, due=due), 400


def _about_a_field(error: DomainError | None) -> bool:
    return error is not None and error.about in _FIELD_OF


@bp.post("/items/<tag>/checkout")
@signed_in
def checkout(tag: str):
    """Take the item out as the form asks. The usual tap reads the item once, locked, in the take-out's own
    transaction; a form refused before it, and an approval in advance, read it on their own."""
    form = _checkout_form()
    valid = form.validate()
    try:
        due = clock.from_local(form.due.data, reader_zone()) if form.due.data else None  # None: the rules' default
    except InvalidInput as err:  # a date with no UTC value (year 1)
        err.about = "due_at"
        return _refused(_item_or_404(tag), form, err)
    if not valid:
        return _refused(_item_or_404(tag), form, due=due)
    me = holder = actor()
    if current_user.privileged and (form.holder.data or "").strip():  # the desk, for someone (empty: for itself)
        try:
            holder = queries.person_named(db(), form.holder.data)
        except InvalidInput as err:
            err.about = "holder"
            return _refused(_item_or_404(tag), form, err, due)
    args = dict(due_at=due, purpose=form.purpose.data or "", destination=form.destination.data or "",
                reason=form.reason.data or "", source=client_address(), handling_ack=form.rules_ack.data)
    if form.for_date.data:  # an approval in advance (事前申請): nothing goes out today
        it = _item_or_404(tag)
        args |= {"item": it, "policy": _policy(it), "due_at": due or _default_due(it, now())}
        return _request(it, holder, args, form, for_date=form.for_date.data)
    witness, error = _witness(form)
    it = None
    if error is None:
        with attempt(explain=False) as done:
            it = found_or_404(custody.locked_by_tag(db(), tag))
            args |= {"item": it, "policy": _policy(it)}
            approvals.take_out(db(), now(), holder=holder, actor=me, witness=witness, **args)
        error = done.error
    if it is None:  # the witness was refused before the item was read
        it = _item_or_404(tag)
        args |= {"item": it, "policy": _policy(it)}
    if error is None:
        flash(gettext("%(tag)s is checked out to %(name)s.", tag=it.asset_tag, name=holder.name), "success")
    elif isinstance(error, ApprovalRequired):
        args["due_at"] = due or _default_due(it, now())
        return _request(it, holder, args, form)
    elif isinstance(error, AlreadyOut) and error.holder_id == holder.id:
        # A double tap or a resubmitted form: it is already done.
        flash(gettext("%(tag)s is already checked out to you.", tag=it.asset_tag), "info")
        error = None
    if _about_a_field(error):  # something the person left out or mistyped: keep what they entered
        return _refused(it, form, error, due)
    if error is not None:
        flash_error(error)
    return _back(it)


def _witness(form: CheckoutForm) -> tuple[User | None, DomainError | None]:
    """The witness who typed their credentials into the form, checked (and failures counted) in a transaction
    of its own; (None, None) when the form names none (the rules then say whether one was needed)."""
    email = (form.witness_email.data or "").strip()
    if not email and not form.witness_password.data:
        return None, None
    with attempt(explain=False, keep_on_error=True) as confirmed:
        witness = signin.confirm_witness(db(), now(), email, form.witness_password.data or "", client_address())
    return (witness, None) if confirmed else (None, confirmed.error)


def _request(it: Item, holder: User, args: dict, form: CheckoutForm, for_date=None):
    """Ask for approval and wait on the request's page (it shows the answer as it comes). For an approval in
    advance, a due time left before its date means that time of day on the date."""
    tz = _policy(it).timezone
    local_due = clock.local(args["due_at"], tz)
    if for_date is not None and local_due.date() < for_date:
        args = {**args, "due_at": clock.from_local(datetime.combine(for_date, local_due.time()), tz)}
    with attempt(explain=False) as requested:
        req = approvals.request_checkout(db(), now(), holder=holder, for_date=for_date, **args)
    if _about_a_field(requested.error):
        return _refused(it, form, requested.error, args["due_at"])
    if not requested:
        flash_error(requested.error)
        return _back(it)
    names = [u.name for u in approvals.awaited(db(), req)]
    flash(gettext("Sent to %(names)s for approval. Wait here: this page shows the answer.", names=", ".join(names))
          if names else gettext("Sent to the security desk for approval. Wait here: this page shows the answer."),
          "info")
    return redirect(url_for("approvals.show", request_id=req.id), 303)


@bp.post("/items/<tag>/return")
@signed_in
def return_(tag: str):
    form = ReturnForm()
    with attempt(explain=False) as done:
        it = found_or_404(custody.locked_by_tag(db(), tag))  # read once, locked, in the return's transaction
        present = form.present_ids() if it.kind == Kind.bag else None
        result = custody.return_item(db(), now(), item=it, actor=actor(), present=present, policy=_policy(),
                                     erasure=form.erasure.data or None, erasure_method=form.erasure_method.data or None,
                                     source=client_address())
    _report(done, gettext("%(tag)s is returned.", tag=it.asset_tag),
            already=lambda: custody.open_checkout(db(), it) is None)
    if done and result.missing:
        flash(gettext("Missing, still out: %(tags)s", tags=", ".join(i.asset_tag for i in result.missing)), "error")
    return _back(it)


@bp.post("/items/<tag>/inspection")
@privileged
def inspection(tag: str):
    """The desk's return inspection (消去確認) of an item whose returner left the erasure to it."""
    it = _item_or_404(tag)
    form = InspectionForm()
    with attempt() as done:
        custody.inspect_erasure(db(), now(), item=it, actor=actor(), method=form.erasure_method.data or "",
                                source=client_address())
    if done:
        flash(gettext("The return inspection of %(tag)s is recorded; it may go out again.", tag=it.asset_tag),
              "success")
    return _back(it)


def _receiver(form: HandoverForm, me: User) -> User:
    """The person a hand-over form names: "me" (the desk takes it over), or whom the name or address typed names."""
    return me if form.to.data == "me" else queries.person_named(db(), form.to.data)


@bp.get("/items/<tag>/handover")
@signed_in
def handover_page(tag: str):
    """Whom the holder may offer the item to, and the desk move it to: a page of its own, where the receiver is
    typed (suggested as one types), so that no page lists every person in the company."""
    return _handover_page(_item_or_404(tag))


def _handover_page(it: Item, typed: str = "", error: str | None = None):
    """The hand-over page; with `error`, the receiver `typed` was refused: shown again as typed, beside the field
    of the form that sent it (400)."""
    me = actor()
    back = safe_next(request.values.get("next")) or url_for("custody.item", tag=it.asset_tag)
    co = custody.open_checkout(db(), it)
    if co is None or handover.still_open(co, now(), _policy(it)) is not None:
        return redirect(back)  # back in, or offered already: the item's page says so
    if co.holder_id != me.id and not me.privileged:
        abort(403)
    return render_template("custody/handover.html", item=it, co=co, back=back,
                           anyone=queries.anyone_but(db(), co.holder_id), typed=typed, error=error,
                           sent=request.endpoint if error else None), 400 if error else 200


@bp.post("/items/<tag>/handover", endpoint="handover")
@signed_in
def handover_offer(tag: str):
    """The holder offers the item to a colleague; it stays theirs until the colleague accepts."""
    it = _item_or_404(tag)
    form, me = HandoverForm(), actor()
    try:
        to = _receiver(form, me)
    except InvalidInput as err:
        return _handover_page(it, form.to.data or "", describe(err))
    with attempt() as done:
        handover.offer(db(), now(), item=it, to=to, actor=me, shown_checkout_id=form.checkout.data,
                       policy=_policy(), source=client_address())
    if done:  # offering again to the same person (a double tap) is the same offer
        flash(gettext("Offered to %(name)s. %(tag)s stays yours until they accept.", name=to.name, tag=it.asset_tag),
              "success")
    return _back(it)


@bp.post("/items/<tag>/handover/direct")
@privileged
def handover_direct(tag: str):
    """The security desk moves custody at once, recorded as done without the receiver's confirmation."""
    it = _item_or_404(tag)
    form, me = HandoverForm(), actor()
    try:
        to = _receiver(form, me)
    except InvalidInput as err:
        return _handover_page(it, form.to.data or "", describe(err))
    with attempt(explain=False) as done:
        custody.hand_over(db(), now(), item=it, to=to, actor=me, shown_checkout_id=form.checkout.data, direct=True,
                          source=client_address())
    _report(done, gettext("%(tag)s is now held by %(name)s.", tag=it.asset_tag, name=to.name),
            already=lambda: getattr(custody.open_checkout(db(), it), "holder_id", None) == to.id)
    return _back(it)


def _offer_or_404(offer_id: int) -> HandoverOffer:
    """The offer, for its receiver, its giver and the security desk; to anyone else it does not exist."""
    offer = found_or_404(db().get(HandoverOffer, offer_id))
    if current_user.id not in (offer.to_user_id, offer.from_user_id, offer.offered_by_id) and not current_user.privileged:
        abort(404)
    return offer


@bp.get("/handovers/<int:offer_id>")
@signed_in
def offer(offer_id: int):
    """The receiver's page (the link in their e-mail): the item, who gives it, the handling rules, accept or decline."""
    o = _offer_or_404(offer_id)
    return _render_offer(o, AcceptOfferForm())


def _render_offer(o: HandoverOffer, form: AcceptOfferForm, status: int = 200):
    s, pol = db(), _policy()
    lapses_at = handover.lapses_at(o, pol)
    waiting = o.status == OfferStatus.pending and now() < lapses_at  # past its day it has lapsed, recorded or not
    return render_template("custody/offer.html", offer=o, form=form, rules=handling_rules(), waiting=waiting,
                           needs_ack=waiting and handover.needs_handling_ack(s, o, pol), lapses_at=lapses_at,
                           co=o.checkout), status


@bp.post("/handovers/<int:offer_id>/accept")
@signed_in
def offer_accept(offer_id: int):
    o = _offer_or_404(offer_id)
    form = AcceptOfferForm()
    me = actor()
    with attempt(explain=False) as done:
        handover.accept(db(), now(), offer=o, actor=me, handling_ack=bool(form.rules_ack.data), policy=_policy(),
                        source=client_address())
    if done or o.status == OfferStatus.accepted and o.to_user_id == me.id:  # a second tap: it is done
        flash(gettext("%(tag)s is now yours.", tag=o.item.asset_tag), "success" if done else "info")
        return redirect(url_for("custody.item", tag=o.item.asset_tag), 303)
    if done.error.about == "handling_ack":
        form.rules_ack.errors = [describe(done.error)]
    flash_error(done.error)
    return _render_offer(o, form, 403 if isinstance(done.error, NotPermitted) else 400)


@bp.post("/handovers/<int:offer_id>/decline")
@signed_in
def offer_decline(offer_id: int):
    o = _offer_or_404(offer_id)
    with attempt() as done:
        handover.decline(db(), now(), offer=o, actor=actor(), source=client_address())
    if done:
        flash(gettext("You declined %(tag)s; %(name)s keeps it.", tag=o.item.asset_tag, name=o.from_user.name),
              "success")
        return redirect(url_for("custody.mine"), 303)
    return redirect(url_for("custody.offer", offer_id=o.id), 303)


@bp.post("/handovers/<int:offer_id>/cancel")
@signed_in
def offer_cancel(offer_id: int):
    o = _offer_or_404(offer_id)
    with attempt() as done:
        handover.cancel(db(), now(), offer=o, actor=actor(), source=client_address())
    if done:
        flash(gettext("The offer to %(name)s is cancelled; %(tag)s stays with %(holder)s.", name=o.to_user.name,
                      tag=o.item.asset_tag, holder=o.from_user.name), "success")
    return back("custody.item", 303, tag=o.item.asset_tag)


def _report(done: attempt, message: str, already) -> None:
    """Say it is done; a refusal because it already happened (a double tap, a resubmitted form) is done too."""
    if done:
        flash(message, "success")
    elif already():
        flash(message, "info")
    else:
        flash_error(done.error)


@bp.get("/my")
@signed_in
def mine():
    s = db()
    checkouts = queries.open_checkouts_of(s, current_user)
    table = rules.table(s, _policy())
    parents = {c.parent_id for c in checkouts if c.parent_id}
    back = set(s.scalars(select(Checkout.id).where(Checkout.id.in_(parents), Checkout.returned_at.is_not(None))))
    return render_template("custody/mine.html", checkouts=checkouts, now=now(),
                           missing={c.id for c in checkouts if c.parent_id in back},
                           # Their return asks what became of the data: on the item's page, not in one tap.
                           erasure={c.id for c in checkouts if rules.lookup(table, c.item).erasure_on_return},
                           requests=queries.pending_requests_of(s, current_user),
                           offers=handover.waiting_for(s, current_user, now(), _policy()))
