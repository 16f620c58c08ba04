"""Admin pages for departments: list, create, rename, re-parent and set managers (each change is audited)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..accounts.people import named_in, suggesting_people, typed
from ..http import actor, admin_only, attempt, client_address, db, found_or_404, now
from ..i18n import describe, gettext
from ..models import Department, Item
from . import departments
from .forms import DepartmentForm

bp = Blueprint("admin_departments", __name__, url_prefix="/admin/departments")


def _form(dept: Department | None) -> DepartmentForm:
    """The form; its managers typed, suggested as one types (first shown: the managers, then two empty fields)."""
    parents = [(d.id, d.name) for d in departments.all_departments(db()) if dept is None or d.id != dept.id]
    form = DepartmentForm(parents=parents)
    if request.method == "GET":
        if dept is not None:
            form.name.data = dept.name
            form.parent.data = str(dept.parent_id or "")
        form.managers.pop_entry()
        for manager in [*(dept.managers if dept is not None else []), None, None]:
            form.managers.append_entry(typed(manager))
    for n, f in enumerate(form.managers, start=1):
        f.label.text = gettext("Manager %(n)d", n=n)
    suggesting_people(*form.managers)
    return form


def _manager_ids(form: DepartmentForm) -> list[int]:
    """The managers typed, as ids, each once; one who is no one, or two people, is refused about its field."""
    return list(dict.fromkeys(named_in(db(), *form.managers)))


def _mark(form: DepartmentForm, error) -> None:
    """A refusal about one manager's field is said beside it too."""
    for f in form.managers:
        if error is not None and error.about == f.name:
            f.errors = [*f.errors, describe(error)]


@bp.get("/")
@admin_only
def index():
    s = db()
    rows = list(s.scalars(select(Department).options(selectinload(Department.managers),
                                                     selectinload(Department.parent)).order_by(Department.name)))
    counts = dict(s.execute(select(Item.department_id, func.count(Item.id))
                            .where(Item.department_id.is_not(None), Item.retired_at.is_(None))
                            .group_by(Item.department_id)).all())
    return render_template("admin_departments/index.html", rows=rows, counts=counts)


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = _form(None)
    if form.validate_on_submit():
        with attempt() as done:
            dept = departments.create(db(), now(), name=form.name.data, parent_id=form.parent.data,
                                      manager_ids=_manager_ids(form), actor=actor(), source=client_address())
        if done:
            flash(gettext("The department %(name)s is added.", name=dept.name), "success")
            return redirect(url_for("admin_departments.index"))
        _mark(form, done.error)
    return (render_template("admin_departments/form.html", form=form, dept=None),
            (400 if request.method == "POST" else 200))


@bp.route("/<int:dept_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(dept_id: int):
    dept = found_or_404(db().get(Department, dept_id))
    form = _form(dept)
    if form.validate_on_submit():
        with attempt() as done:
            departments.update(db(), now(), dept, name=form.name.data, parent_id=form.parent.data,
                               manager_ids=_manager_ids(form), actor=actor(), source=client_address())
        if done:
            flash(gettext("The department %(name)s is saved.", name=dept.name), "success")
            return redirect(url_for("admin_departments.index"))
        _mark(form, done.error)
    return (render_template("admin_departments/form.html", form=form, dept=dept),
            (400 if request.method == "POST" else 200))
