"""Stock-take pages for the security desk and admins: the list of sessions, opening one, the session page with its
scanner input and live progress, counting (also from the phone's scan page), closing and the report files."""

from __future__ import annotations

import io

from flask import Blueprint, Flask, abort, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import and_, select
from sqlalchemy.orm import joinedload, selectinload

from .. import queries
from ..desk import scanner
from ..errors import N_, InvalidInput
from ..http import actor, attempt, back, client_address, db, get_or_404, now, privileged, record_export
from ..i18n import describe, gettext, when
from ..models import Department, Item, Site, StockCount, StockTake, StoragePlace
from ..reports import writers
from ..text import as_int
from . import reconcile as rc
from . import report, sessions
from .forms import CountForm, OpenForm

bp = Blueprint("stocktake", __name__, url_prefix="/stocktakes")

LIST_LIMIT = 300  # lines per list on the page; the report has them all
SHOWN_WITH = ("opened_by", "closed_by", "site", "department", "place")  # what the list of sessions names


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
    app.add_template_global(open_for_counting, "stocktakes_open")
    app.jinja_env.globals.update(stocktake_scope=report.scope_text, stocktake_category=report.category_label,
                                 stocktake_why=report.why_label, stocktake_method=report.method_label)


def open_for_counting(item: Item) -> list[tuple[StockTake, StockCount | None]]:
    """The open sessions a desk member's scan page offers to count `item` in, each with the item's count there if
    it was counted already (none for anyone else); one statement, only when the page asks."""
    if not (current_user.is_authenticated and current_user.privileged):
        return []
    counted = and_(StockCount.stocktake_id == StockTake.id, StockCount.item_id == item.id)
    return [tuple(row) for row in db().execute(
        select(StockTake, StockCount).outerjoin(StockCount, counted)
        .options(joinedload(StockCount.counted_by), joinedload(StockTake.site), joinedload(StockTake.department),
                 joinedload(StockTake.place))
        .where(StockTake.closed_at.is_(None)).order_by(StockTake.id))]


def _places() -> list[StoragePlace]:
    """The storage places in use, the main office's first, with their sites."""
    return list(db().scalars(select(StoragePlace).options(joinedload(StoragePlace.site))
                             .where(StoragePlace.retired_at.is_(None))
                             .order_by(StoragePlace.site_id.is_not(None), StoragePlace.name)))


def _choices() -> dict:
    s = db()
    return dict(sites=list(s.scalars(select(Site).order_by(Site.name))),
                departments=list(s.scalars(select(Department).order_by(Department.name))), places=_places())


@bp.get("/")
@privileged
def index():
    stmt = (select(StockTake).options(*(selectinload(getattr(StockTake, r)) for r in SHOWN_WITH))
            .order_by(StockTake.closed_at.is_not(None), StockTake.id.desc()))
    page = queries.paginate(db(), stmt, request.args.get("page", 1, type=int))
    return render_template("stocktake/index.html", page=page, form=OpenForm(), **_choices())


def _target(form: OpenForm) -> int | None:
    raw = {"site": form.site.data, "department": form.department.data, "place": form.place.data}.get(form.scope.data)
    raw = (raw or "").strip()
    if not raw:
        return None
    if (ident := as_int(raw)) is None:
        raise InvalidInput(N_("Choose what the stock-take covers."))
    return ident


@bp.post("/")
@privileged
def open_():
    form = OpenForm()
    with attempt() as done:
        stocktake = sessions.open_stocktake(db(), now(), actor(), form.scope.data or "", _target(form),
                                            source=client_address())
    if not done:
        return redirect(url_for("stocktake.index"), 303)
    flash(gettext("Stock-take %(n)d is open: scan the labels.", n=stocktake.id), "success")
    return redirect(url_for("stocktake.show", stocktake_id=stocktake.id), 303)


@bp.get("/<int:stocktake_id>")
@privileged
def show(stocktake_id: int):
    """An open session's counting page (the live part alone with `fragment=1`), or a closed one's frozen result."""
    stocktake = get_or_404(StockTake, stocktake_id)
    rec = rc.reconcile(db(), stocktake) if stocktake.closed_at is None else rc.thaw(stocktake.result)
    context = dict(stocktake=stocktake, rec=rec, limit=LIST_LIMIT)
    if request.args.get("fragment") == "1":
        return render_template("stocktake/_live.html", **context)
    return render_template("stocktake/show.html", form=CountForm(), places=_places(), **context)


def _item_and_method(form: CountForm) -> tuple[Item, str]:
    """The item to count and how it was read: the phone's button names its tag; a code that is a label's URL
    came from a scanner (or the camera, or a photo); anything else was typed."""
    if form.item.data:
        item = queries.item_by_tag(db(), form.item.data, exact=True)
        if item is None:
            raise InvalidInput(N_("That is not a label of this system."))
        return item, "phone"
    photo, code = form.photo.data, form.code.data or ""
    if photo and getattr(photo, "filename", None):
        code = scanner.decode_photo(photo.read()) or ""
        if not code:
            raise InvalidInput(N_("No QR code could be read in the photo."))
        return scanner.item_from_code(db(), code), "scanner"
    method = "scanner" if scanner.TOKEN_IN_URL.search(queries.typed(code)) else "typed"
    return scanner.item_from_code(db(), code), method


def _place(form: CountForm) -> int | None:
    raw = (form.place.data or "").strip()
    return as_int(raw)


@bp.post("/<int:stocktake_id>/count")
@privileged
def count(stocktake_id: int):
    """Count one item: from the session page's scanner input (JSON back to its script) or a phone's scan page
    (back there, with a message)."""
    stocktake = get_or_404(StockTake, stocktake_id)
    form = CountForm()
    with attempt(explain=False) as done:
        item, method = _item_and_method(form)
        made, new = sessions.count(db(), now(), stocktake, item, actor(), method, _place(form), source=client_address())
        result = _counted(stocktake, item, made, new)
    if not done:
        result = {"ok": False, "tag": "", "message": describe(done.error)}
    if form.js.data == "1" or request.accept_mimetypes.best == "application/json":
        return jsonify(result)
    flash(result["message"], "success" if result["ok"] else "error")
    return back("stocktake.show", 303, stocktake_id=stocktake_id)


def _counted(stocktake: StockTake, item: Item, made: StockCount, new: bool) -> dict:
    """The line for the counter: counted, counted already (by whom, when), and a word if it does not belong here."""
    tag = item.asset_tag
    if new:
        message = gettext("%(tag)s counted.", tag=tag)
    else:
        message = gettext("%(tag)s was counted already (by %(name)s, %(when)s).", tag=tag, name=made.counted_by.name,
                          when=when(made.counted_at))
    if db().scalar(select(Item.id).where(Item.id == item.id, rc.in_scope(stocktake))) is None:
        message += " " + gettext("It is not in this stock-take's scope.")
    return {"ok": True, "tag": tag, "new": new, "message": message}


@bp.post("/<int:stocktake_id>/close")
@privileged
def close(stocktake_id: int):
    stocktake = get_or_404(StockTake, stocktake_id)  # the form is only its CSRF token, checked for every POST
    with attempt() as done:
        sessions.close(db(), now(), stocktake, actor(), report.render, source=client_address())
    if done:
        flash(gettext("Stock-take %(n)d is closed; its report is below.", n=stocktake_id), "success")
    return redirect(url_for("stocktake.show", stocktake_id=stocktake_id), 303)


REPORTS = {"pdf": "report_pdf", "csv": "report_csv", "xlsx": "report_xlsx"}


@bp.get("/<int:stocktake_id>/report.<fmt>")
@privileged
def report_file(stocktake_id: int, fmt: str):
    """The report kept when the session closed, byte for byte (its PDF's SHA-256 is in the audit trail)."""
    stocktake = get_or_404(StockTake, stocktake_id)
    if fmt not in REPORTS or stocktake.closed_at is None:
        abort(404)
    record_export(f"stocktake.{fmt}", stocktake=stocktake.id)
    return send_file(io.BytesIO(getattr(stocktake, REPORTS[fmt])), mimetype=writers.MIMETYPES[fmt], as_attachment=True,
                     download_name=f"stocktake-{stocktake.id}.{fmt}")
