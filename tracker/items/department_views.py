"""Admin pages for departments: list, create, rename, re-parent and set managers (each change is audited)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select
from sqlalchemy.orm import selectinload

from ..http import actor, admin_only, attempt, client_address, db, found_or_404, now
from ..i18n import gettext
from ..models import Department, Item, User
from . import departments
from .forms import DepartmentForm

bp = Blueprint("admin_departments", __name__, url_prefix="/admin/departments")


def _form(dept: Department | None) -> DepartmentForm:
    s = db()
    parents = [(d.id, d.name) for d in departments.all_departments(s) if dept is None or d.id != dept.id]
    users = [(u.id, f"{u.name} <{u.email}>") for u in s.scalars(
        select(User).where((User.active.is_(True)) | (User.id.in_([m.id for m in (dept.managers if dept else [])])))
        .order_by(User.name))]
    form = DepartmentForm(parents=parents, users=users)
    if request.method == "GET" and dept is not None:
        form.name.data = dept.name
        form.parent.data = str(dept.parent_id or "")
        form.managers.data = [str(m.id) for m in dept.managers]
    return form


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
                                      manager_ids=form.managers.data, actor=actor(), source=client_address())
        if done:
            flash(gettext("The department %(name)s is added.", name=dept.name), "success")
            return redirect(url_for("admin_departments.index"))
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
                               manager_ids=form.managers.data, actor=actor(), source=client_address())
        if done:
            flash(gettext("The department %(name)s is saved.", name=dept.name), "success")
            return redirect(url_for("admin_departments.index"))
    return (render_template("admin_departments/form.html", form=form, dept=dept),
            (400 if request.method == "POST" else 200))
