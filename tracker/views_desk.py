"""The security desk: everything out (overdue first), approvals, finders' reports, and the returns scanner."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from . import clock, custody, flags, found, policy, queries
from .errors import N_, DomainError, InvalidInput
from .flags import board_flags_by_checkout
from .i18n import describe, gettext
from .models import CheckoutRequest, Flag, FoundReport, Kind
from .web import client_address, db, flash_error, now, privileged

bp = Blueprint("desk", __name__, url_prefix="/desk")

SCANNER_HISTORY = 30
TOKEN_IN_URL = re.compile(r"/s/([A-Za-z2-7]{16,64})/?$", re.IGNORECASE)


BOARD_FILTERS = ("kind", "data_class", "department", "state")
DUE_SOON = timedelta(hours=1)


@bp.get("/")
@privileged
def board():
    """What is out now: overdue first, then due soon, then the rest; the page refreshes its table itself."""
    moment = now()
    s = db()
    args = {k: (request.args.get(k) or "").strip()[:100] for k in BOARD_FILTERS}
    stmt = queries.desk_stmt(moment, soon=moment + DUE_SOON, **args)
    page = queries.paginate(s, stmt, request.args.get("page", 1, type=int), size=100)
    flags = board_flags_by_checkout(s, [co.id for co in page.rows])
    context = dict(page=page, now=moment, soon=moment + DUE_SOON, flags=flags, args=args,
                   wall=request.args.get("wall") == "1", overdue=queries.overdue_count(s, moment))
    if request.args.get("fragment") == "1":
        return render_template("desk/_board_rows.html", **context)
    return render_template("desk/board.html", requests=queries.pending_requests(s), reports=found.open_reports(s),
                           departments=queries.departments(s), **context)


def _flag(flag_id: int) -> Flag:
    flag = db().get(Flag, flag_id)
    if flag is None:
        abort(404)
    return flag


def _flag_action(flag_id: int, action):
    """Run one flag action in the request's transaction; on a domain error, say why and go back to the flag."""
    s = db()
    flag = _flag(flag_id)
    try:
        result = action(s, flag, current_user._get_current_object())
    except DomainError as err:
        s.rollback()
        flash_error(err)
        return None, redirect(url_for("desk.flag_page", flag_id=flag_id), 303)
    s.commit()
    return (flag, result), None


def _new_due(raw: str) -> datetime | None:
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return datetime.fromisoformat(raw).replace(tzinfo=ZoneInfo(current_app.config["TIMEZONE"]))
    except ValueError:
        raise InvalidInput(N_("The new due time is not a valid date and time.")) from None


@bp.post("/flags/<int:flag_id>/acknowledge")
@privileged
def acknowledge(flag_id: int):
    done, failed = _flag_action(flag_id, lambda s, flag, me: flags.acknowledge(
        s, now(), flag, me, request.form.get("note", ""), _new_due(request.form.get("new_due", "")),
        source=client_address()))
    if failed:
        return failed
    flash(gettext("%(tag)s: acknowledged.", tag=done[0].item.asset_tag), "success")
    return redirect(url_for("desk.board"), 303)


@bp.post("/flags/<int:flag_id>/resolve")
@privileged
def resolve(flag_id: int):
    done, failed = _flag_action(flag_id, lambda s, flag, me: flags.resolve(
        s, now(), flag, me, request.form.get("how", ""), confirmed_by=request.form.get("confirmed_by", ""),
        note=request.form.get("note", ""), source=client_address()))
    if failed:
        return failed
    flash(gettext("%(tag)s: resolved.", tag=done[0].item.asset_tag), "success")
    return redirect(url_for("desk.board"), 303)


@bp.post("/flags/<int:flag_id>/lost")
@privileged
def lost(flag_id: int):
    done, failed = _flag_action(flag_id, lambda s, flag, me: flags.mark_lost(
        s, now(), flag, me, request.form.get("note", ""), source=client_address()))
    if failed:
        return failed
    flag, incident = done
    flash(gettext("%(tag)s is marked lost; an incident was opened.", tag=flag.item.asset_tag), "error")
    return redirect(url_for("incidents.show", incident_id=incident.id), 303)


@bp.get("/flags/<int:flag_id>")
@privileged
def flag_page(flag_id: int):
    flag = _flag(flag_id)
    local_due = clock.local(flag.checkout.due_at, current_app.config["TIMEZONE"]).replace(tzinfo=None)
    return render_template("desk/flag.html", flag=flag, co=flag.checkout, now=now(),
                           suggested_due=local_due.strftime("%Y-%m-%dT%H:%M"))


@bp.post("/requests/<int:request_id>")
@privileged
def decide(request_id: int):
    s = db()
    req = s.get(CheckoutRequest, request_id)
    if req is None:
        abort(404)
    try:
        custody.decide_request(s, now(), request=req, actor=current_user._get_current_object(),
                               approve=request.form.get("decision") == "approve", note=request.form.get("note", ""),
                               policy=policy.from_config(current_app.config), source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
        return redirect(url_for("desk.board"), 303)
    s.commit()
    flash(gettext("%(tag)s: approved, now out with %(name)s.", tag=req.item.asset_tag, name=req.requester.name)
          if req.status.value == "approved" else gettext("%(tag)s: denied.", tag=req.item.asset_tag), "success")
    return redirect(url_for("desk.board"), 303)


@bp.post("/found/<int:report_id>")
@privileged
def handle_found(report_id: int):
    s = db()
    report = s.get(FoundReport, report_id)
    if report is None:
        abort(404)
    found.handle(s, now(), report, current_user._get_current_object(), source=client_address())
    s.commit()
    return redirect(url_for("desk.board"), 303)


def item_from_code(code: str):
    """The item a scanned code or typed asset tag names, or raise InvalidInput."""
    code = (code or "").strip()
    if len(code) > 300:
        raise InvalidInput(N_("That is not a label of this system."))
    match = TOKEN_IN_URL.search(code)
    s = db()
    if match:
        label = queries.label_by_token(s, match.group(1))
        if label is None:
            raise InvalidInput(N_("That is not a label of this system."))
        if label.replaced_at is not None:
            raise InvalidInput(N_("That label of %(tag)s was replaced; use the new label."), tag=label.item.asset_tag)
        return label.item
    item = queries.item_by_tag(s, code)
    if item is None:
        raise InvalidInput(N_("That is not a label of this system."))
    return item


def _receive(code: str) -> dict:
    """Receive one return from the scanner; the result line for the running list."""
    s = db()
    try:
        item = item_from_code(code)
        if item.kind == Kind.bag and item.contents:
            return {"ok": False, "tag": item.asset_tag, "link": url_for("custody.item", tag=item.asset_tag),
                    "message": gettext("%(tag)s is a bag: open it to tick what came back.", tag=item.asset_tag)}
        co = custody.open_checkout(s, item)
        holder = co.holder.name if co is not None else ""
        custody.return_item(s, now(), item=item, actor=current_user._get_current_object(), source=client_address())
    except DomainError as err:
        s.rollback()
        return {"ok": False, "tag": "", "message": describe(err)}
    s.commit()
    return {"ok": True, "tag": item.asset_tag, "message": gettext("%(tag)s returned (from %(name)s).",
                                                                   tag=item.asset_tag, name=holder)}


def _decode_photo(data: bytes) -> str | None:
    """Read a QR code from a photo taken with the phone (for browsers without a camera barcode API)."""
    import io

    import zxingcpp
    from PIL import Image, ImageOps

    try:
        image = ImageOps.exif_transpose(Image.open(io.BytesIO(data)))
        image.thumbnail((1600, 1600))
        results = zxingcpp.read_barcodes(image.convert("L"), formats=zxingcpp.BarcodeFormat.QRCode)
    except Exception:  # an unreadable upload is the user's mistake, not a server error
        return None
    return results[0].text if results else None


@bp.route("/scanner", methods=["GET", "POST"])
@privileged
def scanner():
    """Returns in bulk: a USB/Bluetooth scanner types the URL and Enter, or the camera, or a photo."""
    history = session.get("scanner", [])
    if request.method == "POST":
        code = request.form.get("code", "")
        photo = request.files.get("photo")
        if photo and photo.filename:
            code = _decode_photo(photo.read()) or ""
            result = _receive(code) if code else {"ok": False, "tag": "",
                                                  "message": gettext("No QR code could be read in the photo.")}
        else:
            result = _receive(code)
        history = [result, *history][:SCANNER_HISTORY]
        session["scanner"] = history
        if request.accept_mimetypes.best == "application/json" or request.form.get("js") == "1":
            return jsonify(result)
        return redirect(url_for("desk.scanner"), 303)
    return render_template("desk/scanner.html", history=history)
