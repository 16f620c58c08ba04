"""API tokens on the web: a user makes and revokes their own (Your settings → API tokens); an admin does so for
anyone (a user's page → API tokens). A new token is shown once, on the page that made it, never stored or mailed."""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for

from ..http import actor, admin_only, attempt, client_address, db, get_or_404, now, signed_in
from ..i18n import gettext
from ..models import ApiScope, ApiToken, User
from . import tokens
from .forms import ApiTokenForm

bp = Blueprint("api_tokens", __name__)


def _page(user: User, form: ApiTokenForm, secret: str | None = None, status: int = 200):
    return render_template("auth/api_tokens.html", user=user, own=user.id == actor().id, form=form, secret=secret,
                           tokens=tokens.of(db(), user), now=now(), admin_scope=ApiScope.admin in tokens.allowed_scopes(user)), status


def _manage(user: User):
    """The token page of `user`: list, and on POST make a token and show it once."""
    form = ApiTokenForm()
    if not form.is_submitted():
        return _page(user, form)
    if not form.validate():
        return _page(user, form, status=400)
    with attempt() as done:
        issued = tokens.create(db(), now(), user=user, actor=actor(), name=form.name.data, scopes=form.scopes(),
                               days=form.days.data, source=client_address())
    if not done:
        return _page(user, form, status=400)
    flash(gettext("The token is shown below once. Copy it now: it cannot be shown again."), "success")
    return _page(user, ApiTokenForm(formdata=None), secret=issued.secret)


def _revoke(user: User, token_id: int):
    token = get_or_404(ApiToken, token_id)
    if token.user_id != user.id:
        abort(404)
    with attempt() as done:
        tokens.revoke(db(), now(), token, actor(), source=client_address())
    if done:
        flash(gettext("The token %(name)s is revoked; it stopped working at once.", name=token.name), "success")


@bp.route("/account/tokens", methods=["GET", "POST"])
@signed_in
def mine():
    return _manage(actor())


@bp.post("/account/tokens/<int:token_id>/revoke")
@signed_in
def revoke_mine(token_id: int):
    _revoke(actor(), token_id)
    return redirect(url_for("api_tokens.mine"), 303)


@bp.route("/admin/users/<int:user_id>/tokens", methods=["GET", "POST"])
@admin_only
def of_user(user_id: int):
    return _manage(get_or_404(User, user_id))


@bp.post("/admin/users/<int:user_id>/tokens/<int:token_id>/revoke")
@admin_only
def revoke_of_user(user_id: int, token_id: int):
    _revoke(get_or_404(User, user_id), token_id)
    return redirect(url_for("api_tokens.of_user", user_id=user_id), 303)
