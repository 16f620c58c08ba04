"""Admin pages for the item register: list, create, edit, retire, CSV import."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import csv_import, items, queries
from .errors import DomainError
from .forms import ImportForm, ItemForm
from .i18n import describe, gettext
from .models import Item
from .web import admin_only, client_address, db, flash_error, now

bp = Blueprint("admin_items", __name__, url_prefix="/admin/items")

FILTERS = ("q", "kind", "status", "data_class", "department")


@bp.get("/")
@admin_only
def index():
    s = db()
    args = {k: (request.args.get(k) or "").strip()[:100] for k in FILTERS}
    page = queries.paginate(s, queries.items_stmt(**args), request.args.get("page", 1, type=int))
    status = queries.open_checkouts_by_item(s, [i.id for i in page.rows])
    return render_template("admin/items.html", page=page, status=status, args=args,
                           departments=queries.departments(s))


def _values(form: ItemForm) -> dict:
    return {name: (getattr(form, name).data if getattr(form, name).data is not None else "")
            for name in ("asset_tag", "kind", "name", "serial", "department", "data_class", "encrypted",
                         "people_count", "notes", "bag")}


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = ItemForm()
    if form.validate_on_submit():
        s = db()
        try:
            item = items.create(s, now(), items.validate(_values(form)), current_user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
        else:
            s.commit()
            flash(gettext("%(tag)s is registered.", tag=item.asset_tag), "success")
            return redirect(url_for("custody.item", tag=item.asset_tag))
    return render_template("admin/item_form.html", form=form, item=None), (400 if form.errors or
                                                                            request.method == "POST" else 200)


def _item(tag: str) -> Item:
    item = queries.item_by_tag(db(), tag)
    if item is None:
        abort(404)
    return item


@bp.route("/<tag>/edit", methods=["GET", "POST"])
@admin_only
def edit(tag: str):
    item = _item(tag)
    form = ItemForm(obj=item if request.method == "GET" else None)
    if request.method == "GET":
        form.kind.data, form.data_class.data = item.kind.value, item.data_class.value
        form.bag.data = item.bag.asset_tag if item.bag else ""
    if form.validate_on_submit():
        s = db()
        try:
            items.update(s, now(), item, items.validate(_values(form)), current_user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
        else:
            s.commit()
            flash(gettext("%(tag)s is saved.", tag=item.asset_tag), "success")
            return redirect(url_for("custody.item", tag=item.asset_tag))
    return render_template("admin/item_form.html", form=form, item=item), (400 if request.method == "POST" else 200)


@bp.post("/<tag>/retire")
@admin_only
def retire(tag: str):
    s = db()
    item = _item(tag)
    try:
        items.retire(s, now(), item, current_user, source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
    else:
        s.commit()
        flash(gettext("%(tag)s is retired.", tag=item.asset_tag), "success")
    return redirect(url_for("custody.item", tag=item.asset_tag), 303)


@bp.route("/import", methods=["GET", "POST"])
@admin_only
def import_():
    """Upload shows a dry-run preview; the preview's button imports the same text, all or nothing."""
    s = db()
    form = ImportForm()
    if request.method == "POST" and request.form.get("confirm") == "1":
        text = request.form.get("text", "")
        try:
            created = csv_import.run(s, now(), text, current_user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
            preview = csv_import.check(s, text)
            return render_template("admin/import.html", form=form, preview=preview, text=text,
                                   errors=[(e.line, _row_message(e)) for e in preview.errors]), 400
        s.commit()
        flash(gettext("%(n)d items were imported.", n=len(created)), "success")
        return redirect(url_for("admin_items.index"))
    if form.validate_on_submit():
        try:
            text, encoding = csv_import.decode(form.file.data.read())
        except DomainError as err:
            flash_error(err)
            return render_template("admin/import.html", form=form, preview=None, text="", errors=[]), 400
        preview = csv_import.check(s, text, encoding)
        return render_template("admin/import.html", form=form, preview=preview, text=text,
                               errors=[(e.line, _row_message(e)) for e in preview.errors]), (200 if preview.ok else 400)
    return render_template("admin/import.html", form=form, preview=None, text="", errors=[])


def _row_message(err: csv_import.RowError) -> str:
    return describe(DomainError(err.message, **err.params))
