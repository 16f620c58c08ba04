"""Local-time helpers: day end, default due times and display in the configured zone."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from .errors import N_, InvalidInput


def now() -> datetime:
    """The one clock of the app (aware, UTC): requests, sessions, jobs and commands all read it."""
    return datetime.now(UTC)


def from_local(value: datetime | date, tz: str) -> datetime:
    """A wall-clock time (or a date's midnight) typed in zone `tz`, as an aware UTC datetime.

    Raises InvalidInput for a time that has no UTC value (year 1 in Tokyo, 9999-12-31 and the like).
    """
    if not isinstance(value, datetime):
        value = datetime.combine(value, time(0, 0))
    try:
        return value.replace(tzinfo=ZoneInfo(tz)).astimezone(UTC)
    except (OverflowError, ValueError):
        raise InvalidInput(N_("%(value)s is outside the dates this system can use."), value=str(value)) from None


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
