"""What /healthz and /metrics report, read from the database in a fixed number of queries (however many rows):
nothing personal, only counts and times."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import and_, func, select, text
from sqlalchemy.orm import Session

from ..custody.policy import Policy
from ..desk import sweep
from ..models import Checkout, Notification, Sweep


@dataclass
class SiteSweep:
    """One site's sweep, on its own clock."""

    name: str
    last_run_at: datetime | None
    due: datetime
    late: bool
    lag_seconds: float


def _lag(status: sweep.SweepStatus, now: datetime) -> float:
    """From the last due sweep time to its run, or to now while it has not run."""
    ran = status.last_run_at is not None and status.last_run_at >= status.due
    return max(((status.last_run_at if ran else now) - status.due).total_seconds(), 0.0)


@dataclass
class Figures:
    open_checkouts: int
    overdue_checkouts: int
    sweep_last_run_at: datetime | None
    sweep_due: datetime
    sweep_late: bool
    sweep_lag_seconds: float  # from the last due sweep time to its run, or to now while it has not run
    sweep_duration_seconds: float | None
    notifications_backlog: int  # waiting to be sent (including retries)
    notifications_retrying: int  # waiting after at least one failed attempt
    notifications_failed: int  # given up on after every retry
    sites: list[SiteSweep] = field(default_factory=list)  # each site's sweep (the fields above: the main office's)

    @property
    def any_sweep_late(self) -> bool:
        return self.sweep_late or any(site.late for site in self.sites)


def ping(session: Session) -> None:
    """Raise when the database cannot be reached."""
    session.execute(text("SELECT 1"))


def figures(session: Session, now: datetime, policy: Policy) -> Figures:
    """Four queries (check-outs, the main office's sweep, the last run's duration, the outbox), and two or three
    per site for its sweep."""
    is_open = Checkout.returned_at.is_(None)
    opened, overdue = session.execute(select(
        func.count(Checkout.id).filter(is_open),
        func.count(Checkout.id).filter(and_(is_open, Checkout.due_at <= now)))).one()
    (_, status), *others = sweep.statuses(session, now, policy)
    duration = session.scalar(select(Sweep.duration_seconds).order_by(Sweep.last_run_at.desc()).limit(1))
    pending = and_(Notification.sent_at.is_(None), Notification.failed_at.is_(None))
    backlog, retrying, failed = session.execute(select(
        func.count(Notification.id).filter(pending),
        func.count(Notification.id).filter(and_(pending, Notification.attempts > 0)),
        func.count(Notification.id).filter(Notification.failed_at.is_not(None)))).one()
    sites = [SiteSweep(name=site.name, last_run_at=st.last_run_at, due=st.due, late=st.late, lag_seconds=_lag(st, now))
             for site, st in others]
    return Figures(open_checkouts=opened, overdue_checkouts=overdue, sweep_last_run_at=status.last_run_at,
                   sweep_due=status.due, sweep_late=status.late, sweep_lag_seconds=_lag(status, now),
                   sweep_duration_seconds=duration, notifications_backlog=backlog,
                   notifications_retrying=retrying, notifications_failed=failed, sites=sites)
