"""The end-of-day sweep: flag every check-out past its due time, exactly once, whoever runs it and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import exists, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from .. import clock
from ..custody.policy import Policy
from ..models import Checkout, Flag, Sweep
from ..queries import not_inside_an_open_bag
from . import flags


@dataclass
class SweepResult:
    business_date: date
    flags: list[Flag] = field(default_factory=list)
    first_run: bool = True


def last_day_end(now: datetime, policy: Policy) -> datetime:
    """The most recent day end at or before `now` (UTC)."""
    today = clock.local(now, policy.timezone).date()
    end = clock.day_end_on(today, policy.timezone, policy.day_end)
    return end if end <= now else clock.day_end_on(today - timedelta(days=1), policy.timezone, policy.day_end)


def business_date(now: datetime, policy: Policy) -> date:
    """The local date whose day end the sweep at `now` covers."""
    return clock.local(last_day_end(now, policy), policy.timezone).date()


def _sweep_row(session: Session, now: datetime, day: date) -> tuple[Sweep, bool]:
    """The sweep record of the business date; the unique date settles two schedulers starting at once."""
    row = session.scalar(select(Sweep).where(Sweep.business_date == day))
    if row is not None:
        _count_run(session, row, now)
        return row, False
    try:
        with session.begin_nested():
            row = Sweep(business_date=day, started_at=now, last_run_at=now, runs=1, flagged=0)
            session.add(row)
            session.flush()
        return row, True
    except IntegrityError:
        row = session.scalars(select(Sweep).where(Sweep.business_date == day)).one()
        _count_run(session, row, now)
        return row, False


def _count_run(session: Session, row: Sweep, now: datetime) -> None:
    """Count in SQL, so two overlapping runs never lose an increment."""
    session.execute(update(Sweep).where(Sweep.id == row.id)
                    .values(runs=Sweep.runs + 1, last_run_at=now).execution_options(synchronize_session=False))


def overdue_unflagged(now: datetime):
    """Open check-outs due at or before `now` without a flag; a bag's contents go with the bag."""
    return (select(Checkout).options(joinedload(Checkout.item), joinedload(Checkout.holder))
            .where(Checkout.returned_at.is_(None), Checkout.due_at <= now,
                   ~exists().where(Flag.checkout_id == Checkout.id), not_inside_an_open_bag())
            .order_by(Checkout.due_at, Checkout.id))


def sweep(session: Session, now: datetime, policy: Policy) -> SweepResult:
    """Flag every open check-out due at or before `now` that has no flag yet; only flushes."""
    row, first = _sweep_row(session, now, business_date(now, policy))
    result = SweepResult(business_date=row.business_date, first_run=first)
    for co in session.scalars(overdue_unflagged(now)).unique():
        flag = flags.raise_flag(session, now, co, row)
        if flag is not None:
            result.flags.append(flag)
    if result.flags:
        session.execute(update(Sweep).where(Sweep.id == row.id).values(flagged=Sweep.flagged + len(result.flags))
                        .execution_options(synchronize_session=False))
    session.flush()
    session.expire(row)
    return result


def sweep_if_missed(session: Session, now: datetime, policy: Policy) -> SweepResult | None:
    """After downtime: sweep once if the last day end has no sweep record yet."""
    day = business_date(now, policy)
    if session.scalar(select(Sweep.id).where(Sweep.business_date == day)) is not None:
        return None
    return sweep(session, now, policy)
