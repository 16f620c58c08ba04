"""What every view shares: the request's session and clock, role checks, loaders, safe redirects, and
`attempt`, the one place where a domain action commits or is rolled back and explained.

A leaf of the package: it imports core modules only, never a feature.
"""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import urlsplit

from flask import Flask, abort, current_app, flash, g, redirect, request, url_for
from flask_login import LoginManager, current_user
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import Session
from werkzeug.middleware.proxy_fix import ProxyFix

from . import audit, clock, i18n
from .db import begin_writing, make_engine, make_sessionmaker, read_only
from .errors import DomainError
from .fields import render_field
from .models import PRIVILEGED_ROLES, Role, User

T = TypeVar("T")

csrf = CSRFProtect()
login_manager = LoginManager()


def db() -> Session:
    """The request's session. It reads without SQLite's write lock; `attempt` writes, holding the lock only
    around the change itself, never while the request signs in, loads or renders."""
    if "db" not in g:
        g.db = current_app.extensions["tracker.read_sessionmaker"]()
    return g.db


def record_aside(write: Callable[[Session], object]) -> None:
    """Run `write` in a short write transaction of its own and commit it: for the few GET pages that record
    something (a scan) while the page itself only reads."""
    with current_app.extensions["tracker.sessionmaker"]() as session:
        write(session)
        session.commit()


def now() -> datetime:
    return clock.now()


def record_export(what: str, **details) -> None:
    """A download of personal-data records (a CSV, a PDF) is an audit event: who took what, when, from where."""
    who = actor()
    record_aside(lambda s: audit.record(s, clock.now(), "export", actor=who, source=client_address(), export=what,
                                        **details))


def record_refusal(session: Session, err: DomainError | None, reason: str = "") -> None:
    """A refused action is an audit event too: who tried what (the endpoint and method), from where, and why
    (the message's id and its values, shortened), in the session's transaction."""
    # The signed-in user, or the user of the API token that made the request (which has no session).
    who = g.get("user") if current_user.is_authenticated else g.get("token_user")
    params = {k: str(v)[:200] for k, v in (err.params if err else {}).items()}
    audit.record(session, clock.now(), "refused", actor=who, source=client_address(), endpoint=request.endpoint,
                 method=request.method, path=request.path[:200], reason=reason or (err.message if err else ""),
                 **({"params": params} if params else {}))


def client_address() -> str:
    return (request.remote_addr or "unknown")[:64]


def actor() -> User:
    """The signed-in user as the model object the rules take (Flask-Login's `current_user` is a proxy).

    Asking the proxy whether someone is signed in runs the user loader, which keeps the user on `g.user`.
    """
    if not current_user.is_authenticated:
        abort(401)
    return g.user


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
privileged = require_roles(*sorted(PRIVILEGED_ROLES))
admin_only = require_roles(Role.admin)


def get_or_404(model: type[T], ident: Any) -> T:
    """The row with this primary key, or the 404 page."""
    return found_or_404(db().get(model, ident))


def found_or_404(value: T | None) -> T:
    """`value`, or the 404 page when a lookup found nothing."""
    if value is None:
        abort(404)
    return value


def flash_error(err: DomainError) -> None:
    flash(i18n.describe(err), "error")


class attempt:  # noqa: N801 - used as `with attempt() as done:`, like a function
    """Run a domain action in the request's transaction: commit when the block ends, or, on a DomainError,
    roll back, say why in the reader's language (unless `explain=False`) and carry on after the block.

        with attempt() as done:
            items.retire(db(), now(), item, actor())
        if done:
            flash(...)

    `keep_on_error=True` commits what the rule recorded before it refused (failed sign-ins are counted).
    Any other exception rolls back and propagates to the 500 page.
    """

    def __init__(self, explain: bool = True, keep_on_error: bool = False):
        self.explain = explain
        self.keep_on_error = keep_on_error
        self.error: DomainError | None = None

    def __bool__(self) -> bool:
        return self.error is None

    def __enter__(self) -> attempt:
        session = db()
        engine = current_app.extensions["tracker.engine"]
        if engine.dialect.name == "sqlite":
            # End the read snapshot and write from here on: what the change needs is read again, under the lock
            # (the loaded objects expire and reload), so nothing it decides on can have changed underneath it.
            # Except the person making the request: they are who signed this request in, a moment ago, and
            # reading them again would only lengthen the time every other writer waits.
            me = g.get("user")
            keep = me is not None and me in session
            if keep:
                session.expunge(me)
            session.rollback()
            if keep:
                session.add(me)
            session.bind = engine
        else:
            # PostgreSQL has no lock for the whole database to take: every statement reads what is committed, and
            # the rules lock the rows they decide on (the item, FOR UPDATE). The connection that read goes on into
            # a transaction, without giving back what was loaded.
            begin_writing(session)
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        session = db()
        try:
            if exc is None:
                session.commit()
                return False
            if isinstance(exc, DomainError):
                if self.keep_on_error:
                    session.commit()
                else:
                    session.rollback()
                    begin_writing(session)
                    record_refusal(session, exc)
                    session.commit()
                self.error = exc
                if self.explain:
                    flash_error(exc)
                return True
            session.rollback()
            return False
        finally:
            session.bind = current_app.extensions["tracker.read_engine"]  # rendering reads without the lock


def safe_next(target: str | None) -> str | None:
    """A local path to go back to, or None: never another site, however the URL is disguised."""
    if not target or len(target) > 2000:
        return None
    if any(ord(ch) < 32 or ch == "\\" for ch in target):  # browsers drop tabs/newlines and read \\ as /
        return None
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return None
    return target


def back(default_endpoint: str, code: int = 302, **values):
    """Redirect to a same-site `next` target, else the default page."""
    target = safe_next(request.form.get("next") or request.args.get("next"))
    return redirect(target or url_for(default_endpoint, **values), code)


def csp_nonce() -> str:
    """A per-response nonce for the few pages that need an inline <style> (page sizes for printing)."""
    if "csp_nonce" not in g:
        g.csp_nonce = secrets.token_urlsafe(16)
    return g.csp_nonce


def _headers(resp):
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("Referrer-Policy", "same-origin")
    resp.headers.setdefault(
        "Content-Security-Policy",
        f"default-src 'self'; img-src 'self' data:; style-src 'self' 'nonce-{csp_nonce()}'; script-src 'self'; "
        "frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    )
    if current_app.config["BASE_URL"].startswith("https://"):
        resp.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    if current_user.is_authenticated:
        # Private pages and files (PDFs, label files, exports) stay out of every cache, shared or not.
        resp.headers["Cache-Control"] = "no-store"
        resp.headers.pop("ETag", None)
        resp.headers.pop("Last-Modified", None)
    return resp


def _close_db(_exc) -> None:
    session = g.pop("db", None)
    if session is not None:
        session.close()  # rolls back what was not committed, once: as the connection goes back to the pool


def init_app(app: Flask, on_request: list[Callable] | None = None) -> None:
    """The database, CSRF, sign-in and response headers; `on_request` runs before each view."""
    if app.config["TRUSTED_PROXIES"]:
        n = app.config["TRUSTED_PROXIES"]
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=0)
    engine = make_engine(app.config["DATABASE_URL"], app.config["DB_BUSY_SECONDS"])
    app.extensions["tracker.engine"] = engine
    app.extensions["tracker.read_engine"] = read_only(engine)
    app.extensions["tracker.sessionmaker"] = make_sessionmaker(engine)
    app.extensions["tracker.read_sessionmaker"] = make_sessionmaker(app.extensions["tracker.read_engine"])
    csrf.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = None
    login_manager.session_protection = "basic"
    app.teardown_appcontext(_close_db)
    app.after_request(_headers)
    app.context_processor(lambda: {"csp_nonce": csp_nonce})
    app.jinja_env.globals["render_field"] = render_field
