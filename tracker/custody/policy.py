"""The custody policy: day end, due times, long check-outs, approval and handling rules.

The settings describe the main office; each site (tracker.models.Site) has its own clock (time zone, day end, later
sweeps), so an item's due times, "overnight" and "today" are those of the site it belongs to: `for_item`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import clock
from ..config import DEFAULT_ERASURE_ON_RETURN, parse_kind_classes, parse_times
from ..models import Checkout, DataClass, Item, Site


@dataclass(frozen=True)
class Policy:
    timezone: str = "Asia/Tokyo"
    day_end: time = time(19, 0)
    approval_required: bool = False  # long check-outs wait for the security desk
    late_sweeps: tuple[time, ...] = ()  # sweeps after the day end, for after-hours check-outs
    # (kind, data class) pairs whose return needs an erasure statement or the desk's inspection; "*" is any.
    erasure_on_return: frozenset[tuple[str, str]] = parse_kind_classes(DEFAULT_ERASURE_ON_RETURN, "ERASURE_ON_RETURN")
    site_id: int | None = None  # whose clock this is: None, the main office (the settings)
    # A site's policy keeps the main office's, so asking it for a main-office item gives the settings' clock back.
    office: Policy | None = field(default=None, compare=False, repr=False)

    def at(self, site: Site | None) -> Policy:
        """The same rules on `site`'s clock (its zone, day end and later sweeps); None is the main office."""
        main = self.office or self
        if site is None:
            return main
        if site.id == self.site_id:
            return self
        return replace(main, timezone=site.timezone, day_end=site.day_end, late_sweeps=site_sweeps(site),
                       site_id=site.id, office=main)

    def for_item(self, item: Item) -> Policy:
        """The policy on the clock of the site `item` belongs to (the main office's needs no query)."""
        if item.site_id == self.site_id:
            return self
        return self.at(item.site if item.site_id is not None else None)

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

    def local_day_end(self, now: datetime) -> datetime:
        """The next local midnight after `now` (UTC): a day with a daylight-saving change is not 24 hours long."""
        day = clock.local(now, self.timezone).date() + timedelta(days=1)
        return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(self.timezone)).astimezone(UTC)

    def first_checkout_today(self, session: Session, now: datetime, item: Item) -> bool:
        """Whether `item` has not been checked out yet during the local day of `now` (at the item's site)."""
        site = self.for_item(item)
        earlier = session.scalar(select(Checkout.id).where(
            Checkout.item_id == item.id, Checkout.out_at >= site.local_day_start(now),
            Checkout.out_at < site.local_day_end(now)).limit(1))
        return earlier is None


def site_sweeps(site: Site) -> tuple[time, ...]:
    """A site's later sweeps ("HH:MM,HH:MM"); a value the admin pages would refuse is no reason to stop sweeping."""
    try:
        return tuple(dict.fromkeys(parse_times(site.late_sweeps or "", "late_sweeps")))
    except ValueError:
        return ()


def for_site(config: dict, site: Site | None) -> Policy:
    """The policy of `site` (None: the main office, as the settings say)."""
    return from_config(config).at(site)


def from_config(config: dict) -> Policy:
    return Policy(timezone=config["TIMEZONE"], day_end=config["DAY_END"],
                  approval_required=bool(config.get("APPROVAL_REQUIRED")),
                  late_sweeps=tuple(config.get("LATE_SWEEPS") or ()),
                  erasure_on_return=config.get("ERASURE_ON_RETURN", Policy.erasure_on_return))
