"""Who is calling the API: a bearer token, never the session cookie; what its scopes and its user's role allow.

The cookie is not even read on API paths (`CookielessApi`): a page open in the same browser can neither act nor
read through the API, so the API needs no CSRF token, and a token never starts or renews a session.
"""

from __future__ import annotations

import functools

from flask import current_app, g, request
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from ..accounts import tokens
from ..http import client_address, db, now, record_aside, record_refusal
from ..i18n import gettext
from ..models import ApiScope, ApiToken, Role, User
from .problems import Problem, from_domain

PREFIX = "/api/"


def is_api_path(path: str) -> bool:
    return path.startswith(PREFIX)


class CookielessApi(SecureCookieSessionInterface):
    """The app's cookie sessions, except on API paths: there the request gets an empty session that is never saved."""

    def open_session(self, app, request):
        if is_api_path(request.path):
            return SecureCookieSession()
        return super().open_session(app, request)

    def save_session(self, app, session, response) -> None:
        if is_api_path(request.path):
            return
        super().save_session(app, session, response)


def _bearer() -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, secret = header.partition(" ")
    return secret.strip() if scheme.lower() == "bearer" and secret.strip() else None


def authenticate() -> None:
    """Before every API view: the token must be good and under its rate limit; the use is an audit event.

    The use is committed in a short write transaction of its own, before the view runs, so it is recorded (and
    counted against the limit) whatever the request then does; a refused token records nothing.
    """
    secret = _bearer()
    if secret is None:
        raise Problem(401, gettext("Send an API token: Authorization: Bearer <token>."), kind="unauthorized")
    limit = current_app.config["API_RATE_PER_MINUTE"]
    method, path = request.method, request.full_path.rstrip("?")
    used: list[ApiToken] = []
    try:
        record_aside(lambda s: used.append(tokens.use(s, now(), secret, limit, method=method, path=path,
                                                      source=client_address())))
    except (tokens.TokenRefused, tokens.Throttled) as err:
        raise from_domain(err) from None
    token = used[0]
    g.api_token_id, g.api_scopes = token.id, token.scope_set
    g.token_user = token.user


def user() -> User:
    """The token's user, as the rules take it (loaded in the request's own session)."""
    if "api_user" not in g:
        g.api_user = db().get(User, g.token_user.id)
    return g.api_user


def _refuse(reason: str) -> None:
    """A request its token or role may not make is kept in the audit trail, as the pages keep their 403s."""
    record_aside(lambda s: record_refusal(s, None, reason))


def requires(scope: ApiScope, *roles: Role):
    """The view needs `scope` on the token and, if given, one of `roles` for its user (403 otherwise)."""

    def wrap(view):
        @functools.wraps(view)
        def inner(*args, **kwargs):
            if scope not in g.api_scopes:
                _refuse(f"no {scope.value} scope")
                raise Problem(403, gettext("This API token does not have the %(scope)s scope.", scope=scope.value),
                              kind="scope")
            if roles and user().role not in roles:
                _refuse("not permitted")
                raise Problem(403, gettext("Your account is not permitted to do that."), kind="forbidden")
            return view(*args, **kwargs)

        return inner

    return wrap
