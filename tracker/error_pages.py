"""Plain, translated error pages; an unexpected error is logged with its request id, never swallowed."""

from __future__ import annotations

import logging
import secrets

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError
from sqlalchemy.exc import OperationalError

from . import http
from .errors import DomainError
from .i18n import describe, gettext

log = logging.getLogger(__name__)


def _audit_refusal(err: DomainError | None, reason: str) -> None:
    """Keep a refused request in the audit trail; the error page is shown even if that write fails."""
    try:
        http.record_aside(lambda s: http.record_refusal(s, err, reason))
    except Exception:  # noqa: BLE001 - the page must still answer; the failure is logged with its cause
        log.exception("a refused request (%s) could not be written to the audit trail", reason)


def request_id() -> str:
    """The id that ties a 500 page to its log line: the proxy's X-Request-ID, or one made here."""
    if "request_id" not in g:
        given = request.headers.get("X-Request-ID", "")
        g.request_id = given if given.isalnum() and len(given) <= 64 else secrets.token_hex(8)
    return g.request_id


class TrackerFlask(Flask):
    def log_exception(self, exc_info) -> None:
        """Log an unhandled error with the request id that its 500 page shows."""
        self.logger.error("request %s failed: %s %s", request_id(), request.method, request.path, exc_info=exc_info)


def _nothing_recorded() -> str:
    return gettext("Nothing was recorded. Please try again; if it happens again, tell the security desk or an "
                   "administrator the reference below.")


def _page(code: int, title: str, text: str, **extra):
    return render_template("error.html", code=code, title=title, text=text, **extra), code


def init_app(app: Flask) -> None:
    @app.errorhandler(403)
    def forbidden(_e):
        _audit_refusal(None, "not permitted")
        return _page(403, gettext("Not allowed"), gettext("Your account is not permitted to open this page."))

    @app.errorhandler(404)
    def not_found(_e):
        return _page(404, gettext("Not found"), gettext("There is nothing at this address."))

    @app.errorhandler(405)
    def not_allowed(_e):
        return _page(405, gettext("Not allowed"), gettext("This address does not accept that kind of request."))

    @app.errorhandler(413)
    def too_large(_e):
        return _page(413, gettext("Too large"), gettext("The file or form is too large."))

    @app.errorhandler(DomainError)
    def refused(err: DomainError):
        # A rule's refusal that no view caught (a date out of range in an address, say): a translated 400.
        _audit_refusal(err, "")
        return _page(400, gettext("That cannot be done"), describe(err))

    @app.errorhandler(CSRFError)
    def csrf_error(_e):
        return _page(400, gettext("Form expired"),
                     gettext("The form was too old or came from elsewhere. Go back, reload the page and try again."))

    @app.errorhandler(OperationalError)
    def database_busy(err: OperationalError):
        # The database was locked past the busy timeout, or unreachable: the transaction was rolled back.
        app.logger.error("request %s: the database could not be written: %s %s: %s", request_id(), request.method,
                         request.path, err.orig)
        page, code = _page(503, gettext("Busy, please try again"), _nothing_recorded(), request_id=request_id())
        return page, code, {"Retry-After": "5"}

    @app.errorhandler(500)
    def server_error(_e):
        # The exception was logged by TrackerFlask.log_exception; the request's transaction is rolled back when
        # the app context ends, so nothing of it was saved.
        return _page(500, gettext("Something went wrong"), _nothing_recorded(), request_id=request_id())

    @app.after_request
    def _request_id_header(resp):
        if "request_id" in g:
            resp.headers["X-Request-ID"] = g.request_id
        return resp
