"""Errors as RFC 9457 problem details (application/problem+json), in the reader's language (Accept-Language).

Every refusal of the API is a `Problem`: the views raise it (or a domain error the rules raised is turned into one),
and the blueprint's error handler writes it. Nothing the client sends should reach a 500.
"""

from __future__ import annotations

from datetime import datetime

from flask import Response, current_app, json
from werkzeug.exceptions import HTTPException

from .. import errors
from ..accounts import tokens
from ..errors import N_
from ..i18n import describe, gettext

MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "/api/v1/problems/"

# The status and the problem type of each domain error the rules raise; anything else is a 422 (a value the rule
# will not take). The titles are translated when the problem is written.
_DOMAIN = {
    errors.AlreadyOut: (409, "already-out"),
    errors.ChangedHands: (409, "changed-hands"),
    errors.InBagOut: (409, "in-a-bag"),
    errors.NotOut: (409, "not-out"),
    errors.Retired: (409, "retired"),
    errors.Disposed: (409, "disposed"),
    errors.AwaitingInspection: (409, "awaiting-inspection"),
    errors.ApprovalRequired: (403, "approval-required"),
    errors.RuleBroken: (403, "rule-broken"),
    errors.NotPermitted: (403, "forbidden"),
    tokens.TokenRefused: (401, "unauthorized"),
    tokens.Throttled: (429, "throttled"),
}
TITLES = {
    400: N_("Malformed request"), 401: N_("Not signed in"), 403: N_("Not allowed"), 404: N_("Not found"),
    405: N_("Method not allowed"), 409: N_("Conflict"), 413: N_("Too large"), 415: N_("Unsupported media type"),
    422: N_("Invalid values"), 429: N_("Too many requests"), 500: N_("Server error"),
    503: N_("Busy, please try again"),
}


class Problem(Exception):
    """A refusal to answer as problem+json; `detail` is already in the reader's language."""

    def __init__(self, status: int, detail: str, *, kind: str | None = None, errors: dict | None = None,
                 headers: dict | None = None, **extra):
        super().__init__(detail)
        self.status, self.detail, self.kind = status, detail, kind
        self.errors, self.headers, self.extra = errors, headers or {}, extra


def _title(status: int) -> str:
    return gettext(TITLES.get(status, "Error"))


def response(problem: Problem) -> Response:
    body = {"type": TYPE_BASE + problem.kind if problem.kind else "about:blank", "title": _title(problem.status),
            "status": problem.status, "detail": problem.detail, **problem.extra}
    if problem.errors:
        body["errors"] = problem.errors
    resp = current_app.response_class(json.dumps(body), status=problem.status, mimetype=MEDIA_TYPE)
    resp.headers.update(problem.headers)
    if problem.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="tracker"'
    return resp


def from_domain(err: errors.DomainError) -> Problem:
    """The problem for a rule's refusal: its status by kind, the message translated, the field it is about."""
    status, kind = next(((s, k) for cls, (s, k) in _DOMAIN.items() if isinstance(err, cls)), (422, "invalid"))
    extra = {"holder": err.holder_name, "since": _iso(err.since)} if isinstance(err, errors.AlreadyOut) else {}
    headers = {"Retry-After": str(err.seconds)} if isinstance(err, tokens.Throttled) else None
    parts = err.errors if isinstance(err, errors.Incomplete) else [err]
    fields = {p.about: [describe(p)] for p in parts if p.about}
    return Problem(status, describe(err), kind=kind, errors=fields or None, headers=headers, **extra)


def from_http(exc: HTTPException) -> Problem:
    """Werkzeug's and webargs' errors (a malformed body, a wrong method, a field that does not validate)."""
    status = exc.code or 500
    data = getattr(exc, "data", None) or {}
    messages = data.get("messages")
    if status == 400 and messages:
        return Problem(400, gettext("The request body is not valid JSON."), kind="malformed")
    if messages:  # webargs: {location: {field: [messages]}}
        fields = {name: [_field_message(str(m)) for m in (msgs if isinstance(msgs, list) else [msgs])]
                  for where in messages.values() for name, msgs in _flat(where).items()}
        return Problem(422, gettext("Some values are not valid."), kind="invalid", errors=fields)
    headers = {}
    if status == 405 and getattr(exc, "valid_methods", None):
        headers["Allow"] = ", ".join(exc.valid_methods)
    return Problem(status, gettext(_HTTP_DETAIL.get(status, N_("The request could not be answered."))), headers=headers)


_HTTP_DETAIL = {
    400: N_("The request could not be understood."),
    404: N_("There is nothing at this address."),
    405: N_("This address does not accept that kind of request."),
    413: N_("The request is too large."),
    415: N_("Send the request body as application/json."),
}


# marshmallow's own messages for a field, as it writes them (in English), so the reader gets them in their language;
# a message with values in it (a length, a range, a list of choices) stays as marshmallow wrote it.
FIELD_MESSAGES = (
    N_("Missing data for required field."), N_("Field may not be null."), N_("Invalid value."),
    N_("Not a valid integer."), N_("Not a valid boolean."), N_("Not a valid string."), N_("Not a valid datetime."),
    N_("Not a valid email address."), N_("Not a valid list."), N_("Not a valid number."), N_("Number too large."),
    N_("Invalid input type."), N_("Unknown field."), N_("Must not contain control characters."),
)


def _field_message(message: str) -> str:
    return gettext(message) if message in FIELD_MESSAGES else message


def _flat(messages, prefix: str = "") -> dict:
    """Nested field messages (a list's items, a nested object) as one level: `present.1`, not {present: {1: ...}}."""
    if not isinstance(messages, dict):
        return {prefix or "_schema": messages if isinstance(messages, list) else [messages]}
    out = {}
    for key, value in messages.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        out.update(_flat(value, name) if isinstance(value, dict) else {name: value})
    return out


def _iso(value) -> str:
    return value.isoformat() if isinstance(value, datetime) else str(value)
