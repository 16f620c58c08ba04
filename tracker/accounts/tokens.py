"""Personal API tokens: made by their user or an admin, shown once, kept only as a hash, with scopes and an expiry;
each acts as its user (never beyond the user's role) and stops working when it expires, is revoked, or its user is
disabled. Shared by the account page, the admin's user page, the CLI and the API's authentication."""

from __future__ import annotations

import hashlib
import math
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, text
from ..errors import N_, DomainError, InvalidInput, NotPermitted
from ..models import ApiScope, ApiToken, Role, User

PREFIX = "trk_"
DEFAULT_DAYS = 90
MAX_DAYS = 365
MAX_OPEN = 20  # live tokens per user: more is a sign of tokens being made and never revoked
WINDOW = timedelta(minutes=1)


class TokenRefused(DomainError):
    """The bearer token is unknown, expired, revoked, or its user is disabled: 401."""

    message = N_("The API token is not valid: it is unknown, expired or revoked, or its account is disabled.")


class Throttled(DomainError):
    message = N_("Too many requests with this API token. Try again in %(seconds)d seconds.")

    def __init__(self, seconds: int):
        self.seconds = seconds
        super().__init__(seconds=seconds)


@dataclass
class Issued:
    """A new token and its secret, which exists only here: the database keeps its hash."""

    token: ApiToken
    secret: str


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def parse_scopes(raw: str | list[str] | tuple[str, ...] | None) -> list[ApiScope]:
    """`read,act` (or a list) as scopes, in a fixed order; InvalidInput for an unknown one or none at all."""
    parts = raw.split(",") if isinstance(raw, str) else list(raw or [])
    try:
        chosen = {ApiScope(p.strip().lower()) for p in parts if p and p.strip()}
    except ValueError:
        raise InvalidInput(N_("Scopes must be among: %(choices)s."), choices=", ".join(s.value for s in ApiScope),
                           about="scopes") from None
    if not chosen:
        raise InvalidInput(N_("Choose at least one scope."), about="scopes")
    return [s for s in ApiScope if s in chosen]


def allowed_scopes(user: User) -> list[ApiScope]:
    """What a token of `user` may be given: the admin scope only to admins (it means nothing for other roles)."""
    return [s for s in ApiScope if s != ApiScope.admin or user.role == Role.admin]


def _may_manage(actor: User, user: User) -> None:
    if actor.id != user.id and actor.role != Role.admin:
        raise NotPermitted()


def create(session: Session, now: datetime, *, user: User, actor: User | None, name: str, scopes, days: int | None,
           source: str | None = None) -> Issued:
    """Make a token for `user` (by the user, an admin, or the CLI when `actor` is None); the secret is returned once."""
    if actor is not None:
        _may_manage(actor, user)
    if not user.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=user.name)
    name = text.clean(name, N_("Name"), 100, required=True, about="name")
    chosen = parse_scopes(scopes)
    if any(s not in allowed_scopes(user) for s in chosen):
        raise InvalidInput(N_("The admin scope is only for admin accounts."), about="scopes")
    days = DEFAULT_DAYS if days is None else days
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise InvalidInput(N_("A token lasts from 1 to %(max)d days."), max=MAX_DAYS, about="days")
    if len(live(session, now, user)) >= MAX_OPEN:
        raise InvalidInput(N_("You have %(n)d tokens in use; revoke one first."), n=MAX_OPEN, about="name")
    secret = PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(user_id=user.id, name=name, token_hash=digest(secret), prefix=secret[:10],
                     scopes=",".join(s.value for s in chosen), created_at=now,
                     created_by_id=actor.id if actor else None, expires_at=now + timedelta(days=days))
    session.add(token)
    session.flush()
    audit.record(session, now, "api_token_created", actor=actor, subject=user, source=source, token=token.id,
                 name=name, scopes=token.scopes, expires_at=token.expires_at.isoformat())
    return Issued(token=token, secret=secret)


def revoke(session: Session, now: datetime, token: ApiToken, actor: User, source: str | None = None) -> ApiToken:
    """End a token at once; revoking a revoked token changes nothing."""
    _may_manage(actor, token.user)
    if token.revoked_at is None:
        token.revoked_at, token.revoked_by_id = now, actor.id
        session.flush()
        audit.record(session, now, "api_token_revoked", actor=actor, subject=token.user, source=source,
                     token=token.id, name=token.name)
    return token


def live(session: Session, now: datetime, user: User) -> list[ApiToken]:
    """The user's tokens that still work (or would, were the user active), newest first."""
    return list(session.scalars(select(ApiToken).where(
        ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None), ApiToken.expires_at > now)
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def of(session: Session, user: User) -> list[ApiToken]:
    """Every token of the user, live or not, newest first (the account page lists them)."""
    return list(session.scalars(select(ApiToken).where(ApiToken.user_id == user.id)
                                .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())))


def find(session: Session, secret: str) -> ApiToken | None:
    """The token whose hash matches: the lookup is by hash, so no comparison of secrets can leak by its timing."""
    if not secret or len(secret) > 200:
        return None
    return session.scalar(select(ApiToken).where(ApiToken.token_hash == digest(secret)))


def usable(token: ApiToken | None, now: datetime) -> bool:
    return (token is not None and token.revoked_at is None and token.expires_at > now
            and token.user is not None and token.user.active)


def use(session: Session, now: datetime, secret: str, limit: int, *, method: str, path: str,
        source: str | None = None) -> ApiToken:
    """Authenticate one API request: the token, locked, must be usable and under its per-minute limit; the use is
    counted and recorded as an event (who, which token, what request, from where) in the caller's transaction."""
    found = find(session, secret)
    if found is None:
        raise TokenRefused()
    token = session.scalars(select(ApiToken).where(ApiToken.id == found.id).with_for_update()
                            .execution_options(populate_existing=True)).one()
    if not usable(token, now):
        raise TokenRefused()
    if token.window_started_at is None or now - token.window_started_at >= WINDOW or now < token.window_started_at:
        token.window_started_at, token.window_requests = now, 0
    if token.window_requests >= limit:
        wait = WINDOW - (now - token.window_started_at)
        raise Throttled(seconds=max(1, math.ceil(wait.total_seconds())))
    token.window_requests += 1
    token.last_used_at = now
    session.flush()
    audit.record(session, now, "api_request", actor=token.user, source=source, token=token.id, method=method,
                 path=path[:200])
    return token
