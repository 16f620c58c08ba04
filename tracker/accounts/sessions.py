"""Signed-in sessions: the user behind a cookie, session ageing by role, and the forced password change."""

from __future__ import annotations

from flask import Flask, current_app, flash, g, redirect, request, session, url_for
from flask_login import current_user, login_user, logout_user
from sqlalchemy import bindparam, select

from .. import i18n
from ..http import db, login_manager, now
from ..models import User

# Built once: every signed-in request runs it, and building a statement costs more than running this one.
_BY_SESSION_TOKEN = select(User).where(User.session_token == bindparam("token"))


SEEN_EVERY = 60  # seconds: how often a session's last activity is written down


@login_manager.user_loader
def _load_user(token: str) -> User | None:
    """The user whose current session token the cookie names; a rotated token ends the session."""
    user = db().scalar(_BY_SESSION_TOKEN, {"token": token})
    if user is None or not user.active:
        return None
    g.user = user
    return user


def begin(user: User, method: str = "password") -> None:
    """Start a fresh session for `user` (after sign-in), with the clock that ages it and how they signed in."""
    session.clear()
    stamp = now().timestamp()
    session.permanent = True
    session["auth_method"] = method
    session["auth_at"] = stamp
    session["seen_at"] = stamp
    login_user(user)
    g.user = user


def renew(user: User) -> None:
    """Carry this session on under the user's new session token (after their own password change)."""
    login_user(user)


def end() -> None:
    logout_user()
    session.clear()


def _enforce_limits() -> None:
    """End sessions past their age: staff after N days; security and admin after 12 h or 30 min idle."""
    if not current_user.is_authenticated:
        return
    cfg = current_app.config
    moment = now().timestamp()
    auth_at = session.get("auth_at", 0)
    seen_at = session.get("seen_at", 0)
    if current_user.privileged:
        expired = (moment - auth_at > cfg["PRIVILEGED_SESSION_HOURS"] * 3600
                   or moment - seen_at > cfg["PRIVILEGED_IDLE_MINUTES"] * 60)
    else:
        expired = moment - auth_at > cfg["STAFF_SESSION_DAYS"] * 86400
    if expired:
        end()
        flash(i18n.gettext("Your session has ended. Please sign in again."), "info")
        return
    # A page refreshing itself is not someone at the desk. To the minute is enough for a 30-minute idle limit, and
    # an unchanged session is not signed and sent again (SESSION_REFRESH_EACH_REQUEST is off).
    if request.headers.get("X-Background-Refresh") != "1" and moment - seen_at >= SEEN_EVERY:
        session["seen_at"] = moment


def _must_change_password():
    """A first or reset password is changed before anything else; not by someone who signed in without one."""
    if (current_user.is_authenticated and current_user.must_change_password and session.get("auth_method") != "oidc"
            and request.endpoint not in ("auth.password", "auth.logout", "static")):
        return redirect(url_for("auth.password"))
    return None


def init_app(app: Flask) -> None:
    app.before_request(_enforce_limits)
    app.before_request(_must_change_password)
