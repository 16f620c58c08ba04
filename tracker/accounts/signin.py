"""Sign-in checks with throttling kept in the database, so it holds across worker processes."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from .. import audit
from ..errors import N_, DomainError
from ..models import LoginAttempt, User
from . import users

# Failed attempts that stop further tries, per scope: (limit, window). Guesses from one address stop after 5 for
# one account and 20 in all; an account takes 50 failures an hour from everywhere together before it waits,
# so one address can never lock the real owner out, and a spread-out attack is still slowed down.
LIMITS = {
    "pair": (5, timedelta(minutes=15)),  # one account from one address
    "address": (20, timedelta(minutes=15)),
    "account": (50, timedelta(hours=1)),
}
KEEP = max(window for _, window in LIMITS.values())


class SignInFailed(DomainError):
    message = N_("The e-mail address or password is wrong, or the account is disabled.")


class WrongPassword(DomainError):
    message = N_("The current password is wrong.")


class Throttled(DomainError):
    message = N_("Too many failed sign-ins. Try again in %(minutes)d minutes.")


def _keys(email: str, address: str) -> dict[str, str]:
    return {"pair": f"{email}|{address}"[:254], "address": address, "account": email}


def _serialise(session: Session, keys: dict[str, str]) -> None:
    """Let one attempt per account and per address count at a time, so parallel guesses cannot slip past.

    SQLite already runs one writing transaction at a time; PostgreSQL takes transaction-level advisory locks.
    """
    if session.get_bind().dialect.name == "postgresql":
        for key in sorted(f"{scope}:{key}" for scope, key in keys.items() if scope != "pair"):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": key})


def _check_throttle(session: Session, now: datetime, keys: dict[str, str]) -> None:
    for scope, key in keys.items():
        limit, window = LIMITS[scope]
        n, oldest = session.execute(select(func.count(LoginAttempt.id), func.min(LoginAttempt.at)).where(
            LoginAttempt.scope == scope, LoginAttempt.key == key, LoginAttempt.at > now - window)).one()
        if n >= limit and oldest is not None:
            raise Throttled(minutes=max(1, int(((oldest + window) - now).total_seconds() // 60) + 1))


def _fail(session: Session, now: datetime, keys: dict[str, str]) -> None:
    session.add_all([LoginAttempt(scope=scope, key=key, at=now) for scope, key in keys.items()])
    session.flush()


def check_current_password(session: Session, now: datetime, user: User, password: str, address: str) -> None:
    """The password page's check of the current password, throttled like a sign-in (it is one, to a thief
    holding an unlocked phone). The caller must commit even when this raises."""
    keys = _keys(user.email, address)
    _serialise(session, keys)
    _check_throttle(session, now, keys)
    if not users.verify_password(user, password or ""):
        _fail(session, now, keys)
        audit.record(session, now, "password_check_failed", actor=user, subject=user, source=address)
        raise WrongPassword()


def authenticate(session: Session, now: datetime, email: str, password: str, address: str,
                 password_emails: frozenset[str] | None = None) -> User:
    """Return the user for good credentials; record and refuse everything else alike.

    `password_emails`, when given, are the only accounts that may still use a password (the break-glass admins
    of a site that signs in through its identity provider); any other is refused like a wrong password, so the
    page does not tell which addresses are break-glass ones. The caller must commit even when this raises, so
    that failures are counted.
    """
    key = (email or "").strip().lower()[:254]
    keys = _keys(key, address)
    _serialise(session, keys)
    _check_throttle(session, now, keys)
    user = users.find_by_email(session, key)
    ok = users.verify_password(user, password or "")
    if password_emails is not None and key not in password_emails:
        ok = False
    if not ok or user is None or not user.active:
        _fail(session, now, keys)
        audit.record(session, now, "signin_failed", subject=user, source=address, email=key)
        raise SignInFailed()
    session.execute(delete(LoginAttempt).where(LoginAttempt.scope == "pair", LoginAttempt.key == keys["pair"]))
    session.execute(delete(LoginAttempt).where(LoginAttempt.at < now - KEEP))
    audit.record(session, now, "signin", actor=user, subject=user, source=address)
    return user
