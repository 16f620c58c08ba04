"""User accounts: create, edit, disable, passwords, and ending every session of a user."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session
from werkzeug.security import check_password_hash, generate_password_hash
from zxcvbn import zxcvbn

from .. import audit, queries, text
from ..errors import N_, InvalidInput
from ..models import LANGUAGES, PRIVILEGED_ROLES, Role, User

EMAIL_RE = re.compile(r"^[^@\s<>\"']{1,64}@[^@\s<>\"']{1,190}\.[^@\s<>\"']{2,}$")
MIN_PASSWORD = 10
MIN_STRENGTH = 2  # zxcvbn's score: 2 means about 10^8 guesses or more, out of reach of a throttled sign-in
MAX_PASSWORD = 200
# A fixed hash to check against when the account does not exist, so timing does not reveal it.
_DUMMY_HASH = generate_password_hash("not-a-real-password-" + secrets.token_hex(8))


# scrypt, Werkzeug's strong default; the test suite swaps in a cheaper method to stay fast.
HASH_METHOD = "scrypt"


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=HASH_METHOD)


def verify_password(user: User | None, password: str) -> bool:
    if user is None:
        check_password_hash(_DUMMY_HASH, password)
        return False
    return check_password_hash(user.password_hash, password)


def check_password_rules(password: str, email: str = "", name: str = "") -> None:
    """Long enough, not the person's name or e-mail, and not a common or easily guessed password (zxcvbn's
    estimate, which knows the common-password lists, keyboard walks, dates and l33t spellings)."""
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(N_("The password must have at least %(n)d characters."), n=MIN_PASSWORD)
    if len(password) > MAX_PASSWORD:
        raise InvalidInput(N_("The password is too long (at most %(n)d characters)."), n=MAX_PASSWORD)
    lowered = password.lower()
    own = [email.split("@")[0].lower(), *(part.lower() for part in re.split(r"[\s._-]+", name or ""))]
    if any(len(word) >= 3 and word in lowered for word in own):
        raise InvalidInput(N_("The password must not contain your name or e-mail address."))
    if zxcvbn(password[:64], user_inputs=[email, name])["score"] < MIN_STRENGTH:
        raise InvalidInput(N_("This password is too easy to guess: it is a common password or close to one. Choose "
                              "a longer one, such as three or four unrelated words."))


def generate_password(email: str = "", name: str = "", length: int = 12) -> str:
    """A random password that keeps the rules for the person it is made for: one in a few hundred random ones
    happened to contain a part of their name or address ("ben", "tan") and was refused, with the admin's new user."""
    while True:
        password = secrets.token_urlsafe(length)
        try:
            check_password_rules(password, email, name)
        except InvalidInput:
            continue
        return password


def normalise_email(email: str) -> str:
    email = (email or "").strip().lower()
    if not EMAIL_RE.match(email) or len(email) > 254:
        raise InvalidInput(N_("Enter a valid e-mail address."))
    return email


def _name(name: str) -> str:
    return text.clean(name, N_("Name"), 100, required=True)


def _role(role: str | Role) -> Role:
    try:
        return Role(role)
    except ValueError:
        raise InvalidInput(N_("Role must be one of: %(choices)s."), choices=", ".join(r.value for r in Role)) from None


def _language(language: str | None) -> str | None:
    if not language:
        return None
    if language not in LANGUAGES:
        raise InvalidInput(N_("Language must be one of: %(choices)s."), choices=", ".join(LANGUAGES))
    return language


def _phone(phone: str | None) -> str | None:
    return text.clean(phone, N_("Phone"), 40) or None


def _deputy(session: Session, raw_id, user: User | None) -> User | None:
    """The deputy chosen from the list (an active user, not the user themselves); None for none."""
    raw = str(raw_id if raw_id is not None else "").strip()
    if not raw:
        return None
    deputy = queries.by_text_id(session, User, raw)
    if deputy is None or not deputy.active:
        raise InvalidInput(N_("Choose the deputy from the list of active users."), about="deputy")
    if user is not None and deputy.id == user.id:
        raise InvalidInput(N_("A user cannot be their own deputy."), about="deputy")
    return deputy


def _desk_lead(desk_lead: bool, role: Role) -> bool:
    """Only the security desk's roles can be its lead: escalations reach the lead through the desk's board."""
    if desk_lead and role not in PRIVILEGED_ROLES:
        raise InvalidInput(N_("Only security desk staff and administrators can be the desk lead."), about="desk_lead")
    return bool(desk_lead)


def find_by_email(session: Session, email: str) -> User | None:
    return session.scalar(select(User).where(User.email == (email or "").strip().lower()))


def create(
    session: Session,
    now: datetime,
    *,
    email: str,
    name: str,
    role: str | Role,
    password: str,
    actor: User | None,
    language: str | None = None,
    phone: str | None = None,
    must_change_password: bool = True,
    source: str | None = None,
    department_id: str | int | None = None,
    deputy_id: str | int | None = None,
    desk_lead: bool = False,
    site_id: str | int | None = None,
) -> User:
    """Add a user; new accounts change their password at first sign-in unless told otherwise."""
    email = normalise_email(email)
    if find_by_email(session, email) is not None:
        raise InvalidInput(N_("A user with that e-mail address already exists."))
    check_password_rules(password, email, name)
    dept = queries.chosen_department(session, department_id)
    site = queries.chosen_site(session, site_id)
    new_role = _role(role)
    deputy, desk_lead = _deputy(session, deputy_id, None), _desk_lead(desk_lead, new_role)
    user = User(dept=dept, email=email, name=_name(name), role=new_role, language=_language(language), phone=_phone(phone),
                active=True, password_hash=hash_password(password), must_change_password=must_change_password,
                session_token=secrets.token_urlsafe(32), created_at=now, deputy=deputy, desk_lead=desk_lead, site=site)
    session.add(user)
    session.flush()
    audit.record(session, now, "user_created", actor=actor, subject=user, source=source, email=email, role=user.role.value,
                 department_id=user.department_id, deputy_id=user.deputy_id, desk_lead=user.desk_lead,
                 **({"site_id": user.site_id} if user.site_id is not None else {}))
    return user


def end_sessions(user: User) -> None:
    """Rotate the session token: every cookie that named the old one stops working."""
    user.session_token = secrets.token_urlsafe(32)


def update(session: Session, now: datetime, user: User, *, name: str, role: str | Role, language: str | None,
           phone: str | None, actor: User | None, source: str | None = None,
           department_id: str | int | None = None, deputy_id: str | int | None = None,
           desk_lead: bool | None = None, site_id: str | int | None = None) -> User:
    """Edit an account; `department_id`, `deputy_id` and `site_id` None keep what is set, "" clears it (the form
    sends one or the other; no site is the main office); `desk_lead` None keeps it. `actor` None is the identity
    provider (SCIM)."""
    new_role = _role(role)
    dept = queries.chosen_department(session, department_id) if department_id is not None else user.dept
    deputy = _deputy(session, deputy_id, user) if deputy_id is not None else user.deputy
    site = queries.chosen_site(session, site_id) if site_id is not None else user.site
    lead = _desk_lead(user.desk_lead if desk_lead is None else desk_lead, new_role)
    if actor is not None and user.id == actor.id and new_role != user.role:
        raise InvalidInput(N_("You cannot change your own role."))
    before = {"name": user.name, "role": user.role.value, "department_id": user.department_id,
              "deputy_id": user.deputy_id, "desk_lead": user.desk_lead, "site_id": user.site_id}
    if new_role != user.role:
        end_sessions(user)
    user.name, user.role, user.language, user.phone = _name(name), new_role, _language(language), _phone(phone)
    user.dept, user.deputy, user.desk_lead, user.site = dept, deputy, lead, site
    session.flush()
    audit.record(session, now, "user_updated", actor=actor, subject=user, source=source, before=before)
    return user


def set_active(session: Session, now: datetime, user: User, active: bool, actor: User | None,
               source: str | None = None, **details) -> User:
    """Enable or disable an account; disabling ends all its sessions at once. `actor` None is the identity
    provider (SCIM), which says so in `details`."""
    if actor is not None and user.id == actor.id and not active:
        raise InvalidInput(N_("You cannot disable your own account."))
    user.active = active
    if not active:
        end_sessions(user)
    session.flush()
    audit.record(session, now, "user_enabled" if active else "user_disabled", actor=actor, subject=user, source=source,
                 **details)
    return user


def change_password(session: Session, now: datetime, user: User, new_password: str, actor: User,
                    must_change: bool = False, source: str | None = None) -> None:
    """Set a new password and end every session of the user."""
    check_password_rules(new_password, user.email, user.name)
    user.password_hash = hash_password(new_password)
    user.must_change_password = must_change
    end_sessions(user)
    session.flush()
    audit.record(session, now, "password_changed", actor=actor, subject=user, source=source,
                 reset_by_admin=actor.id != user.id)


def count(session: Session) -> int:
    return session.scalar(select(func.count(User.id))) or 0
