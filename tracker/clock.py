"""Local-time helpers: day end, default due times and display in the configured zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo


def now() -> datetime:
    """The one clock of the app (aware, UTC): requests, sessions, jobs and commands all read it."""
    return datetime.now(UTC)


def local(moment: datetime, tz: str) -> datetime:
    return moment.astimezone(ZoneInfo(tz))


def day_end_on(local_date, tz: str, day_end: time) -> datetime:
    """The day end of one local date, as an aware UTC datetime."""
    return datetime.combine(local_date, day_end, tzinfo=ZoneInfo(tz)).astimezone(UTC)


def default_due(now: datetime, tz: str, day_end: time) -> datetime:
    """Today's day end; after it, the end of the local day (midnight), never a time in the past."""
    today = local(now, tz).date()
    due = day_end_on(today, tz, day_end)
    if due > now:
        return due
    midnight = datetime.combine(today + timedelta(days=1), time(0, 0), tzinfo=ZoneInfo(tz))
    return midnight.astimezone(UTC)
