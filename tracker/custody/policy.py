"""The site's custody policy: day end, due times, long check-outs, approval and handling rules."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..config import DEFAULT_ERASURE_ON_RETURN, parse_kind_classes
from ..models import Checkout, DataClass, Item


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Tokyo"
    day_end: time = time(19, 0)
    approval_required: bool = False  # long check-outs wait for the security desk
    late_sweeps: tuple[time, ...] = ()  # sweeps after the day end, for after-hours check-outs
    # (kind, data class) pairs whose return needs an erasure statement or the desk's inspection; "*" is any.
    erasure_on_return: frozenset[tuple[str, str]] = parse_kind_classes(DEFAULT_ERASURE_ON_RETURN, "ERASURE_ON_RETURN")

    def needs_erasure(self, item: Item) -> bool:
        """Whether returning `item` must say what became of its data (消去確認)."""
        return any(kind in ("*", item.kind.value) and data_class in ("*", item.data_class.value)
                   for kind, data_class in self.erasure_on_return)

    def default_due(self, now: datetime) -> datetime:
        return clock.default_due(now, self.timezone, self.day_end)

    def is_long(self, now: datetime, due_at: datetime) -> bool:
        """Overnight or longer: due after the end of today's working day (or past midnight after it)."""
        return due_at > self.default_due(now)

    def local_day_start(self, now: datetime) -> datetime:
        day = clock.local(now, self.timezone).date()
        return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    def needs_handling_ack(self, session: Session, now: datetime, item: Item) -> bool:
        """The first check-out of the local day of an item with personal data asks for the handling rules (the
        site's default; an admin's take-out rule can ask it of any class, see rules.needs_handling_ack)."""
        return item.data_class != DataClass.none and self.first_checkout_today(session, now, item)

    def first_checkout_today(self, session: Session, now: datetime, item: Item) -> bool:
        """Whether `item` has not been checked out yet during the local day of `now`."""
        earlier = session.scalar(select(Checkout.id).where(
            Checkout.item_id == item.id, Checkout.out_at >= self.local_day_start(now),
            Checkout.out_at < self.local_day_start(now) + timedelta(days=1)).limit(1))
        return earlier is None


def from_config(config: dict) -> Policy:
    return Policy(timezone=config["TIMEZONE"], day_end=config["DAY_END"],
                  approval_required=bool(config.get("APPROVAL_REQUIRED")),
                  late_sweeps=tuple(config.get("LATE_SWEEPS") or ()),
                  erasure_on_return=config.get("ERASURE_ON_RETURN", Policy.erasure_on_return))
