"""Sign-in, sign-out, password change and the user's own settings."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user

from .. import audit, queries
from ..http import actor, attempt, back, client_address, db, now, signed_in
from ..i18n import gettext
from ..models import Role
from . import people, sessions, signin, users
from .forms import AccountForm, PasswordForm, SignInForm

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


def password_emails() -> frozenset[str] | None:
    """Who may sign in with a password: everyone (None), or only the break-glass admins when it is turned off."""
    cfg = current_app.config
    return None if cfg["LOCAL_PASSWORDS"] else cfg["BREAK_GLASS_EMAILS"]


@bp.route("/login", methods=["GET", "POST"])
def login():
    form = SignInForm()
    if current_user.is_authenticated and request.method == "GET":
        return redirect(home_for(current_user))
    break_glass = request.args.get("local") == "1"
    if request.method == "GET" and password_emails() is not None and not break_glass:
        # Passwords are off: straight on to the provider, so a scanned label costs no tap of ours.
        return redirect(url_for("sso.start", next=request.args.get("next")))
    if form.validate_on_submit():
        with attempt(keep_on_error=True) as done:  # a failed sign-in is counted for the throttle
            user = signin.authenticate(db(), now(), form.email.data, form.password.data, client_address(),
                                       password_emails())
        if not done:
            return render_template("auth/login.html", form=form), 401
        sessions.begin(user)
        if user.must_change_password:
            return redirect(url_for("auth.password"))
        return back("auth.home")
    return render_template("auth/login.html", form=form)


@bp.post("/logout")
@signed_in
def logout():
    user = actor()
    with attempt():
        users.end_sessions(user)
        audit.record(db(), now(), "signout", actor=user, subject=user, source=client_address())
    sessions.end()
    flash(gettext("You are signed out on every device."), "info")
    return redirect(url_for("auth.login"))


@bp.route("/password", methods=["GET", "POST"])
@signed_in
def password():
    form = PasswordForm()
    if form.validate_on_submit():
        user = actor()
        with attempt(keep_on_error=True) as checked:  # a wrong guess counts towards the sign-in throttle
            signin.check_current_password(db(), now(), user, form.current.data, client_address())
        if checked and form.new.data != form.confirm.data:
            flash(gettext("The two new passwords differ."), "error")
        elif checked and form.new.data == form.current.data:
            flash(gettext("Choose a password different from the current one."), "error")
        elif checked:
            with attempt() as done:
                users.change_password(db(), now(), user, form.new.data, actor=user, source=client_address())
            if done:
                # Every other session ended with the token; this one carries on under the new token.
                sessions.renew(user)
                flash(gettext("Your password was changed. Other devices are signed out."), "success")
                return redirect(home_for(user))
    return render_template("auth/password.html", form=form), (400 if request.method == "POST" else 200)


@bp.route("/account", methods=["GET", "POST"])
@signed_in
def account():
    user = actor()
    form = AccountForm(obj=None if request.method == "POST" else user)
    if request.method == "GET":
        form.language.data = user.language or ""
    if form.validate_on_submit():
        with attempt() as done:
            users.update(db(), now(), user, name=user.name, role=user.role, language=form.language.data or None,
                         phone=form.phone.data, actor=user, source=client_address())
        if done:
            flash(gettext("Your settings were saved."), "success")
            return redirect(url_for("auth.account"))
    return render_template("auth/account.html", form=form)


@bp.get("/people/suggest")
@signed_in
def people_suggest():
    """Whom a "who" field (accounts.people) may name, as someone types in it: a few active people whose name or
    e-mail address holds the text, as choosing one writes them. Colleagues see one another's names and addresses,
    as they would on a hand-over."""
    return jsonify(suggestions=[people.typed(u) for u in queries.people_matching(db(), request.args.get("q"))])
