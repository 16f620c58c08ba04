"""Admin pages for user accounts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from .. import queries
from ..http import actor, admin_only, attempt, client_address, db, get_or_404, now
from ..i18n import gettext
from ..models import User
from . import users
from .forms import ActiveForm, UserForm

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


@bp.get("/")
@admin_only
def index():
    q = (request.args.get("q") or "").strip()[:100]
    page = queries.paginate(db(), queries.users_stmt(q), request.args.get("page", 1, type=int))
    return render_template("admin_users/index.html", page=page, q=q)


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = UserForm(departments=queries.department_choices(db()))
    if form.validate_on_submit():
        password = users.generate_password()
        with attempt() as done:
            user = users.create(db(), now(), email=form.email.data, name=form.name.data, role=form.role.data,
                                password=password, language=form.language.data or None, phone=form.phone.data,
                                department_id=form.department.data, actor=actor(), source=client_address())
        if done:
            return render_template("admin_users/password.html", user=user, password=password)
    return render_template("admin_users/form.html", form=form, user=None), (400 if request.method == "POST" else 200)


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(user_id: int):
    user = get_or_404(User, user_id)
    form = UserForm(obj=user if request.method == "GET" else None, departments=queries.department_choices(db()))
    if request.method == "GET":
        form.role.data, form.language.data = user.role.value, user.language or ""
        form.department.data = str(user.department_id or "")
    else:
        form.email.data = user.email  # the e-mail is the sign-in name and is not edited here
    if form.validate_on_submit():
        with attempt() as done:
            users.update(db(), now(), user, name=form.name.data, role=form.role.data,
                         language=form.language.data or None, phone=form.phone.data, actor=actor(),
                         source=client_address(), department_id=form.department.data or "")
        if done:
            flash(gettext("%(name)s is saved.", name=user.name), "success")
            return redirect(url_for("admin_users.index"))
    return render_template("admin_users/form.html", form=form, user=user), (400 if request.method == "POST" else 200)


@bp.post("/<int:user_id>/active")
@admin_only
def set_active(user_id: int):
    user = get_or_404(User, user_id)
    active = ActiveForm().active.data
    with attempt() as done:
        users.set_active(db(), now(), user, active, actor(), source=client_address())
    if done:
        flash(gettext("%(name)s can sign in again.", name=user.name) if active
              else gettext("%(name)s is disabled and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("admin_users.index"), 303)


@bp.post("/<int:user_id>/reset-password")
@admin_only
def reset_password(user_id: int):
    user = get_or_404(User, user_id)
    password = users.generate_password()
    with attempt() as done:
        users.change_password(db(), now(), user, password, actor=actor(), must_change=True, source=client_address())
    if not done:
        return redirect(url_for("admin_users.index"), 303)
    return render_template("admin_users/password.html", user=user, password=password)
