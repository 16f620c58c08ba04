"""Sign-in checks with throttling kept in the database, so it holds across worker processes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from .. import audit
from ..errors import N_, DomainError
from ..models import LoginAttempt, User
from . import users

WINDOW = timedelta(minutes=15)
ACCOUNT_LIMIT = 5
ADDRESS_LIMIT = 20


class SignInFailed(DomainError):
    message = N_("The e-mail address or password is wrong, or the account is disabled.")


class Throttled(DomainError):
    message = N_("Too many failed sign-ins. Try again in %(minutes)d minutes.")


def _failures(session: Session, now: datetime, scope: str, key: str) -> tuple[int, datetime | None]:
    row = session.execute(
        select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
            LoginAttempt.scope == scope, LoginAttempt.key == key, LoginAttempt.at > now - WINDOW
        )
    ).one()
    return row[0], row[1]


def _serialise(session: Session, email: str, address: str) -> None:
    """Let one sign-in per account and per address count at a time, so parallel guesses cannot slip past.

    SQLite already runs one writing transaction at a time; PostgreSQL takes transaction-level advisory locks.
    """
    if session.get_bind().dialect.name == "postgresql":
        for key in sorted((f"account:{email}", f"address:{address}")):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def _check_throttle(session: Session, now: datetime, email: str, address: str) -> None:
    for scope, key, limit in (("account", email, ACCOUNT_LIMIT), ("address", address, ADDRESS_LIMIT)):
        n, oldest = _failures(session, now, scope, key)
        if n >= limit and oldest is not None:
            minutes = max(1, int(((oldest + WINDOW) - now).total_seconds() // 60) + 1)
            raise Throttled(minutes=minutes)


def authenticate(session: Session, now: datetime, email: str, password: str, address: str) -> User:
    """Return the user for good credentials; record and refuse everything else alike.

    The caller must commit even when this raises, so that failures are counted.
    """
    key = (email or "").strip().lower()[:254]
    _serialise(session, key, address)
    _check_throttle(session, now, key, address)
    user = users.find_by_email(session, key)
    ok = users.verify_password(user, password or "")
    if not ok or user is None or not user.active:
        session.add_all([LoginAttempt(scope="account", key=key, at=now),
                         LoginAttempt(scope="address", key=address, at=now)])
        session.flush()
        audit.record(session, now, "signin_failed", subject=user, source=address, email=key)
        raise SignInFailed()
    session.execute(delete(LoginAttempt).where(LoginAttempt.scope == "account", LoginAttempt.key == key))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - WINDOW))
    audit.record(session, now, "signin", actor=user, subject=user, source=address)
    return user
