"""Records for the desk and auditors: exports, charts per day and department, and an item's full history."""

from __future__ import annotations

import calendar
import io
import re
from collections import Counter, defaultdict
from datetime import date, datetime, timedelta

from flask import Blueprint, Response, abort, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import clock, queries, trail
from ..errors import N_, InvalidInput
from ..http import actor, db, found_or_404, now, privileged, record_export
from ..i18n import day, describe, gettext, reader_zone, when
from ..models import Checkout, Department, Event, Flag, Item
from . import exports, late, ledger, writers

bp = Blueprint("reports", __name__, url_prefix="/desk/records")

MIN_YEAR, MAX_YEAR = 1970, 2999  # records are kept for years, not for millennia


def _tz() -> str:
    """Days and months are the reader's office's, the zone every time in the records is shown in: a month's
    ledger is the take-outs whose times it shows in that month."""
    return reader_zone()


def _month(text: str | None) -> date:
    """The month asked for as YYYY-MM; this month when none is (or it is not a month at all)."""
    match = re.fullmatch(r"(\d{1,4})-(\d{1,2})", (text or "").strip())
    if match is None:
        return clock.local(now(), _tz()).date().replace(day=1)
    year, month = int(match[1]), int(match[2])
    if not (1 <= month <= 12 and MIN_YEAR <= year <= MAX_YEAR):
        raise InvalidInput(N_("%(value)s is outside the dates this system can use."), value=text)
    return date(year, month, 1)


def _utc(day: date) -> datetime:
    if not MIN_YEAR <= day.year <= MAX_YEAR:
        raise InvalidInput(N_("%(value)s is outside the dates this system can use."), value=day.isoformat())
    return clock.from_local(day, _tz())


def _late_period(first: date, last: date) -> tuple[date, date]:
    """The period of the late-returns tables: the days asked for, else the month shown (said so when the days
    asked for are not a period)."""
    raw_from, raw_to = request.args.get("late_from", ""), request.args.get("late_to", "")
    if not raw_from and not raw_to:
        return first, last
    try:
        start, end = date.fromisoformat(raw_from), date.fromisoformat(raw_to)
    except ValueError:
        flash(gettext("Give the first and last day as dates."), "error")
        return first, last
    outside = next((d for d in (start, end) if not MIN_YEAR <= d.year <= MAX_YEAR), None)
    if outside is not None:
        flash(gettext("%(value)s is outside the dates this system can use.", value=outside.isoformat()), "error")
        return first, last
    if end < start or (end - start).days > 366:
        flash(gettext("The last day must be on or after the first, within a year."), "error")
        return first, last
    return start, end


@bp.get("/")
@privileged
def index():
    """Check-outs and overdue flags per local day over a month, and per department."""
    s = db()
    first = _month(request.args.get("month"))
    days = calendar.monthrange(first.year, first.month)[1]
    start, end = _utc(first), _utc(first + timedelta(days=days))
    out_rows = s.execute(select(Checkout.out_at, Department.name).join(Item, Item.id == Checkout.item_id)
                         .outerjoin(Department, Department.id == Item.department_id)
                         .where(Checkout.out_at >= start, Checkout.out_at < end, Checkout.parent_id.is_(None)))
    flag_rows = s.execute(select(Flag.created_at, Department.name).join(Item, Item.id == Flag.item_id)
                          .outerjoin(Department, Department.id == Item.department_id)
                          .where(Flag.created_at >= start, Flag.created_at < end))
    only = (request.args.get("department") or "").strip()[:100]
    per_day: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    per_dept: dict[str, Counter] = defaultdict(Counter)
    for at, dept in out_rows:
        if not only or (dept or "-") == only:
            per_day[clock.local(at, _tz()).day][0] += 1
        per_dept[dept or "-"]["out"] += 1
    for at, dept in flag_rows:
        if not only or (dept or "-") == only:
            per_day[clock.local(at, _tz()).day][1] += 1
        per_dept[dept or "-"]["overdue"] += 1
    series = [(d, *per_day[d]) for d in range(1, days + 1)]
    peak = max([1, *[max(o, f) for _, o, f in series]])
    prev_month = (first - timedelta(days=1)).replace(day=1)
    next_month = first + timedelta(days=days)
    late_from, late_to = _late_period(first, first + timedelta(days=days - 1))
    late_start, late_end = _utc(late_from), _utc(late_to + timedelta(days=1))
    return render_template("reports/index.html", first=first, series=series, peak=peak,
                           late_from=late_from, late_to=late_to, late_people=late.by_person(s, late_start, late_end),
                           late_departments=late.by_department(s, late_start, late_end), late_shown=late.PEOPLE_SHOWN,
                           departments=sorted(per_dept.items()), prev_month=prev_month, next_month=next_month,
                           today=clock.local(now(), _tz()).date(), only=only,
                           all_departments=queries.departments(s), audit_check=trail.last_check(s))


def _csv(chunks, filename: str) -> Response:
    # Read everything while the request's session is open; the response then holds no database connection.
    resp = Response("".join(chunks), mimetype="text/csv; charset=utf-8")
    resp.headers["Content-Disposition"] = f"attachment; filename={filename}"
    return resp


@bp.get("/checkouts.csv")
@privileged
def checkouts_csv():
    try:
        start = date.fromisoformat(request.args.get("from", ""))
        end = date.fromisoformat(request.args.get("to", ""))
    except ValueError:
        flash(gettext("Give the first and last day as dates."), "error")
        return redirect(url_for("reports.index"))
    if end < start or (end - start).days > 366:
        flash(gettext("The last day must be on or after the first, within a year."), "error")
        return redirect(url_for("reports.index"))
    header = [gettext("Asset tag"), gettext("Kind"), gettext("Name"), gettext("Department"), gettext("Site"),
              gettext("Storage place"), gettext("Personal data"), gettext("Held by"), gettext("E-mail"), gettext("Out since"), gettext("Due back"), gettext("Status"),
              gettext("Returned at"), gettext("Returned by"), gettext("Handed over to"), gettext("Purpose"),
              gettext("Destination"), gettext("Reason")]
    chunks = exports.checkouts_csv(db(), now(), _utc(start), _utc(end + timedelta(days=1)), header)
    resp = _csv(chunks, f"checkouts-{start}-{end}.csv")
    record_export("checkouts.csv", first_day=start.isoformat(), last_day=end.isoformat())
    return resp


@bp.get("/register.csv")
@privileged
def register_csv():
    header = [gettext("Asset tag"), gettext("Kind"), gettext("Name"), gettext("Serial number"), gettext("Department"),
              gettext("Site"), gettext("Storage place"), gettext("Personal data"), gettext("Encrypted"), gettext("Number of people"), gettext("Status"),
              gettext("Held by"), gettext("E-mail"), gettext("Out since"), gettext("Due back")]
    stamp = clock.local(now(), _tz()).strftime("%Y%m%d-%H%M")
    resp = _csv(exports.register_csv(db(), now(), header), f"media-register-{stamp}.csv")
    record_export("register.csv")
    return resp


def _department() -> str:
    return (request.args.get("department") or "").strip()[:100]


def _download(table: writers.Table, fmt: str, name: str):
    data = writers.WRITERS[fmt](table)
    return send_file(io.BytesIO(data), mimetype=writers.MIMETYPES[fmt], as_attachment=True,
                     download_name=f"{name}.{fmt}")


def _exported_line() -> str:
    return gettext("Exported %(when)s by %(name)s; times in %(zone)s", when=when(now()), name=actor().name,
                   zone=reader_zone())


@bp.get("/ledger.<fmt>")
@privileged
def ledger_file(fmt: str):
    """The take-out ledger (持ち出し管理台帳) of a month, for one department or all, as CSV, .xlsx or PDF."""
    if fmt not in writers.WRITERS:
        abort(404)
    try:
        first = _month(request.args.get("month"))
    except InvalidInput as err:
        flash(describe(err), "error")
        return redirect(url_for("reports.index"))
    days = calendar.monthrange(first.year, first.month)[1]
    start, end = _utc(first), _utc(first + timedelta(days=days))
    department, with_names = _department(), request.args.get("names") == "1"
    s = db()
    rows = ledger.ledger_rows(s, now(), start, end, department or None, with_names)
    ends = ledger.chain_ends(s, start, end)
    table = writers.Table(
        title=gettext("Take-out ledger"), header=ledger.ledger_header(with_names), rows=rows, lead=4,
        notes=[gettext("Period: %(first)s to %(last)s", first=day(first), last=day(first + timedelta(days=days - 1))),
               gettext("Department: %(name)s", name=department) if department else gettext("All departments"),
               gettext("%(n)d take-outs", n=len(rows)), _exported_line()],
        chain=ends.lines())
    resp = _download(table, fmt, f"take-out-ledger-{first:%Y-%m}")
    record_export(f"ledger.{fmt}", month=f"{first:%Y-%m}", department=department, names=with_names, rows=len(rows),
                  **ends.data())
    return resp


@bp.get("/media-register.<fmt>")
@privileged
def media_register(fmt: str):
    """The media register (媒体管理台帳): every item with its life up to disposal, as CSV, .xlsx or PDF."""
    if fmt not in writers.WRITERS:
        abort(404)
    department = _department()
    s = db()
    rows = ledger.register_rows(s, now(), department or None)
    ends = ledger.chain_ends(s)
    table = writers.Table(
        title=gettext("Media register"), header=ledger.register_header(), rows=rows, lead=3,
        notes=[gettext("Department: %(name)s", name=department) if department else gettext("All departments"),
               gettext("%(n)d items", n=len(rows)), _exported_line()],
        chain=ends.lines(period=False))
    stamp = clock.local(now(), _tz()).strftime("%Y%m%d-%H%M")
    resp = _download(table, fmt, f"media-register-{stamp}")
    record_export(f"media-register.{fmt}", department=department, rows=len(rows), **ends.data())
    return resp


@bp.get("/items/<tag>")
@privileged
def history(tag: str):
    """Every event of one item, newest first, a page at a time."""
    s = db()
    item = found_or_404(queries.item_by_tag(s, tag))
    stmt = (select(Event).options(joinedload(Event.actor)).where(Event.item_id == item.id)
            .order_by(Event.id.desc()))
    page = queries.paginate(s, stmt, request.args.get("page", 1, type=int), size=100)
    return render_template("reports/history.html", item=item, page=page)
