"""Next counts: which items are due for a stock-take count, and the desk's daily digest of them.

An item's next count is the local date of its last count (`Item.last_counted_at`, or its registration if it was
never counted) plus its take-out rule's `count_every_months` (tracker.custody.rules.next_count_on), in its site's
time zone; a rule without an interval gives no date. The list is chosen by the database: for each rule with an
interval and each site's zone, "counted (or registered) on or before the latest date whose next count falls by
the horizon" is one clause (`latest_basis`, the exact inverse of adding months). Only flushes.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from sqlalchemy import and_, false, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from .. import clock
from ..custody import rules
from ..custody.policy import Policy
from ..models import CountDigest, DataClass, Item, Kind, Site
from ..queries import PAGE_SIZE, Page
from ..text import as_int

DUE_WITHIN = timedelta(days=30)  # "due" on the list: the next count falls within this; before today, overdue
DIGEST_AT = time(9, 0)  # the desk's digest goes out from this local time, once a day per site
MAIN = "main"  # the site filter's value for the main office (items without a site)


def latest_basis(target: date, months: int) -> date:
    """The latest date whose date `months` later (rules.add_months) is on or before `target`."""
    back = rules.add_months(target, -months)
    if target.day == calendar.monthrange(target.year, target.month)[1]:  # the end of a month: its whole tail
        return back.replace(day=calendar.monthrange(back.year, back.month)[1])
    return back


@dataclass(frozen=True)
class Due:
    """One item due for a count: when, and whether that date has passed."""

    item: Item
    next_on: date
    today: date  # in the item's zone

    @property
    def overdue(self) -> bool:
        return self.next_on < self.today

    @property
    def days_overdue(self) -> int:
        return (self.today - self.next_on).days


def _zones(session: Session, policy: Policy) -> dict[int | None, str]:
    """Every site's zone by id, the main office's under None."""
    return {None: policy.timezone, **{ident: tz for ident, tz in session.execute(select(Site.id, Site.timezone))}}


def _due_by(found: list[rules.Rule], zones: dict[int | None, str], now: datetime, within: timedelta):
    """Items whose next count falls on or before (their local today + `within`): one clause per rule with an
    interval and zone (site), comparing the last count (or registration) with a moment computed here."""
    counted = func.coalesce(Item.last_counted_at, Item.created_at)
    by_zone: dict[str, list[int | None]] = {}
    for site_id, tz in zones.items():
        by_zone.setdefault(tz, []).append(site_id)
    clauses = []
    for rule in found:
        if rule.count_every_months is None:
            continue
        for tz, site_ids in by_zone.items():
            horizon = clock.local(now, tz).date() + within
            before = clock.from_local(latest_basis(horizon, rule.count_every_months) + timedelta(days=1), tz)
            known = [i for i in site_ids if i is not None]
            at_site = or_(Item.site_id.in_(known) if known else false(),
                          Item.site_id.is_(None) if None in site_ids else false())
            clauses.append(and_(Item.kind == Kind(rule.kind), Item.data_class == DataClass(rule.data_class),
                                at_site, counted < before))
    return or_(*clauses) if clauses else false()


def _where(site: str, department_id: int | None):
    """The list's filters: a site's id or MAIN (no site), a department's id; empty filters nothing."""
    conditions = [Item.retired_at.is_(None), Item.disposed_at.is_(None)]
    if site == MAIN:
        conditions.append(Item.site_id.is_(None))
    elif (site_id := as_int(site)) is not None:
        conditions.append(Item.site_id == site_id)
    if department_id is not None:
        conditions.append(Item.department_id == department_id)
    return and_(*conditions)


def due_items(session: Session, now: datetime, policy: Policy, *, site: str = "", department_id: int | None = None,
              within: timedelta = DUE_WITHIN) -> list[tuple[int, date, date]]:
    """(item id, next count date, local today) of every item in service due within `within`, overdue first (by
    next count date, then asset tag). Light rows: the whole list is sorted here, one page of items loaded after."""
    table = rules.table(session, policy)
    zones = _zones(session, policy)
    rows = session.execute(
        select(Item.id, Item.asset_tag, Item.kind, Item.data_class, Item.site_id, Item.last_counted_at,
               Item.created_at)
        .where(_where(site, department_id), _due_by(list(table.values()), zones, now, within))).all()
    found = []
    for ident, tag, kind, data_class, site_id, counted, created in rows:
        tz = zones.get(site_id, policy.timezone)
        months = table[(kind.value, data_class.value)].count_every_months
        next_on = rules.add_months(clock.local(counted or created, tz).date(), months)
        found.append((next_on, tag, ident, clock.local(now, tz).date()))
    found.sort()
    return [(ident, next_on, today) for next_on, _tag, ident, today in found]


def due_page(session: Session, now: datetime, policy: Policy, page: int, *, site: str = "",
             department_id: int | None = None, size: int = PAGE_SIZE) -> Page:
    """One page of the due list, as `Due` rows with their items (department, site and home place loaded)."""
    found = due_items(session, now, policy, site=site, department_id=department_id)
    total = len(found)
    pages = max(1, (total + size - 1) // size)
    page = min(max(1, page), pages)
    chunk = found[(page - 1) * size:page * size]
    items = {i.id: i for i in session.scalars(
        select(Item).options(joinedload(Item.dept), joinedload(Item.site), joinedload(Item.home_place))
        .where(Item.id.in_([ident for ident, _, _ in chunk])))}
    return Page(rows=[Due(items[ident], next_on, today) for ident, next_on, today in chunk], page=page, pages=pages,
                total=total)


DIGEST_LINES = 50  # the digest lists this many; the page has the rest


@dataclass
class Digest:
    """The day's digest for one site (None: the main office): the first DIGEST_LINES items due today or overdue,
    and how many there are in all."""

    site: Site | None
    on_date: date
    due: list[Due]
    total: int


def _sent(session: Session, site: Site | None, on_date: date) -> bool:
    same_site = CountDigest.site_id == site.id if site is not None else CountDigest.site_id.is_(None)
    return session.scalar(select(CountDigest.id).where(same_site, CountDigest.on_date == on_date)) is not None


def _claim(session: Session, now: datetime, site: Site | None, on_date: date, total: int) -> bool:
    """Insert the day's row for the site; False when it exists (an earlier run, or another process at once)."""
    try:
        with session.begin_nested():
            session.add(CountDigest(site_id=site.id if site is not None else None, on_date=on_date, items=total,
                                    created_at=now))
            session.flush()
    except IntegrityError:
        return False
    return True


def claim_digests(session: Session, now: datetime, policy: Policy) -> list[Digest]:
    """The digests to send now: for each site whose local time is past DIGEST_AT and that has items due today or
    overdue, one per local day, claimed by inserting its row (a second run, or another process, finds it taken)."""
    sites: list[Site | None] = [None, *session.scalars(select(Site).order_by(Site.name))]
    claimed = []
    for site in sites:
        local = clock.local(now, site.timezone if site is not None else policy.timezone)
        if local.time() < DIGEST_AT or _sent(session, site, local.date()):
            continue
        due = due_items(session, now, policy, site=str(site.id) if site is not None else MAIN, within=timedelta(0))
        if not due or not _claim(session, now, site, local.date(), len(due)):
            continue
        shown = due[:DIGEST_LINES]
        items = {i.id: i for i in session.scalars(select(Item).options(joinedload(Item.dept))
                                                  .where(Item.id.in_([ident for ident, _, _ in shown])))}
        claimed.append(Digest(site=site, on_date=local.date(), total=len(due),
                              due=[Due(items[ident], next_on, today) for ident, next_on, today in shown]))
    return claimed
