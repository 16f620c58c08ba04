"""The security desk: everything out (overdue first), flags, approvals, finders' reports, and the returns scanner."""

from __future__ import annotations

from datetime import datetime, timedelta

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, session, url_for
from flask_login import current_user

from .. import clock, queries
from ..custody import approvals, policy
from ..custody import operations as custody
from ..errors import N_, InvalidInput
from ..http import actor, attempt, client_address, db, get_or_404, now, privileged
from ..i18n import day, describe, gettext, reader_zone
from ..models import CheckoutRequest, Flag, FoundReport, Incident, Kind, RequestStatus, Site
from ..text import as_int
from . import flags, found_reports, scanner, sweep, waiting
from .forms import AcknowledgeForm, DecisionForm, FoundHandledForm, NoteForm, ResolveForm, ScannerForm

bp = Blueprint("desk", __name__, url_prefix="/desk")

SCANNER_HISTORY = 30
BOARD_FILTERS = ("kind", "data_class", "department", "state")
DUE_SOON = timedelta(hours=1)


@bp.get("/")
@privileged
def board():
    """What is out now: overdue first, then due soon, then the rest, with what else waits for the desk beside it;
    the page refreshes all of it itself (`fragment=1`)."""
    moment = now()
    s = db()
    args = {k: (request.args.get(k) or "").strip()[:100] for k in BOARD_FILTERS}
    sites = queries.sites(s)
    args["site"] = _chosen_site(sites)
    stmt = queries.desk_stmt(moment, soon=moment + DUE_SOON, **args)
    page = queries.paginate(s, stmt, request.args.get("page", 1, type=int), size=100)
    swept_site, swept = _sweep_status(moment, sites, args["site"])
    context = dict(page=page, now=moment, soon=moment + DUE_SOON, args=args, sites=sites,
                   flags=flags.board_flags_by_checkout(s, [co.id for co in page.rows]),
                   found=found_reports.by_item(s, [co.item_id for co in page.rows]),
                   wall=request.args.get("wall") == "1", overdue=queries.overdue_count(s, moment, args["site"]),
                   sweep=swept, sweep_site=swept_site, waiting=waiting.waiting(s))
    if request.args.get("fragment") == "1":
        return render_template("desk/_board_live.html", **context)
    return render_template("desk/board.html", departments=queries.departments(s), **context)


ALL_SITES = "all"


def _chosen_site(sites: list[Site]) -> str:
    """The board's site filter: as asked (every site, the main office or a site's id), else the person's own site
    first; nothing to choose while the company has no sites."""
    if not sites:
        return ""
    raw = request.args.get("site")
    if raw is None:
        return str(current_user.site_id) if current_user.site_id is not None else queries.MAIN_OFFICE
    raw = raw.strip()
    known = {ALL_SITES, queries.MAIN_OFFICE, *(str(site.id) for site in sites)}
    return raw if raw in known else ALL_SITES


def _sweep_status(moment: datetime, sites: list[Site], chosen: str) -> tuple[Site | None, sweep.SweepStatus]:
    """The sweep status the board shows: the chosen site's, on its own clock; for every site, the first one that
    is late (else the main office's)."""
    pol = policy.from_config(current_app.config)
    if chosen in ("", queries.MAIN_OFFICE):
        return None, sweep.status(db(), moment, pol)
    if chosen != ALL_SITES:
        site = next(site for site in sites if str(site.id) == chosen)
        return site, sweep.status(db(), moment, pol.at(site))
    every = sweep.statuses(db(), moment, pol)
    return next(((site, st) for site, st in every if st.late), every[0])


def _new_due(raw: str | None) -> datetime | None:
    """The new due time typed on the flag's page, in the reader's zone (as the page shows times)."""
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        typed = datetime.fromisoformat(raw)
    except ValueError:
        raise InvalidInput(N_("The new due time is not a valid date and time.")) from None
    return clock.from_local(typed, reader_zone())


def _flag_action(flag_id: int, form_class, act, done_message: str, category: str = "success"):
    """Load the flag, run `act(flag, form)` in the request's transaction, and go back to the board; on a
    refusal, back to the flag's page with the reason."""
    flag = get_or_404(Flag, flag_id)
    form = form_class()
    with attempt() as done:
        result = act(flag, form)
    if not done:
        return redirect(url_for("desk.flag_page", flag_id=flag_id), 303)
    flash(gettext(done_message, tag=flag.item.asset_tag), category)
    if isinstance(result, Incident):
        return redirect(url_for("incidents.show", incident_id=result.id), 303)
    return redirect(url_for("desk.board"), 303)


@bp.post("/flags/<int:flag_id>/acknowledge")
@privileged
def acknowledge(flag_id: int):
    return _flag_action(flag_id, AcknowledgeForm, lambda flag, form: flags.acknowledge(
        db(), now(), flag, actor(), form.note.data, _new_due(form.new_due.data), source=client_address()),
        N_("%(tag)s: acknowledged."))


@bp.post("/flags/<int:flag_id>/resolve")
@privileged
def resolve(flag_id: int):
    return _flag_action(flag_id, ResolveForm, lambda flag, form: flags.resolve(
        db(), now(), flag, actor(), form.how.data, confirmed_by=form.confirmed_by.data, note=form.note.data,
        source=client_address(), policy=policy.from_config(current_app.config)), N_("%(tag)s: resolved."))


@bp.post("/flags/<int:flag_id>/lost")
@privileged
def lost(flag_id: int):
    """Marking lost opens an incident, and the desk goes straight to it."""
    return _flag_action(flag_id, NoteForm, lambda flag, form: flags.mark_lost(
        db(), now(), flag, actor(), form.note.data, source=client_address()),
        N_("%(tag)s is marked lost; an incident was opened."), "error")


@bp.get("/flags/<int:flag_id>")
@privileged
def flag_page(flag_id: int):
    flag = get_or_404(Flag, flag_id)
    if flag.checkout is None:  # an item a stock-take found missing: nothing is due
        return render_template("desk/flag.html", flag=flag, co=None, now=now(), suggested_due="")
    local_due = clock.local(flag.checkout.due_at, reader_zone()).replace(tzinfo=None)
    return render_template("desk/flag.html", flag=flag, co=flag.checkout, now=now(),
                           suggested_due=local_due.strftime("%Y-%m-%dT%H:%M"))


@bp.post("/requests/<int:request_id>")
@privileged
def decide(request_id: int):
    req = get_or_404(CheckoutRequest, request_id)
    form = DecisionForm()
    with attempt() as done:
        approvals.decide_request(db(), now(), request=req, actor=actor(), approve=form.decision.data == "approve",
                                 note=form.note.data, step_id=form.step.data,
                                 policy=policy.from_config(current_app.config), source=client_address())
    if done:
        flash(_decided(req), "success")
    return redirect(url_for("desk.board"), 303)


def _decided(req: CheckoutRequest) -> str:
    """What the desk's decision did: the item is out, ready for its day, waiting for the next approver, or denied."""
    tag = req.item.asset_tag
    if req.status == RequestStatus.denied:
        return gettext("%(tag)s: denied.", tag=tag)
    if req.status == RequestStatus.pending:
        return gettext("%(tag)s: approved; it now waits for the next approver.", tag=tag)
    if req.checkout_id is None:
        return gettext("%(tag)s: approved in advance for %(day)s.", tag=tag, day=day(req.for_date))
    return gettext("%(tag)s: approved, now out with %(name)s.", tag=tag, name=req.requester.name)


@bp.post("/found/<int:report_id>")
@privileged
def handle_found(report_id: int):
    """One report handled (a message); a label's scans are handled together from the board's list."""
    report = get_or_404(FoundReport, report_id)
    form = NoteForm()
    with attempt():
        found_reports.handle(db(), now(), found_reports.unhandled(db(), [report.id], []), actor(), form.note.data,
                             source=client_address())
    return redirect(url_for("desk.board"), 303)


@bp.post("/found")
@privileged
def handle_found_many():
    """Several finders' messages and scanned labels handled at once, with one note."""
    form = FoundHandledForm()
    reports = found_reports.unhandled(db(), _ids(form.report.data), _ids(form.item.data))
    if not reports:
        flash(gettext("Tick the reports that were handled."), "error")
        return redirect(url_for("desk.board"), 303)
    with attempt() as done:
        n = found_reports.handle(db(), now(), reports, actor(), form.note.data, source=client_address())
    if done:
        flash(gettext("%(n)d report(s) marked handled.", n=n), "success")
    return redirect(url_for("desk.board"), 303)


def _ids(values: list[str] | None) -> list[int]:
    return [i for v in values or [] if (i := as_int(v)) is not None][:1000]


def _receive(code: str) -> dict:
    """Receive one return from the scanner; the result line for the running list."""
    bag = None
    with attempt(explain=False) as done:
        item = scanner.item_from_code(db(), code)
        if item.kind == Kind.bag and item.contents:
            bag = item
        else:
            co = custody.open_checkout(db(), item)
            holder = co.holder.name if co is not None else ""
            # Received in bulk: an item whose erasure must be confirmed waits for the desk's return inspection.
            custody.return_item(db(), now(), item=item, actor=actor(), source=client_address(), erasure="pending",
                                policy=policy.from_config(current_app.config))
    if not done:
        return {"ok": False, "tag": "", "message": describe(done.error)}
    if bag is not None:
        return {"ok": False, "tag": bag.asset_tag, "link": url_for("custody.item", tag=bag.asset_tag),
                "message": gettext("%(tag)s is a bag: open it to tick what came back.", tag=bag.asset_tag)}
    return {"ok": True, "tag": item.asset_tag, "message": gettext("%(tag)s returned (from %(name)s).",
                                                                   tag=item.asset_tag, name=holder)}


@bp.route("/scanner", methods=["GET", "POST"], endpoint="scanner")
@privileged
def scanner_page():
    """Returns in bulk: a USB/Bluetooth scanner types the URL and Enter, or the camera, or a photo."""
    history = session.get("scanner", [])
    form = ScannerForm()
    if request.method == "POST":
        code = form.code.data or ""
        photo = form.photo.data
        if photo and photo.filename:
            try:
                code = scanner.decode_photo(photo.read()) or ""
            except InvalidInput as err:  # not a photo, or too large: nothing to receive
                result = {"ok": False, "tag": "", "message": describe(err)}
            else:
                result = _receive(code) if code else {"ok": False, "tag": "",
                                                      "message": gettext("No QR code could be read in the photo.")}
        else:
            result = _receive(code)
        history = [result, *history][:SCANNER_HISTORY]
        session["scanner"] = history
        if request.accept_mimetypes.best == "application/json" or form.js.data == "1":
            return jsonify(result)
        return redirect(url_for("desk.scanner"), 303)
    return render_template("desk/scanner.html", history=history,
                           inspections=custody.waiting_for_inspection(db()))
