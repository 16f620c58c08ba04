"""The end-of-day sweep: flag every check-out past its due time, exactly once, whoever runs it and when."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..custody.policy import Policy
from ..models import Checkout, Flag, Sweep, User
from ..queries import not_inside_an_open_bag
from . import flags


@dataclass
class SweepResult:
    business_date: date
    flag_ids: list[int] = field(default_factory=list)  # the flags this run raised, in due order
    first_run: bool = True
    session: Session | None = field(default=None, repr=False)

    @cached_property
    def flags(self) -> list[Flag]:
        """The raised flags as objects with their check-out, item and holder, loaded when first asked for."""
        return flags.load(self.session, self.flag_ids) if self.flag_ids else []


def last_day_end(now: datetime, policy: Policy) -> datetime:
    """The most recent day end at or before `now` (UTC)."""
    today = clock.local(now, policy.timezone).date()
    end = clock.day_end_on(today, policy.timezone, policy.day_end)
    return end if end <= now else clock.day_end_on(today - timedelta(days=1), policy.timezone, policy.day_end)


def last_due(now: datetime, policy: Policy) -> datetime:
    """The most recent moment at or before `now` when a sweep was due: the day end or a later sweep."""
    today = clock.local(now, policy.timezone).date()
    moments = [clock.day_end_on(day, policy.timezone, t) for day in (today - timedelta(days=1), today)
               for t in (policy.day_end, *policy.late_sweeps)]
    return max(m for m in moments if m <= now)


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


def overdue_unflagged(now: datetime) -> tuple:
    """Open check-outs due at or before `now` without a flag; a bag's contents go with the bag."""
    return (Checkout.returned_at.is_(None), Checkout.due_at <= now,
            ~exists().where(Flag.checkout_id == Checkout.id), not_inside_an_open_bag())


def sweep(session: Session, now: datetime, policy: Policy) -> SweepResult:
    """Flag every open check-out due at or before `now` that has no flag yet, set-based; only flushes."""
    row, first = _sweep_row(session, now, business_date(now, policy))
    ids = flags.raise_flags(session, now, row, overdue_unflagged(now))
    result = SweepResult(business_date=row.business_date, flag_ids=ids, first_run=first, session=session)
    if ids:
        session.execute(update(Sweep).where(Sweep.id == row.id).values(flagged=Sweep.flagged + len(ids))
                        .execution_options(synchronize_session=False))
    session.flush()
    session.expire(row)
    return result


def sweep_strict(session: Session, now: datetime, policy: Policy) -> SweepResult:
    """Flag, the moment they are overdue, the open check-outs whose due time a take-out rule capped (a curfew, a
    maximum duration): a USB drive due back by 18:00 is on the desk's list at 18:00, not at the day end.
    Run every minute; the unique flag per check-out keeps it from flagging anything twice, and it leaves the day
    end's sweep record alone (that sweep still flags everything else)."""
    day = clock.local(now, policy.timezone).date()
    ids = flags.raise_flags(session, now, None, (*overdue_unflagged(now), Checkout.strict_due.is_(True)), day=day)
    session.flush()
    return SweepResult(business_date=day, flag_ids=ids, session=session)


def sweep_if_missed(session: Session, now: datetime, policy: Policy) -> SweepResult | None:
    """Sweep if the last sweep that was due (day end or later sweep) has not run since: after downtime, or
    after a sweep that failed. The scheduler asks every minute, so a failed sweep is retried until it runs."""
    due = last_due(now, policy)
    ran = session.scalar(select(Sweep.last_run_at).where(Sweep.business_date == business_date(due, policy)))
    if ran is not None and ran >= due:
        return None
    return sweep(session, now, policy)


def record_duration(session: Session, result: SweepResult, seconds: float) -> None:
    """How long the run took (flagging and queueing the notices), kept for /metrics."""
    session.execute(update(Sweep).where(Sweep.business_date == result.business_date)
                    .values(duration_seconds=round(seconds, 3)).execution_options(synchronize_session=False))


@dataclass
class SweepStatus:
    last_run_at: datetime | None  # the latest sweep that ran, if any
    due: datetime  # the latest moment a sweep was due
    late: bool  # a sweep was due more than LATE_AFTER ago and has not run since


LATE_AFTER = timedelta(minutes=5)


def status(session: Session, now: datetime, policy: Policy) -> SweepStatus:
    """What the desk is told about the sweep: when it last ran, and whether one is late."""
    last = session.scalar(select(func.max(Sweep.last_run_at)))
    due = last_due(now, policy)
    late = now - due > LATE_AFTER and (last is None or last < due)
    if late and last is None:
        # Never swept: late only if the site was already in use at that day end (a new install is not late).
        first_use = session.scalar(select(func.min(User.created_at)))
        late = first_use is not None and first_use < due
    return SweepStatus(last_run_at=last, due=due, late=late)
