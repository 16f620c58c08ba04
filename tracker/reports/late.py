"""Repeat late returns, per person and per department: check-outs returned after their due time and overdue flags,
over a period, the most frequent first, so the desk and the managers know whom to talk to.

Each count is one query (a UNION ALL of the two kinds of lateness, grouped), never one per person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import exists, func, literal, select, union_all
from sqlalchemy.orm import Session, aliased

from ..models import Checkout, Department, Flag, User

PEOPLE_SHOWN = 50  # the people with the most late returns; the departments are few and all shown


@dataclass(frozen=True)
class LateCount:
    """Late returns of one person or department over the period."""

    name: str | None  # None: users without a department
    returned_late: int
    flagged: int
    email: str = ""
    department: str | None = None
    people: int = 1

    @property
    def total(self) -> int:
        return self.returned_late + self.flagged

    @property
    def repeat(self) -> bool:
        return self.total > 1


def _lateness(start: datetime, end: datetime):
    """One row per late return (returned in the period after its due time; a hand-over is not a return) and one
    per flag raised in the period: (holder id, 1, 0) or (holder id, 0, 1). A bag's contents go with the bag."""
    successor = aliased(Checkout)
    handed_over = exists().where(successor.item_id == Checkout.item_id, successor.id != Checkout.id,
                                 successor.out_at == Checkout.returned_at)
    late = (select(Checkout.holder_id.label("user_id"), literal(1).label("late"), literal(0).label("flagged"))
            .where(Checkout.returned_at >= start, Checkout.returned_at < end, Checkout.returned_at > Checkout.due_at,
                   Checkout.parent_id.is_(None), ~handed_over))
    flagged = (select(Checkout.holder_id.label("user_id"), literal(0).label("late"), literal(1).label("flagged"))
               .select_from(Flag).join(Checkout, Checkout.id == Flag.checkout_id)
               .where(Flag.created_at >= start, Flag.created_at < end))
    return union_all(late, flagged).subquery()


def by_person(session: Session, start: datetime, end: datetime, limit: int = PEOPLE_SHOWN) -> list[LateCount]:
    """The people late most often in [start, end), most first."""
    rows = _lateness(start, end)
    late, flagged = func.sum(rows.c.late), func.sum(rows.c.flagged)
    stmt = (select(User.name, User.email, Department.name, late, flagged)
            .join(rows, rows.c.user_id == User.id).outerjoin(Department, Department.id == User.department_id)
            .group_by(User.id, User.name, User.email, Department.name)
            .order_by((late + flagged).desc(), late.desc(), User.name, User.id).limit(limit))
    return [LateCount(name=name, email=email, department=dept, returned_late=int(n_late), flagged=int(n_flagged))
            for name, email, dept, n_late, n_flagged in session.execute(stmt)]


def by_department(session: Session, start: datetime, end: datetime) -> list[LateCount]:
    """Each department's late returns in [start, end) (by the holder's department), with how many people were
    late, most first."""
    rows = _lateness(start, end)
    late, flagged = func.sum(rows.c.late), func.sum(rows.c.flagged)
    stmt = (select(Department.name, func.count(func.distinct(rows.c.user_id)), late, flagged)
            .select_from(rows).join(User, User.id == rows.c.user_id)
            .outerjoin(Department, Department.id == User.department_id)
            .group_by(Department.id, Department.name)
            .order_by((late + flagged).desc(), late.desc(), Department.name))
    return [LateCount(name=name, people=people, returned_late=int(n_late), flagged=int(n_flagged))
            for name, people, n_late, n_flagged in session.execute(stmt)]
