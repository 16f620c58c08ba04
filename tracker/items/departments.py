"""Departments as records: names are unique after NFKC normalisation and trimming, parents form a tree, and
managers are users; items and users choose one from the list, the CSV import names one exactly."""

from __future__ import annotations

import unicodedata
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit, queries, text
from ..errors import N_, InvalidInput
from ..models import Department, User

NAME_LIMIT = 100


def normalise(name: str | None) -> str:
    """The name as stored and matched: NFKC (full-width letters and digits become plain ones), trimmed."""
    return unicodedata.normalize("NFKC", name or "").strip()


def by_name(session: Session) -> dict[str, int]:
    """Every department's id by its name, read once (the CSV import maps names with it)."""
    return {name: i for name, i in session.execute(select(Department.name, Department.id))}


def named(session: Session, name: str | None) -> Department | None:
    """The department called `name` (exactly, after normalising), None for no name; InvalidInput if unknown."""
    name = normalise(name)
    if not name:
        return None
    found = session.scalar(select(Department).where(Department.name == name))
    if found is None:
        raise InvalidInput(N_("There is no department called %(name)s."), name=name, about="department")
    return found


def _clean_name(session: Session, name: str | None, this: Department | None) -> str:
    name = text.clean(normalise(name), N_("Name"), NAME_LIMIT, required=True, about="name")
    other = session.scalar(select(Department).where(Department.name == name))
    if other is not None and other is not this:
        raise InvalidInput(N_("There is already a department called %(name)s."), name=name, about="name")
    return name


def _parent(session: Session, parent_id, this: Department | None) -> Department | None:
    parent = queries.chosen_department(session, parent_id)
    node = parent
    while node is not None:  # a department cannot sit under itself or under one of its own
        if this is not None and node.id == this.id:
            raise InvalidInput(N_("A department cannot be placed under itself or one of its own."), about="parent")
        node = node.parent
    return parent


def _managers(session: Session, manager_ids) -> list[User]:
    ids = sorted({n for i in manager_ids or [] if (n := text.as_int(i)) is not None})
    users = list(session.scalars(select(User).where(User.id.in_(ids)))) if ids else []
    if len(users) != len(ids) or len(ids) != len(list(manager_ids or [])):
        raise InvalidInput(N_("Choose the managers from the list."), about="managers")
    return sorted(users, key=lambda u: u.id)


def create(session: Session, now: datetime, *, name: str, parent_id=None, manager_ids=(), actor: User | None,
           source: str | None = None) -> Department:
    """A new department, recorded in the audit trail with its parent and managers."""
    dept = Department(name=_clean_name(session, name, None), parent=_parent(session, parent_id, None),
                      managers=_managers(session, manager_ids), created_at=now)
    session.add(dept)
    session.flush()
    audit.record(session, now, "department_created", actor=actor, source=source, department_id=dept.id,
                 name=dept.name, parent_id=dept.parent_id, managers=[u.id for u in dept.managers])
    return dept


def update(session: Session, now: datetime, dept: Department, *, name: str, parent_id=None, manager_ids=(),
           actor: User | None, source: str | None = None) -> Department:
    """Rename, re-parent or change the managers of a department; each change is one audit event."""
    new_name = _clean_name(session, name, dept)
    parent = _parent(session, parent_id, dept)
    managers = _managers(session, manager_ids)
    if new_name != dept.name:
        audit.record(session, now, "department_renamed", actor=actor, source=source, department_id=dept.id,
                     before=dept.name, after=new_name)
        dept.name = new_name
    if (parent.id if parent else None) != dept.parent_id:
        audit.record(session, now, "department_moved", actor=actor, source=source, department_id=dept.id,
                     before=dept.parent_id, after=parent.id if parent else None)
        dept.parent = parent
    before = sorted(u.id for u in dept.managers)
    if before != [u.id for u in managers]:
        audit.record(session, now, "department_managers_changed", actor=actor, source=source, department_id=dept.id,
                     before=before, after=[u.id for u in managers])
        dept.managers = managers
    session.flush()
    return dept


def all_departments(session: Session) -> list[Department]:
    return list(session.scalars(select(Department).order_by(Department.name)))
