"""Escalation of overdue flags nobody acknowledged: after the hours the item's take-out rule gives, the holder's
manager is told (level 1: the managers of their department, or of the nearest department above it that has one);
after as many hours again, the desk lead (level 2). A holder without a manager up the tree goes straight to the desk
lead, and so does an item a stock-take found missing (nobody holds it). Acknowledging the flag
stops it.

Set-based, like the sweep: one query finds every flag due a step, one conditional UPDATE per step moves them
(`WHERE escalation_level = :old`), so two scheduler ticks at once escalate each flag once per level: a tick that
read a flag another has moved since matches nothing. Only flushes; the caller queues the messages
(tracker.notify.outbox) and commits.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import and_, false, or_, select, update
from sqlalchemy.orm import Session, contains_eager
from sqlalchemy.orm.attributes import set_committed_value

from .. import audit, queries
from ..custody.policy import Policy
from ..custody.rules import Rule, all_rules
from ..models import PRIVILEGED_ROLES, Checkout, DataClass, Flag, FlagStatus, Item, Kind, User
from .flags import CHUNK

NONE, MANAGER, DESK_LEAD = 0, 1, 2  # Flag.escalation_level


@dataclass
class Step:
    """One flag moved one level up, and whom it was escalated to."""

    flag: Flag
    level: int
    told: list[User]
    skipped_manager: bool = False  # the holder has no manager to tell: straight to the desk lead

    @property
    def holder(self) -> User | None:
        """Who holds the item; None for an item a stock-take found missing."""
        return self.flag.checkout.holder if self.flag.checkout is not None else None


@dataclass
class EscalationResult:
    steps: list[Step] = field(default_factory=list)

    def by_recipient(self) -> dict[tuple[int, int], list[Step]]:
        """(user id, level) -> the steps that person is told of, so each gets one message per level."""
        grouped: dict[tuple[int, int], list[Step]] = defaultdict(list)
        for step in self.steps:
            for user in step.told:
                grouped[(user.id, step.level)].append(step)
        return grouped


def _due_a_step(rules: list[Rule], now: datetime):
    """Flags whose rule's hours have passed since they were raised (level 0) or last escalated (level 1); one
    clause per rule that escalates at all (a few dozen at most), so the database does the choosing."""
    clauses = []
    for rule in rules:
        if rule.escalate_after_hours is None:
            continue
        since = now - timedelta(hours=rule.escalate_after_hours)
        clauses.append(and_(Item.kind == Kind(rule.kind), Item.data_class == DataClass(rule.data_class),
                            or_(and_(Flag.escalation_level == NONE, Flag.created_at <= since),
                                and_(Flag.escalation_level == MANAGER, Flag.escalated_at <= since))))
    return or_(*clauses) if clauses else false()


def _candidates(session: Session, now: datetime, policy: Policy) -> list[Flag]:
    """The open, unacknowledged flags due a step, with their items and holders (none for an item missing at a
    stock-take). Each item's rule is what
    `rules.rule_for` would give it (the saved row, else the defaults), read for every kind and class at once.

    On PostgreSQL the rows are locked, skipping those another tick holds: that tick escalates them, this one
    neither waits for it nor deadlocks with it. (SQLite runs one writing transaction at a time.)"""
    where = _due_a_step(all_rules(session, policy), now)
    return list(session.scalars(
        select(Flag).join(Flag.item).outerjoin(Flag.checkout)
        .options(contains_eager(Flag.item), contains_eager(Flag.checkout).joinedload(Checkout.holder))
        .where(Flag.status == FlagStatus.open, Flag.acknowledged_at.is_(None), Flag.escalation_level < DESK_LEAD,
               where)
        .order_by(Flag.created_at, Flag.id).with_for_update(of=Flag, skip_locked=True)))


def desk_leads(session: Session) -> list[User]:
    """The active desk leads (only the security desk's roles can be one)."""
    return list(session.scalars(select(User).where(User.desk_lead.is_(True), User.active.is_(True),
                                                   User.role.in_(PRIVILEGED_ROLES)).order_by(User.name, User.id)))


def leads_at(leads: list[User], site_id: int | None) -> list[User]:
    """The desk leads of the item's site (the main office's: leads without a site); all of them where the site has
    none, so a flag never goes unheard."""
    return [u for u in leads if u.site_id == site_id] or leads


def _move(session: Session, now: datetime, ids: list[int], old: int, new: int) -> set[int]:
    """Move the flags still open, unacknowledged and at `old` to `new`; the ids this transaction moved."""
    moved: set[int] = set()
    for start in range(0, len(ids), CHUNK):
        moved.update(session.scalars(
            update(Flag).where(Flag.id.in_(ids[start:start + CHUNK]), Flag.escalation_level == old,
                               Flag.status == FlagStatus.open, Flag.acknowledged_at.is_(None))
            .values(escalation_level=new, escalated_at=now).returning(Flag.id)
            .execution_options(synchronize_session=False)))
    return moved


def escalate(session: Session, now: datetime, policy: Policy) -> EscalationResult:
    """Move every flag due a step one level up (level 0 to 2 where the holder has no manager to tell), with one
    `flag_escalated` event each. Only flushes."""
    flags = _candidates(session, now, policy)
    if not flags:
        return EscalationResult()
    tree = queries.manager_tree(session) if any(f.escalation_level == NONE and f.checkout for f in flags) else None
    planned: list[tuple[Flag, int, list[User]]] = []
    leads: list[User] | None = None
    for flag in flags:
        holder = flag.checkout.holder if flag.checkout is not None else None
        told = tree.nearest(holder.department_id, holder.id)[1] if tree is not None and holder is not None else []
        if flag.escalation_level == NONE and told:
            planned.append((flag, MANAGER, told))
        else:
            leads = desk_leads(session) if leads is None else leads
            planned.append((flag, DESK_LEAD, leads_at(leads, flag.item.site_id)))
    moved: set[int] = set()
    for old, new in ((NONE, MANAGER), (NONE, DESK_LEAD), (MANAGER, DESK_LEAD)):
        ids = [f.id for f, level, _ in planned if f.escalation_level == old and level == new]
        if ids:
            moved |= _move(session, now, ids, old, new)
    steps = [Step(flag=f, level=level, told=told,
                  skipped_manager=f.escalation_level == NONE and level == DESK_LEAD and f.checkout is not None)
             for f, level, told in planned if f.id in moved]
    for step in steps:  # what the UPDATE wrote, without another query or a second write
        set_committed_value(step.flag, "escalation_level", step.level)
        set_committed_value(step.flag, "escalated_at", now)
    audit.record_rows(session, now, "flag_escalated", actor=None, source="escalation", rows=[
        {"item_id": s.flag.item_id, "checkout_id": s.flag.checkout_id,
         "subject_user_id": s.holder.id if s.holder is not None else None,
         "data": {"flag_id": s.flag.id, "level": s.level, "told": [u.email for u in s.told],
                  **({"no_manager": True} if s.skipped_manager else {}),
                  **({"missing": True} if s.holder is None else {})}}
        for s in steps])
    return EscalationResult(steps=steps)
