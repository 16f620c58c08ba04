"""The end-of-day sweep: flag every check-out past its due time, exactly once, whoever runs it and when.

Each site sweeps on its own clock: its day end and later sweeps in its own zone, its own sweep record per business
date, flagging only the check-outs of its items (the main office's: items without a site). The policy says whose
clock it is (`Policy.site_id`; `policy.for_site`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import cached_property

from sqlalchemy import exists, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import clock
from ..custody.policy import Policy
from ..models import Checkout, Flag, Item, Site, Sweep, User
from ..queries import not_inside_an_open_bag
from . import flags


@dataclass
class SweepResult:
    business_date: date
    flag_ids: list[int] = field(default_factory=list)  # the flags this run raised, in due order
    first_run: bool = True
    session: Session | None = field(default=None, repr=False)
    site_id: int | None = None  # whose sweep: None, the main office

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


def of_site(site_id: int | None):
    """The check-outs of items at `site_id` (None: the main office, items without a site)."""
    return exists().where(Item.id == Checkout.item_id,
                          Item.site_id.is_(None) if site_id is None else Item.site_id == site_id)


def _sweeps_of(site_id: int | None):
    return Sweep.site_id.is_(None) if site_id is None else Sweep.site_id == site_id


def _sweep_row(session: Session, now: datetime, day: date, site_id: int | None = None) -> tuple[Sweep, bool]:
    """The sweep record of the site's business date; the unique (site, date) settles two schedulers starting at
    once."""
    which = (_sweeps_of(site_id), Sweep.business_date == day)
    row = session.scalar(select(Sweep).where(*which))
    if row is not None:
        _count_run(session, row, now)
        return row, False
    try:
        with session.begin_nested():
            row = Sweep(site_id=site_id, business_date=day, started_at=now, last_run_at=now, runs=1, flagged=0)
            session.add(row)
            session.flush()
        return row, True
    except IntegrityError:
        row = session.scalars(select(Sweep).where(*which)).one()
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
    """Flag every open check-out of the policy's site due at or before `now` that has no flag yet, set-based (one
    statement); only flushes."""
    site_id = policy.site_id
    row, first = _sweep_row(session, now, business_date(now, policy), site_id)
    ids = flags.raise_flags(session, now, row, (*overdue_unflagged(now), of_site(site_id)))
    result = SweepResult(business_date=row.business_date, flag_ids=ids, first_run=first, session=session,
                         site_id=site_id)
    if ids:
        session.execute(update(Sweep).where(Sweep.id == row.id).values(flagged=Sweep.flagged + len(ids))
                        .execution_options(synchronize_session=False))
    session.flush()
    session.expire(row)
    return result


def sweep_strict(session: Session, now: datetime, policy: Policy) -> SweepResult:
    """Flag, the moment they are overdue, the open check-outs whose due time a take-out rule capped (a curfew, a
    maximum duration): a USB drive due back by 18:00 is on the desk's list at 18:00, not at the day end.
    Run every minute for every site at once; each flag's business date is the local date at its item's site. The
    unique flag per check-out keeps it from flagging anything twice, and it leaves the day end's sweep records
    alone (those sweeps still flag everything else)."""
    strict = (*overdue_unflagged(now), Checkout.strict_due.is_(True))
    ids: list[int] = []
    for site in (None, *session.scalars(select(Site).order_by(Site.id))):
        clock_of = policy.at(site)
        ids += flags.raise_flags(session, now, None, (*strict, of_site(clock_of.site_id)),
                                 day=clock.local(now, clock_of.timezone).date())
    session.flush()
    return SweepResult(business_date=clock.local(now, policy.timezone).date(), flag_ids=ids, session=session)


def sweep_if_missed(session: Session, now: datetime, policy: Policy, since: datetime | None = None) -> SweepResult | None:
    """Sweep if the last sweep that was due (day end or later sweep) has not run since: after downtime, or
    after a sweep that failed. The scheduler asks every minute, so a failed sweep is retried until it runs.
    `since`: when the site was set up; a day end before it was never its to sweep (its first is its next one)."""
    due = last_due(now, policy)
    if since is not None and due < since:
        return None
    ran = session.scalar(select(Sweep.last_run_at).where(_sweeps_of(policy.site_id),
                                                         Sweep.business_date == business_date(due, policy)))
    if ran is not None and ran >= due:
        return None
    return sweep(session, now, policy)


def record_duration(session: Session, result: SweepResult, seconds: float) -> None:
    """How long the run took (flagging and queueing the notices), kept for /metrics."""
    session.execute(update(Sweep).where(_sweeps_of(result.site_id), Sweep.business_date == result.business_date)
                    .values(duration_seconds=round(seconds, 3)).execution_options(synchronize_session=False))


@dataclass
class SweepStatus:
    last_run_at: datetime | None  # the latest sweep that ran, if any
    due: datetime  # the latest moment a sweep was due
    late: bool  # a sweep was due more than LATE_AFTER ago and has not run since


LATE_AFTER = timedelta(minutes=5)


def status(session: Session, now: datetime, policy: Policy) -> SweepStatus:
    """What the desk is told about the policy's site's sweep: when it last ran, and whether one is late (against
    the site's own last due moment)."""
    last = session.scalar(select(func.max(Sweep.last_run_at)).where(_sweeps_of(policy.site_id)))
    due = last_due(now, policy)
    late = now - due > LATE_AFTER and (last is None or last < due)
    if late and last is None:
        # Never swept: late only if the office was already in use at that day end (a new install or site is not).
        first_use = session.scalar(select(func.min(User.created_at)) if policy.site_id is None
                                   else select(Site.created_at).where(Site.id == policy.site_id))
        late = first_use is not None and first_use < due
    return SweepStatus(last_run_at=last, due=due, late=late)


def statuses(session: Session, now: datetime, policy: Policy) -> list[tuple[Site | None, SweepStatus]]:
    """The sweep status of the main office (None) and of every site, on each one's own clock."""
    return [(site, status(session, now, policy.at(site)))
            for site in (None, *session.scalars(select(Site).order_by(Site.name)))]
