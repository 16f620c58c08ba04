"""A lease in the database: one holder at a time across every host, renewed while it lives, taken over once it
has expired. The scheduler holds one so that its jobs run exactly once however many hosts start it."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..models import SchedulerLease


def take(session: Session, now: datetime, name: str, holder: str, ttl: timedelta) -> bool:
    """Renew the lease if `holder` has it, take it over if it has expired, create it if there is none; True when
    `holder` holds it until now + ttl. Each step is one conditional statement, so two takers never both win."""
    until = now + ttl
    renewed = session.execute(update(SchedulerLease).where(SchedulerLease.name == name,
                                                           SchedulerLease.holder == holder)
                              .values(expires_at=until).execution_options(synchronize_session=False))
    if renewed.rowcount == 1:
        return True
    taken = session.execute(update(SchedulerLease).where(SchedulerLease.name == name,
                                                         SchedulerLease.expires_at <= now)
                            .values(holder=holder, acquired_at=now, expires_at=until)
                            .execution_options(synchronize_session=False))
    if taken.rowcount == 1:
        return True
    if session.scalar(select(SchedulerLease.name).where(SchedulerLease.name == name)) is not None:
        return False
    try:
        with session.begin_nested():
            session.add(SchedulerLease(name=name, holder=holder, acquired_at=now, expires_at=until))
            session.flush()
    except IntegrityError:  # another taker created it first
        return False
    return True


def give_up(session: Session, now: datetime, name: str, holder: str) -> None:
    """End `holder`'s lease now, so another may take it at once."""
    session.execute(update(SchedulerLease).where(SchedulerLease.name == name, SchedulerLease.holder == holder)
                    .values(expires_at=now).execution_options(synchronize_session=False))


def current(session: Session, name: str) -> SchedulerLease | None:
    return session.get(SchedulerLease, name)
