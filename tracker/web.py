"""Flask wiring: the request's database session, sign-in, roles, CSRF and error pages."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

from flask import Flask, abort, current_app, flash, g, redirect, request, session, url_for
from flask_login import LoginManager, current_user, logout_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from . import clock, i18n
from .db import make_engine, make_read_sessionmaker, make_sessionmaker
from .errors import DomainError
from .models import Role, User

csrf = CSRFProtect()
login_manager = LoginManager()


def db() -> Session:
    """The request's session: one transaction per request, committed by the view."""
    if "db" not in g:
        reading = request.method in ("GET", "HEAD", "OPTIONS")
        g.db = current_app.extensions["tracker.read_sessionmaker" if reading else "tracker.sessionmaker"]()
    return g.db


def csp_nonce() -> str:
    """A per-response nonce for the few pages that need an inline <style> (page sizes for printing)."""
    if "csp_nonce" not in g:
        import secrets

        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def now() -> datetime:
    return clock.utcnow()


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def require_roles(*roles: Role):
    """Allow the view only to signed-in users holding one of `roles` (checked on the server)."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if roles and current_user.role not in roles:
                abort(403)
            return view(*args, **kwargs)

        return inner

    return wrap


signed_in = require_roles()
privileged = require_roles(Role.security, Role.admin)
admin_only = require_roles(Role.admin)


def flash_error(err: DomainError) -> None:
    flash(i18n.describe(err), "error")


def safe_next(target: str | None) -> str | None:
    """A local path to go back to, or None: never another site, however the URL is disguised."""
    if not target or len(target) > 2000:
        return None
    if any(ord(ch) < 32 or ch == "\\" for ch in target):  # browsers drop tabs/newlines and read \\ as /
        return None
    from urllib.parse import urlsplit

    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def back(default_endpoint: str, **values):
    """Redirect to a same-site `next` target, else the default page."""
    target = safe_next(request.form.get("next") or request.args.get("next"))
    return redirect(target or url_for(default_endpoint, **values))


@login_manager.user_loader
def _load_user(token: str) -> User | None:
    user = db().scalar(select(User).where(User.session_token == token))
    if user is None or not user.active:
        return None
    return user


def _session_limits() -> None:
    """End sessions past their age: staff after N days; security and admin after 12 h or 30 min idle."""
    if not current_user.is_authenticated:
        return
    cfg = current_app.config
    moment = datetime.now(UTC).timestamp()
    auth_at = session.get("auth_at", 0)
    seen_at = session.get("seen_at", 0)
    if current_user.privileged:
        expired = (moment - auth_at > cfg["PRIVILEGED_SESSION_HOURS"] * 3600
                   or moment - seen_at > cfg["PRIVILEGED_IDLE_MINUTES"] * 60)
    else:
        expired = moment - auth_at > cfg["STAFF_SESSION_DAYS"] * 86400
    if expired:
        logout_user()
        session.clear()
        flash(i18n.gettext("Your session has ended. Please sign in again."), "info")
        return
    session["seen_at"] = moment


def _must_change_password():
    if (current_user.is_authenticated and current_user.must_change_password
            and request.endpoint not in ("auth.password", "auth.logout", "static")):
        return redirect(url_for("auth.password"))
    return None


def init_app(app: Flask) -> None:
    if app.config.get("TRUSTED_PROXIES"):
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0)
    engine = make_engine(app.config["DATABASE_URL"])
    app.extensions["tracker.engine"] = engine
    app.extensions["tracker.sessionmaker"] = make_sessionmaker(engine)
    app.extensions["tracker.read_sessionmaker"] = make_read_sessionmaker(engine)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=app.config["STAFF_SESSION_DAYS"])

    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    i18n.init_app(app)

    @app.teardown_appcontext
    def _close_db(_exc):
        s = g.pop("db", None)
        if s is not None:
            s.rollback()
            s.close()

    app.before_request(_session_limits)
    app.before_request(_must_change_password)

    @app.context_processor
    def _nonce():
        return {"csp_nonce": csp_nonce}

    @app.after_request
    def _headers(resp):
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("X-Frame-Options", "DENY")
        resp.headers.setdefault("Referrer-Policy", "same-origin")
        resp.headers.setdefault(
            "Content-Security-Policy",
            f"default-src 'self'; img-src 'self' data:; style-src 'self' 'nonce-{csp_nonce()}'; script-src 'self'; "
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        )
        if current_user.is_authenticated:
            resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    from . import (
        cli,
        views_admin_items,
        views_admin_labels,
        views_admin_notifications,
        views_admin_users,
        views_auth,
        views_custody,
        views_desk,
        views_incidents,
        views_reports,
    )

    for module in (views_auth, views_custody, views_desk, views_admin_items, views_admin_users, views_admin_labels,
                   views_admin_notifications, views_incidents, views_reports):
        app.register_blueprint(module.bp)
    cli.init_app(app)

    from .errors_pages import register as register_error_pages

    register_error_pages(app)
