"""Admin pages for labels: pick items and a layout, preview, print view, downloads, reissue."""

from __future__ import annotations

import io
import tempfile

from flask import Blueprint, abort, current_app, flash, jsonify, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import func, select

from .. import queries
from ..errors import N_, DomainError, InvalidInput
from ..http import actor, admin_only, attempt, client_address, db, flash_error, found_or_404, now
from ..i18n import describe, gettext
from ..items import register as items
from ..models import LabelJob
from ..text import as_int
from . import design, jobs, layouts, render, service
from .design import PT

bp = Blueprint("admin_labels", __name__, url_prefix="/admin/labels")

FILTERS = ("q", "kind", "status", "data_class", "department", "printed")
CUSTOM_FIELDS = ("page_w", "page_h", "label_w", "label_h", "cols", "rows", "left", "top", "pitch_x", "pitch_y")
PRINT_VIEW_LIMIT = 1000
MAX_TICKED = 10_000


def _filters(source) -> dict:
    return {k: (source.get(k) or "").strip()[:100] for k in FILTERS}


def _items_stmt(filters: dict):
    """The register's items that match the filters, with "never printed" on top of the shared ones."""
    stmt = queries.items_stmt(**{k: v for k, v in filters.items() if k != "printed"})
    return service.never_printed(stmt) if filters.get("printed") == "never" else stmt


def _ticked(source) -> list[int]:
    return list(dict.fromkeys(i for v in source.getlist("id") if (i := as_int(v)) is not None))[:MAX_TICKED]


def _selection(source):
    """The items to print: the ticked ones when any are ticked, else every item that matches the filters."""
    ids = _ticked(source)
    if ids:
        return service.ids_stmt(ids)
    if source.get("select") == "picked":
        raise InvalidInput(N_("Pick at least one item, or choose every item that matches."))
    return _items_stmt(_filters(source))


def _layout(source):
    name = source.get("layout") or layouts.DEFAULT_LAYOUT
    if name == "custom":
        try:
            values = [float(source.get(f, "")) for f in CUSTOM_FIELDS]
        except ValueError:
            raise InvalidInput(N_("Fill in every size of the custom layout in millimetres.")) from None
        return layouts.custom(*values)
    return layouts.get(name)


def _start_at(source, layout) -> int:
    try:
        n = int(source.get("start_at") or 1)
    except ValueError:
        n = 1
    per_page = layout.per_page if isinstance(layout, layouts.Sheet) else 1
    if not 1 <= n <= per_page:
        raise InvalidInput(N_("Start at must be between 1 and %(n)d."), n=per_page)
    return n


def _opts(source):
    return service.options_from(current_app.config, show_name=source.get("show_name") == "1")


def _count(stmt) -> int:
    return db().scalar(select(func.count()).select_from(service.with_tokens(stmt).order_by(None).subquery())) or 0


def _outcome(source, count: int) -> dict:
    """What the chosen file will hold, said on the button before anything is made: labels, and sheets for a PDF."""
    fmt = source.get("format") or "pdf"
    try:
        layout = _layout(source)
        start_at = _start_at(source, layout)
    except DomainError:
        layout, start_at = None, 1
    labels = min(count, 1) if fmt == "png" else count
    sheet = fmt == "pdf" and isinstance(layout, layouts.Sheet)
    return {"labels": labels, "on_sheets": sheet, "sheets": service.sheets_needed(labels, layout, start_at) if sheet
            else 0, "per_page": layout.per_page if sheet else 0}


@bp.get("/")
@admin_only
def index():
    s = db()
    args = _filters(request.args)
    page = queries.paginate(s, _items_stmt(args), request.args.get("page", 1, type=int))
    ticked = _ticked(request.args)
    count = _count(service.ids_stmt(ticked)) if ticked else page.total
    on_page = {item.id for item in page.rows}
    return render_template("admin_labels/index.html", page=page, args=args, layouts=layouts.LAYOUTS.values(),
                           departments=queries.departments(s), printer=current_app.config.get("LABEL_PRINTER"),
                           custom_fields=CUSTOM_FIELDS, chosen=request.args,
                           filters_set={k: v for k, v in args.items() if v}, ticked=set(ticked),
                           ticked_elsewhere=[i for i in ticked if i not in on_page], outcome=_outcome(request.args, count),
                           printed=service.printed_at(s, list(on_page)), default_layout=layouts.DEFAULT_LAYOUT,
                           show_name=request.args.get("show_name") == "1" if "layout" in request.args
                           else current_app.config.get("LABEL_SHOW_NAME"))


def _svg_pages(stmt, layout, start_at, opts):
    """Pages for the print view: each a list of (x, y, plan, path) in millimetres."""
    sheet = layout if isinstance(layout, layouts.Sheet) else layouts.Sheet(
        layout.name, layout.title, layout.fits, layout.label_w, layout.label_h, 1, 1, 0, 0,
        layout.label_w, layout.label_h, layout.label_w, layout.label_h)
    pages: list[list] = [[]]
    slot = start_at - 1
    for data in service.label_data(db(), stmt.limit(PRINT_VIEW_LIMIT), opts):
        if slot == sheet.per_page:
            pages.append([])
            slot = 0
        ox, oy = sheet.position(slot)
        plan = design.plan(data, sheet.label_w, sheet.label_h)
        pages[-1].append((ox, oy, plan, _qr_path(plan)))
        slot += 1
    return sheet, pages


def _qr_path(plan: design.Plan) -> str:
    qx, qy, _side = plan.qr
    module, q = plan.module, plan.quiet
    parts = []
    for r, row in enumerate(plan.modules):
        for start, length in render.module_runs(row):
            parts.append(f"M{qx + (start + q) * module:.3f} {qy + (r + q) * module:.3f}"
                         f"h{length * module:.3f}v{module:.3f}h{-length * module:.3f}z")
    return "".join(parts)


@bp.get("/print")
@admin_only
def print_view():
    try:
        stmt, layout = _selection(request.args), _layout(request.args)
        start_at = _start_at(request.args, layout)
    except DomainError as err:
        flash_error(err)
        return redirect(url_for("admin_labels.index"))
    total = _count(stmt)
    sheet, pages = _svg_pages(stmt, layout, start_at, _opts(request.args))
    return render_template("admin_labels/print.html", sheet=sheet, pages=pages, total=total, PT=PT,
                           limit=PRINT_VIEW_LIMIT, layout=layout, sheets=service.sheets_needed(total, layout, start_at))


@bp.get("/preview/<tag>.png")
@admin_only
def preview(tag: str):
    item = found_or_404(queries.item_by_tag(db(), tag))
    try:
        layout = _layout(request.args)
    except DomainError:
        abort(400)
    data = next(service.label_data(db(), service.ids_stmt([item.id]), _opts(request.args)), None)
    if data is None:
        abort(404)
    img = (render.printer_png(data, layout) if isinstance(layout, layouts.Printer)
           else render.render_png(data, layout.label_w, layout.label_h))
    return send_file(io.BytesIO(render.png_bytes(img)), mimetype="image/png", max_age=0)


FORMATS = {"pdf": ("application/pdf", "pdf"), "zip": ("application/zip", "zip"),
           "png": ("image/png", "png"), "ql": ("application/octet-stream", "bin")}


@bp.post("/download")
@admin_only
def download():
    form = request.form
    fmt = form.get("format", "pdf")
    try:
        if fmt not in FORMATS:
            raise InvalidInput(N_("Unknown file format."))
        stmt, layout = _selection(form), _layout(form)
        start_at = _start_at(form, layout)
        if fmt == "pdf" and not isinstance(layout, layouts.Sheet):
            raise InvalidInput(N_("PDF needs a sheet layout; for a label printer choose PNG, zip or QL."))
        if fmt == "ql" and not isinstance(layout, layouts.Printer):
            raise InvalidInput(N_("Brother QL raster needs a Brother QL layout."))
    except DomainError as err:
        if form.get("async") == "1":
            return jsonify(error=describe(err)), 400
        flash_error(err)
        return redirect(url_for("admin_labels.index"), 303)
    opts = _opts(form)
    s = db()
    ids = [i for (i,) in s.execute(select(stmt.subquery().c.id))]
    if not ids:
        flash(gettext("No items match."), "error")
        return redirect(url_for("admin_labels.index"), 303)
    mimetype, ext = FORMATS[fmt]
    if fmt == "pdf" and len(ids) > service.CHUNK:  # several PDFs of 1,000 labels, zipped: memory stays flat
        mimetype, ext = FORMATS["zip"]
    filename = f"labels-{layout.name}.{ext}" if fmt != "png" else None
    if fmt == "png":
        data = next(service.label_data(s, service.ids_stmt(ids[:1]), opts))
        img = (render.printer_png(data, layout) if isinstance(layout, layouts.Printer)
               else render.render_png(data, layout.label_w, layout.label_h))
        _printed(ids[:1])
        return send_file(io.BytesIO(render.png_bytes(img)), mimetype=mimetype, as_attachment=True,
                         download_name=f"{data.asset_tag}.png")
    if form.get("async") == "1":  # the page polls; the scheduler process makes the file
        with attempt(explain=False):
            job = jobs.queue(db(), now(), owner_id=current_user.id, fmt=fmt, ids=ids, layout=layout,
                             start_at=start_at, opts=opts, filename=filename, mimetype=mimetype)
        return jsonify(job=job.public_id, total=len(ids), **_job_links(job.public_id))
    # Without JavaScript: made here, for small selections (the page offers the job to everyone with a browser).
    with tempfile.NamedTemporaryFile(prefix="labels-") as tmp:
        jobs.make_file(db(), fmt, jobs.params_for(ids, layout, start_at, opts), tmp.name, lambda n: None,
                       current_app.config["LABEL_PRINTER_MODEL"])
        buf = io.BytesIO(tmp.read())
    _printed(ids)
    return send_file(buf, mimetype=mimetype, as_attachment=True, download_name=filename)


def _printed(ids: list[int]) -> None:
    """The labels of a file handed out are printed as of now (the list shows when, and "never printed")."""
    with attempt(explain=False):
        service.mark_printed(db(), now(), ids)


def _job_links(public_id: str) -> dict:
    return {"status": url_for("admin_labels.job_status", job_id=public_id),
            "file": url_for("admin_labels.job_file", job_id=public_id),
            "retry": url_for("admin_labels.job_retry", job_id=public_id)}


def _job(job_id: str) -> LabelJob:
    return found_or_404(jobs.find(db(), job_id, current_user.id))


@bp.get("/jobs/<job_id>")
@admin_only
def job_status(job_id: str):
    return jsonify(**jobs.state(_job(job_id), now()))


@bp.post("/jobs/<job_id>/retry")
@admin_only
def job_retry(job_id: str):
    """A job that failed, or whose maker stopped, is queued again."""
    job = _job(job_id)
    with attempt(explain=False):
        jobs.retry(db(), job)
    return jsonify(job=job.public_id, total=job.total, **_job_links(job.public_id))


@bp.get("/jobs/<job_id>/file")
@admin_only
def job_file(job_id: str):
    job = _job(job_id)
    if job.status != "done" or job.output is None:
        abort(404)
    return send_file(io.BytesIO(job.output), mimetype=job.mimetype, as_attachment=True, download_name=job.filename)


@bp.post("/send")
@admin_only
def send():
    cfg = current_app.config
    try:
        stmt, layout = _selection(request.form), _layout(request.form)
        if not cfg.get("LABEL_PRINTER") or not isinstance(layout, layouts.Printer):
            raise InvalidInput(N_("Sending needs a Brother QL layout and a configured printer address."))
    except DomainError as err:
        flash_error(err)
        return redirect(url_for("admin_labels.index"), 303)
    stmt = stmt.limit(200)
    data = list(service.label_data(db(), stmt, _opts(request.form)))
    try:
        render.send_to_printer(render.ql_raster(data, layout, cfg["LABEL_PRINTER_MODEL"]), cfg["LABEL_PRINTER"])
    except Exception as exc:  # the printer is a device on the network: say what went wrong
        current_app.logger.warning("label printer failed: %r", exc)
        flash(gettext("The printer did not accept the labels: %(reason)s", reason=str(exc)[:200]), "error")
        return redirect(url_for("admin_labels.index"), 303)
    _printed([i for (i,) in db().execute(select(stmt.subquery().c.id))])
    flash(gettext("%(n)d labels were sent to the printer.", n=len(data)), "success")
    return redirect(url_for("admin_labels.index"), 303)


@bp.post("/reissue/<tag>")
@admin_only
def reissue(tag: str):
    item = found_or_404(queries.item_by_tag(db(), tag))
    with attempt():
        items.issue_label(db(), now(), item, actor(), source=client_address())
    flash(gettext("%(tag)s has a new label; the old one no longer works. Print and attach the new one.",
                  tag=item.asset_tag), "success")
    return redirect(url_for("custody.item", tag=item.asset_tag), 303)
