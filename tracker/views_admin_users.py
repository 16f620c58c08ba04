"""Admin pages for user accounts."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user

from . import queries, users
from .errors import DomainError
from .forms import UserForm
from .i18n import gettext
from .models import User
from .web import admin_only, client_address, db, flash_error, now

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


@bp.get("/")
@admin_only
def index():
    q = (request.args.get("q") or "").strip()[:100]
    page = queries.paginate(db(), queries.users_stmt(q), request.args.get("page", 1, type=int))
    return render_template("admin/users.html", page=page, q=q)


def _user(user_id: int) -> User:
    user = db().get(User, user_id)
    if user is None:
        abort(404)
    return user


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = UserForm()
    if form.validate_on_submit():
        s = db()
        password = users.generate_password()
        try:
            user = users.create(s, now(), email=form.email.data, name=form.name.data, role=form.role.data,
                                password=password, language=form.language.data or None, phone=form.phone.data,
                                actor=current_user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
        else:
            s.commit()
            return render_template("admin/user_password.html", user=user, password=password)
    return render_template("admin/user_form.html", form=form, user=None), (400 if request.method == "POST" else 200)


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(user_id: int):
    user = _user(user_id)
    form = UserForm(obj=user if request.method == "GET" else None)
    if request.method == "GET":
        form.role.data, form.language.data = user.role.value, user.language or ""
    else:
        form.email.data = user.email  # the e-mail is the sign-in name and is not edited here
    if form.validate_on_submit():
        s = db()
        try:
            users.update(s, now(), user, name=form.name.data, role=form.role.data, language=form.language.data or None,
                         phone=form.phone.data, actor=current_user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
        else:
            s.commit()
            flash(gettext("%(name)s is saved.", name=user.name), "success")
            return redirect(url_for("admin_users.index"))
    return render_template("admin/user_form.html", form=form, user=user), (400 if request.method == "POST" else 200)


@bp.post("/<int:user_id>/active")
@admin_only
def set_active(user_id: int):
    s = db()
    user = _user(user_id)
    active = request.form.get("active") == "1"
    try:
        users.set_active(s, now(), user, active, current_user, source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
    else:
        s.commit()
        flash(gettext("%(name)s can sign in again.", name=user.name) if active
              else gettext("%(name)s is disabled and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("admin_users.index"), 303)


@bp.post("/<int:user_id>/reset-password")
@admin_only
def reset_password(user_id: int):
    s = db()
    user = _user(user_id)
    password = users.generate_password()
    users.change_password(s, now(), user, password, actor=current_user, must_change=True, source=client_address())
    s.commit()
    return render_template("admin/user_password.html", user=user, password=password)
