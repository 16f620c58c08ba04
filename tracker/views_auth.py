"""Sign-in, sign-out, password change and the user's own settings."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Blueprint, flash, redirect, render_template, request, session, url_for
from flask_login import current_user, login_user, logout_user

from . import audit, signin, users
from .errors import DomainError
from .forms import AccountForm, PasswordForm, SignInForm
from .i18n import gettext
from .models import Role
from .web import back, client_address, db, flash_error, now, signed_in

bp = Blueprint("auth", __name__)


def home_for(user) -> str:
    if user.role == Role.admin:
        return url_for("admin_items.index")
    if user.role == Role.security:
        return url_for("desk.board")
    return url_for("custody.mine")


@bp.get("/")
def home():
    if not current_user.is_authenticated:
        return redirect(url_for("auth.login"))
    return redirect(home_for(current_user))


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = SignInForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_for(current_user))
    if form.validate_on_submit():
        s = db()
        try:
            user = signin.authenticate(s, now(), form.email.data, form.password.data, client_address())
        except DomainError as err:
            s.commit()  # keep the failure count
            flash_error(err)
            return render_template("auth/login.html", form=form), 401
        s.commit()
        session.clear()
        stamp = datetime.now(UTC).timestamp()
        session.permanent = True
        session["auth_at"] = stamp
        session["seen_at"] = stamp
        login_user(user)
        if user.must_change_password:
            return redirect(url_for("auth.password"))
        return back("auth.home")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@signed_in
def logout():
    s = db()
    user = current_user._get_current_object()
    users.end_sessions(user)
    audit.record(s, now(), "signout", actor=user, subject=user, source=client_address())
    s.commit()
    logout_user()
    session.clear()
    flash(gettext("You are signed out on every device."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@signed_in
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if not users.verify_password(user, form.current.data):
            flash(gettext("The current password is wrong."), "error")
        elif form.new.data != form.confirm.data:
            flash(gettext("The two new passwords differ."), "error")
        elif form.new.data == form.current.data:
            flash(gettext("Choose a password different from the current one."), "error")
        else:
            s = db()
            try:
                users.change_password(s, now(), user, form.new.data, actor=user, source=client_address())
            except DomainError as err:
                s.rollback()
                flash_error(err)
            else:
                s.commit()
                # Every other session ended with the token; this one carries on under the new token.
                login_user(user)
                flash(gettext("Your password was changed. Other devices are signed out."), "success")
                return redirect(home_for(user))
    return render_template("auth/password.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account():
    user = current_user._get_current_object()
    form = AccountForm(obj=None if request.method == "POST" else user)
    if request.method == "GET":
        form.language.data = user.language or ""
    if form.validate_on_submit():
        s = db()
        try:
            users.update(s, now(), user, name=user.name, role=user.role, language=form.language.data or None,
                         phone=form.phone.data, actor=user, source=client_address())
        except DomainError as err:
            s.rollback()
            flash_error(err)
        else:
            s.commit()
            flash(gettext("Your settings were saved."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form)
