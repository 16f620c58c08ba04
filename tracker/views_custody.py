"""Staff-facing custody pages: an item, check out, return, hand over, and the person's own items."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from . import clock, custody, queries, users
from .errors import DomainError
from .forms import CheckoutForm
from .i18n import gettext
from .models import Checkout, Item, Kind, User
from .web import client_address, db, flash_error, now, signed_in

bp = Blueprint("custody", __name__)


def _item_or_404(tag: str) -> Item:
    item = queries.item_by_tag(db(), tag)
    if item is None:
        abort(404)
    return item


def _checkout_form(item: Item) -> CheckoutForm:
    form = CheckoutForm()
    cfg = current_app.config
    if request.method == "GET":
        due = clock.default_due(now(), cfg["TIMEZONE"], cfg["DAY_END"])
        form.due.data = clock.local(due, cfg["TIMEZONE"]).replace(tzinfo=None)
        last = db().scalar(select(Checkout).where(Checkout.holder_id == current_user.id)
                           .order_by(Checkout.out_at.desc()).limit(1))
        if last is not None:
            form.purpose.data, form.destination.data = last.purpose, last.destination
    if current_user.privileged:
        form.holder.choices = [(str(u.id), f"{u.name} <{u.email}>") for u in users.active_users(db())]
        if request.method == "GET":
            form.holder.data = str(current_user.id)
    return form


@bp.get("/items/<tag>")
@signed_in
def item(tag: str):
    s = db()
    it = _item_or_404(tag)
    co = custody.open_checkout(s, it)
    parent = s.get(Checkout, co.parent_id) if co is not None and co.parent_id else None
    in_bag_out = parent is not None and parent.returned_at is None
    contents = [c for c in it.contents if not c.retired] if it.kind == Kind.bag else []
    content_status = queries.open_checkouts_by_item(s, [c.id for c in contents])
    others = users.active_users(s) if current_user.privileged and co is not None else []
    history = queries.item_events(s, it) if current_user.privileged else []
    return render_template("scan/item.html", item=it, co=co, in_bag_out=in_bag_out, bag_checkout=parent,
                           contents=contents, content_status=content_status, form=_checkout_form(it),
                           others=others, history=history)


@bp.get("/find")
@signed_in
def find():
    tag = (request.args.get("tag") or "").strip()
    it = queries.item_by_tag(db(), tag) if tag else None
    if it is None:
        if tag:
            flash(gettext("No item has the asset tag %(tag)s.", tag=tag[:40]), "error")
        return render_template("scan/find.html", tag=tag[:40]), (404 if tag else 200)
    return redirect(url_for("custody.item", tag=it.asset_tag))


@bp.get("/s/<token>")
@bp.get("/S/<token>")
def scan(token: str):
    """The target of every label (the QR holds /S/ in capitals to stay in QR alphanumeric mode)."""
    label = queries.label_by_token(db(), token)
    if label is None:
        return render_template("scan/invalid.html"), 404
    if label.replaced_at is not None:
        _record_scan("scan_replaced_label", label)
        return render_template("scan/replaced.html", label=label), 410
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login", next=request.path))
    if label.item.retired:
        return render_template("scan/retired.html", item=label.item), 410
    return redirect(url_for("custody.item", tag=label.item.asset_tag))


def _record_scan(action: str, label) -> None:
    """Write a scan to the audit trail in its own short write transaction (GET changes no custody state)."""
    with current_app.extensions["tracker.sessionmaker"]() as s:
        from . import audit

        actor = s.get(User, current_user.id) if current_user.is_authenticated else None
        audit.record(s, now(), action, actor=actor, item=s.get(Item, label.item_id), source=client_address(),
                     token_issued=label.created_at.isoformat())
        s.commit()


@bp.post("/items/<tag>/checkout")
@signed_in
def checkout(tag: str):
    s = db()
    it = _item_or_404(tag)
    form = _checkout_form(it)
    if not form.validate():
        for errors in form.errors.values():
            for e in errors:
                flash(str(e), "error")
        return redirect(url_for("custody.item", tag=it.asset_tag))
    holder = current_user._get_current_object()
    if current_user.privileged and form.holder.data:
        holder = s.get(User, int(form.holder.data)) if form.holder.data.isdigit() else None
        if holder is None:
            abort(400)
    cfg = current_app.config
    due = (form.due.data.replace(tzinfo=ZoneInfo(cfg["TIMEZONE"])) if form.due.data
           else clock.default_due(now(), cfg["TIMEZONE"], cfg["DAY_END"]))
    try:
        custody.check_out(s, now(), item=it, holder=holder, actor=current_user._get_current_object(), due_at=due,
                          purpose=form.purpose.data or "", destination=form.destination.data or "",
                          source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
        return redirect(url_for("custody.item", tag=it.asset_tag), 303)
    s.commit()
    flash(gettext("%(tag)s is checked out to %(name)s.", tag=it.asset_tag, name=holder.name), "success")
    return redirect(url_for("custody.item", tag=it.asset_tag), 303)


@bp.post("/items/<tag>/return")
@signed_in
def return_(tag: str):
    s = db()
    it = _item_or_404(tag)
    present = None
    if it.kind == Kind.bag and request.form.get("confirm_contents"):
        present = {int(v) for v in request.form.getlist("present") if v.isdigit()}
    try:
        result = custody.return_item(s, now(), item=it, actor=current_user._get_current_object(), present=present,
                                     source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
        return redirect(url_for("custody.item", tag=it.asset_tag), 303)
    s.commit()
    flash(gettext("%(tag)s is returned.", tag=it.asset_tag), "success")
    if result.missing:
        flash(gettext("Missing, still out: %(tags)s", tags=", ".join(i.asset_tag for i in result.missing)), "error")
    return redirect(request.form.get("next") if request.form.get("next") == url_for("desk.board")
                    else url_for("custody.item", tag=it.asset_tag), 303)


@bp.post("/items/<tag>/handover")
@signed_in
def handover(tag: str):
    s = db()
    it = _item_or_404(tag)
    raw = request.form.get("to", "")
    to = current_user._get_current_object() if raw == "me" else (s.get(User, int(raw)) if raw.isdigit() else None)
    if to is None:
        abort(400)
    try:
        custody.hand_over(s, now(), item=it, to=to, actor=current_user._get_current_object(), source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
        return redirect(url_for("custody.item", tag=it.asset_tag), 303)
    s.commit()
    flash(gettext("%(tag)s is now held by %(name)s.", tag=it.asset_tag, name=to.name), "success")
    return redirect(url_for("custody.item", tag=it.asset_tag), 303)


@bp.get("/my")
@signed_in
def mine():
    return render_template("scan/mine.html", checkouts=queries.open_checkouts_of(db(), current_user))
