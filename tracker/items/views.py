"""Admin pages for the item register: list, create, edit, retire, CSV import."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from .. import queries
from ..errors import DomainError
from ..http import actor, admin_only, attempt, client_address, db, flash_error, found_or_404, now
from ..i18n import describe, gettext
from ..models import Item
from . import csv_import
from . import register as items
from .forms import DisposeForm, ImportConfirmForm, ImportForm, ItemForm, place_choices

bp = Blueprint("admin_items", __name__, url_prefix="/admin/items")

FILTERS = ("q", "kind", "status", "data_class", "department", "site", "place")


@bp.get("/")
@admin_only
def index():
    s = db()
    args = {k: (request.args.get(k) or "").strip()[:100] for k in FILTERS}
    stmt = queries.items_stmt(**args).options(selectinload(Item.site), selectinload(Item.home_place))
    page = queries.paginate(s, stmt, request.args.get("page", 1, type=int))
    status = queries.open_checkouts_by_item(s, [i.id for i in page.rows])
    sites = queries.site_choices(s)
    return render_template("admin_items/index.html", page=page, status=status, args=args,
                           departments=queries.departments(s), sites=sites,
                           places=place_choices(sites, queries.place_choices(s), with_retired=True))


def _item(tag: str) -> Item:
    return found_or_404(queries.item_by_tag(db(), tag))


def _form(item: Item | None) -> ItemForm:
    """The item form with its lists: departments, and sites and storage places (the item's own even if retired)."""
    s = db()
    return ItemForm(obj=item if item is not None and request.method == "GET" else None,
                    departments=queries.department_choices(s), sites=queries.site_choices(s),
                    places=queries.place_choices(s), kept_place_id=item.home_place_id if item is not None else None)


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = _form(None)
    if form.validate_on_submit():
        with attempt() as done:
            item = items.create(db(), now(), items.validate(form.values()), actor(), source=client_address())
        if done:
            flash(gettext("%(tag)s is registered.", tag=item.asset_tag), "success")
            return redirect(url_for("custody.item", tag=item.asset_tag))
    return render_template("admin_items/form.html", form=form, item=None), (400 if request.method == "POST" else 200)


@bp.route("/<tag>/edit", methods=["GET", "POST"])
@admin_only
def edit(tag: str):
    item = _item(tag)
    form = _form(item)
    if request.method == "GET":
        form.kind.data, form.data_class.data = item.kind.value, item.data_class.value
        form.department.data = str(item.department_id or "")
        form.site.data, form.home_place.data = str(item.site_id or ""), str(item.home_place_id or "")
        form.bag.data = item.bag.asset_tag if item.bag else ""
    if form.validate_on_submit():
        with attempt() as done:
            items.update(db(), now(), item, items.validate(form.values()), actor(), source=client_address())
        if done:
            flash(gettext("%(tag)s is saved.", tag=item.asset_tag), "success")
            return redirect(url_for("custody.item", tag=item.asset_tag))
    return render_template("admin_items/form.html", form=form, item=item), (400 if request.method == "POST" else 200)


@bp.post("/<tag>/retire")
@admin_only
def retire(tag: str):
    item = _item(tag)
    with attempt() as done:
        items.retire(db(), now(), item, actor(), source=client_address())
    if done:
        flash(gettext("%(tag)s is retired.", tag=item.asset_tag), "success")
    return redirect(url_for("custody.item", tag=item.asset_tag), 303)


@bp.post("/<tag>/dispose")
@admin_only
def dispose(tag: str):
    """Record the item's disposal (廃棄), from the admin part of its page."""
    item = _item(tag)
    form = DisposeForm()
    with attempt() as done:
        items.dispose(db(), now(), item, actor(), method=form.method.data or "", contractor=form.contractor.data or "",
                      certificate=form.certificate.data or "", source=client_address())
    if done:
        flash(gettext("%(tag)s is recorded as disposed of.", tag=item.asset_tag), "success")
    return redirect(url_for("custody.item", tag=item.asset_tag), 303)


def _preview_page(form: ImportForm, text: str, preview: csv_import.Preview, status: int):
    errors = [(e.line, describe(DomainError(e.message, **e.params))) for e in preview.errors]
    return render_template("admin_items/import.html", form=form, preview=preview, text=text, errors=errors), status


@bp.route("/import", methods=["GET", "POST"])
@admin_only
def import_():
    """Upload shows a dry-run preview; the preview's button imports the same text, all or nothing."""
    form = ImportForm()
    confirm = ImportConfirmForm()
    if request.method == "POST" and confirm.confirm.data == "1":
        text = confirm.text.data or ""
        preview = csv_import.check(db(), text)  # read without the write lock; the import holds it briefly
        with attempt() as done:
            created = csv_import.run(db(), now(), preview, actor(), source=client_address())
        if not done:
            return _preview_page(form, text, csv_import.check(db(), text), 400)
        flash(gettext("%(n)d items were imported.", n=len(created)), "success")
        return redirect(url_for("admin_items.index"))
    if form.validate_on_submit():
        try:
            text, encoding = csv_import.decode(form.file.data.read())
        except DomainError as err:
            flash_error(err)
            return render_template("admin_items/import.html", form=form, preview=None, text="", errors=[]), 400
        preview = csv_import.check(db(), text, encoding)
        return _preview_page(form, text, preview, 200 if preview.ok else 400)
    return render_template("admin_items/import.html", form=form, preview=None, text="", errors=[])
