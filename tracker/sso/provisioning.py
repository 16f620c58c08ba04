"""Who an identity provider's verified claims sign in as: the user with that e-mail address, or a new one whose
role comes from the provider's groups. Plain rules on a session and a clock, shared by sign-in and SCIM."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit
from ..accounts import users
from ..errors import N_, DomainError, InvalidInput
from ..models import Role, User

# When a person is in several mapped groups, the strongest role wins.
_RANK = {Role.staff: 0, Role.security: 1, Role.admin: 2}


class SsoRefused(DomainError):
    """A sign-in the provider vouched for that this tracker still refuses."""


class AccountDisabled(SsoRefused):
    message = N_("Your account in this tracker is disabled, so single sign-on cannot sign you in. Ask the security "
                 "desk or an administrator.")


class NoEmail(SsoRefused):
    message = N_("The identity provider did not send a verified e-mail address, so no account could be matched. "
                 "Tell an administrator.")


def groups_of(claims: Mapping, claim: str) -> Iterable[str]:
    """The group names in `claim`: a list in most providers, a single string in some."""
    groups = claims.get(claim) or []
    return [groups] if isinstance(groups, str) else [g for g in groups if isinstance(g, str)]


def role_for(claims: Mapping, claim: str, role_map: Mapping[str, str]) -> Role:
    """The strongest role any of the person's groups maps to; staff when none does."""
    roles = [Role(role_map[g]) for g in groups_of(claims, claim) if g in role_map]
    return max(roles, key=_RANK.__getitem__, default=Role.staff)


def find_by_email(session: Session, email: str) -> User | None:
    """The user with this address, whatever its case: providers keep the case people typed."""
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def verified_email(claims: Mapping) -> str:
    """The claims' e-mail address; one the provider marks as unverified cannot be trusted to match an account."""
    email = claims.get("email")
    if not isinstance(email, str) or not email.strip() or claims.get("email_verified") is False:
        raise NoEmail()
    return email.strip().lower()


def display_name(claims: Mapping, email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        name = " ".join(str(claims.get(k, "")).strip() for k in ("given_name", "family_name")).strip()
    return (name or email.split("@")[0])[:100]


def create_unusable(session: Session, now: datetime, *, email: str, name: str, role: Role, source: str | None,
                    how: str) -> User:
    """A new account that signs in through the provider only: its password is random and never shown."""
    user = users.create(session, now, email=email, name=name, role=role, password=users.generate_password(email, name, 32),
                        actor=None, must_change_password=False, source=source)
    audit.record(session, now, "user_provisioned", subject=user, source=source, method=how)
    return user


def _created_or_existing(session: Session, email: str, make: Callable[[], User]) -> tuple[User, bool]:
    """Create an account with `make`, or, when a parallel request (two tabs, the provider retrying) made one with
    this address a moment earlier, the account that won: the unique address settles the race."""
    try:
        with session.begin_nested():
            return make(), True
    except (IntegrityError, InvalidInput):
        existing = find_by_email(session, email)
        if existing is None:
            raise
        return existing, False


def sign_in(session: Session, now: datetime, claims: Mapping, *, role_claim: str, role_map: Mapping[str, str],
            source: str | None, issuer: str) -> User:
    """The user these verified ID-token claims stand for, created on first sign-in; a disabled one is refused.

    The caller commits even when this raises, so that the refusal stays in the audit trail.
    """
    try:
        email = verified_email(claims)
    except NoEmail:
        audit.record(session, now, "signin_failed", source=source, method="oidc", reason="no verified e-mail",
                     issuer=issuer, sub=str(claims.get("sub", ""))[:200])
        raise
    user = find_by_email(session, email)
    if user is None:
        user, _ = _created_or_existing(session, email, lambda: create_unusable(
            session, now, email=email, name=display_name(claims, email), role=role_for(claims, role_claim, role_map),
            source=source, how="oidc"))
    if not user.active:
        audit.record(session, now, "signin_failed", subject=user, source=source, method="oidc", reason="disabled",
                     email=email)
        raise AccountDisabled()
    audit.record(session, now, "signin", actor=user, subject=user, source=source, method="oidc", issuer=issuer,
                 sub=str(claims.get("sub", ""))[:200])
    return user


class EmailTaken(DomainError):
    message = N_("A user with that e-mail address already exists.")


def change(session: Session, now: datetime, user: User, *, email: str | None = None, name: str | None = None,
           active: bool | None = None, source: str | None = None) -> User:
    """What the identity provider says about a person (SCIM): a new address or name, enabled or disabled.

    Disabling goes through the accounts' own path, so every session of the person ends at once; their open
    check-outs stay open, on the desk's board, until the items come back.
    """
    if email is not None:
        email = users.normalise_email(email)
        if email != user.email:
            other = find_by_email(session, email)
            if other is not None and other.id != user.id:
                raise EmailTaken()
            before = user.email
            user.email = email
            session.flush()
            audit.record(session, now, "user_updated", subject=user, source=source, via="scim",
                         before={"email": before})
    if name is not None and name != user.name:
        users.update(session, now, user, name=name, role=user.role, language=user.language, phone=user.phone,
                     actor=None, source=source)
    if active is not None and active != user.active:
        users.set_active(session, now, user, active, actor=None, source=source, via="scim")
    return user


def provision(session: Session, now: datetime, *, email: str, name: str, active: bool = True,
              source: str | None = None) -> User:
    """A person the identity provider assigns to this tracker (SCIM): a staff account that signs in through it."""
    email = users.normalise_email(email)
    if find_by_email(session, email) is not None:
        raise EmailTaken()
    user, made = _created_or_existing(session, email, lambda: create_unusable(
        session, now, email=email, name=name, role=Role.staff, source=source, how="scim"))
    if not made:
        raise EmailTaken()
    if not active:
        users.set_active(session, now, user, False, actor=None, source=source, via="scim")
    return user
