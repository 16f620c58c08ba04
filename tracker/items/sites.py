"""Sites (offices with their own clock) and storage places (保管場所), and where an item lives: its home place is at
its site, so choosing a place sets the site. No site (None) is the main office, which the settings describe.

Plain rules, like the register's: a session and an explicit `now`, only a flush, audit events in the same
transaction, and InvalidInput naming the field (`about`) for anything a person typed wrong.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from .. import audit, queries, text
from ..errors import N_, InvalidInput
from ..models import Site, StoragePlace, User

NAME_LIMIT = 100
ZONE_LIMIT = 64
EMAILS_LIMIT = 2000
_TIME = re.compile(r"(\d{1,2}):(\d{2})")
# One address: something@domain.tld, no spaces, commas or angle brackets (those separate or decorate addresses).
_EMAIL = re.compile(r"[^@\s,;<>\"']+@[^@\s,;<>\"'.]+(\.[^@\s,;<>\"'.]+)+")
MAIN_OFFICE = N_("Main office")


@dataclass(frozen=True)
class Clock:
    """A site's clock and desk, as the sweep and the desk read them: a Site's own, or the settings' for the main
    office (site None)."""

    site_id: int | None
    timezone: str
    day_end: time
    late_sweeps: tuple[time, ...]
    desk_emails: tuple[str, ...]


def clock_of(site: Site | None, config) -> Clock:
    """The clock of a site, or of the main office (None) from the settings (TIMEZONE, DAY_END, LATE_SWEEPS,
    DESK_EMAILS)."""
    if site is None:
        return Clock(None, config["TIMEZONE"], config["DAY_END"], tuple(config.get("LATE_SWEEPS") or ()),
                     _addresses(config.get("DESK_EMAILS") or ""))
    return Clock(site.id, site.timezone, site.day_end, tuple(_times(site.late_sweeps or "")),
                 _addresses(site.desk_emails or ""))


def normalise(name: str | None) -> str:
    """A name as stored and matched: NFKC (full-width letters and digits become plain ones), trimmed."""
    return unicodedata.normalize("NFKC", name or "").strip()


# --- checking what people type --------------------------------------------------------------------------------------


def check_timezone(raw: str | None) -> str:
    """An IANA time zone name that this machine knows, such as Asia/Singapore."""
    name = text.clean(raw, N_("Time zone"), ZONE_LIMIT, required=True, about="timezone")
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(N_("%(value)s is not a time zone; give one such as Asia/Tokyo or Asia/Singapore."),
                           value=name, about="timezone") from None
    return name


def _time(raw: str, field: str, about: str) -> time:
    match = _TIME.fullmatch(raw.strip())
    if match is None or int(match[1]) > 23 or int(match[2]) > 59:
        raise InvalidInput(N_("%(field)s must be a time such as 19:00 (HH:MM)."), field=field, about=about)
    return time(int(match[1]), int(match[2]))


def _times(raw: str) -> list[time]:
    return [_time(part, N_("Later sweeps"), "late_sweeps") for part in raw.split(",") if part.strip()]


def parse_day_end(raw: str | time | None) -> time:
    """The local time the working day closes, HH:MM."""
    if isinstance(raw, time):
        return raw.replace(second=0, microsecond=0)
    return _time(raw or "", N_("Day end"), "day_end")


def parse_late_sweeps(raw: str | None) -> str | None:
    """Later sweeps as stored: "HH:MM,HH:MM" in order without repeats, or None for none."""
    times = sorted(set(_times(normalise(raw).replace("、", ","))))
    return ",".join(f"{t:%H:%M}" for t in times) or None


def _addresses(raw: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in re.split(r"[,;\s]+", raw) if part.strip())


def parse_desk_emails(raw: str | None) -> str | None:
    """The desk's addresses as stored: comma-separated, each one checked; None for none."""
    raw = text.clean(raw, N_("Desk e-mail addresses"), EMAILS_LIMIT, about="desk_emails")
    found: list[str] = []
    for address in _addresses(raw):
        if not _EMAIL.fullmatch(address):
            raise InvalidInput(N_("%(value)s is not an e-mail address."), value=address, about="desk_emails")
        if address.lower() not in (a.lower() for a in found):
            found.append(address)
    return ",".join(found) or None


def _site_name(session: Session, raw: str | None, this: Site | None) -> str:
    name = text.clean(normalise(raw), N_("Name"), NAME_LIMIT, required=True, about="name")
    other = session.scalar(select(Site).where(Site.name == name))
    if other is not None and other is not this:
        raise InvalidInput(N_("There is already a site called %(name)s."), name=name, about="name")
    return name


def _place_name(session: Session, raw: str | None, site_id: int | None, this: StoragePlace | None) -> str:
    name = text.clean(normalise(raw), N_("Name"), NAME_LIMIT, required=True, about="name")
    other = session.scalar(select(StoragePlace).where(StoragePlace.name == name, _at(site_id)))
    if other is not None and other is not this:
        raise InvalidInput(N_("There is already a storage place called %(name)s at this site."), name=name,
                           about="name")
    return name


def _at(site_id: int | None):
    return StoragePlace.site_id.is_(None) if site_id is None else StoragePlace.site_id == site_id


def _write_unique(session: Session, change: Callable[[], object], message: str, **params) -> None:
    """Make `change` and flush it in a savepoint, turning a unique index's refusal (someone took the same name a
    moment ago, after the check) into the same clear error the check gives; the change is then undone."""
    try:
        with session.begin_nested():
            change()
            session.flush()
    except IntegrityError:
        raise InvalidInput(message, about="name", **params) from None


# --- sites ------------------------------------------------------------------------------------------------------------


def _site_values(session: Session, this: Site | None, name, timezone, day_end, late_sweeps, desk_emails) -> dict:
    """Every field checked before anything changes, so a bad one changes nothing."""
    return {"name": _site_name(session, name, this), "timezone": check_timezone(timezone),
            "day_end": parse_day_end(day_end), "late_sweeps": parse_late_sweeps(late_sweeps),
            "desk_emails": parse_desk_emails(desk_emails)}


def _described(values: dict) -> dict:
    return {**values, "day_end": f"{values['day_end']:%H:%M}"}


def create_site(session: Session, now: datetime, *, name: str, timezone: str, day_end: str | time,
                late_sweeps: str | None = None, desk_emails: str | None = None, actor: User | None,
                source: str | None = None) -> Site:
    """A new office with its own clock and desk addresses."""
    values = _site_values(session, None, name, timezone, day_end, late_sweeps, desk_emails)
    site = Site(**values, created_at=now)
    _write_unique(session, lambda: session.add(site), N_("There is already a site called %(name)s."),
                  name=values["name"])
    audit.record(session, now, "site_created", actor=actor, source=source, site_id=site.id, **_described(values))
    return site


def update_site(session: Session, now: datetime, site: Site, *, name: str, timezone: str, day_end: str | time,
                late_sweeps: str | None = None, desk_emails: str | None = None, actor: User | None,
                source: str | None = None) -> Site:
    """Change a site; one event with what changed (before and after), none when nothing did."""
    values = _site_values(session, site, name, timezone, day_end, late_sweeps, desk_emails)
    current = {key: getattr(site, key) for key in values}
    changed = [key for key in values if values[key] != current[key]]
    if not changed:
        return site
    _write_unique(session, lambda: [setattr(site, key, values[key]) for key in changed],
                  N_("There is already a site called %(name)s."), name=values["name"])
    audit.record(session, now, "site_updated", actor=actor, source=source, site_id=site.id,
                 before={k: v for k, v in _described(current).items() if k in changed},
                 after={k: v for k, v in _described(values).items() if k in changed})
    return site


def all_sites(session: Session) -> list[Site]:
    return list(session.scalars(select(Site).order_by(Site.name)))


# --- storage places -------------------------------------------------------------------------------------------------


def create_place(session: Session, now: datetime, *, site_id, name: str, actor: User | None,
                 source: str | None = None) -> StoragePlace:
    """A new storage place at a site (None or "": the main office); names are unique per site."""
    site = queries.chosen_site(session, site_id)
    sid = site.id if site is not None else None
    place = StoragePlace(site_id=sid, name=_place_name(session, name, sid, None), created_at=now)
    _write_unique(session, lambda: session.add(place),
                  N_("There is already a storage place called %(name)s at this site."), name=place.name)
    audit.record(session, now, "place_created", actor=actor, source=source, place_id=place.id, site_id=sid,
                 name=place.name)
    return place


def rename_place(session: Session, now: datetime, place: StoragePlace, *, name: str, actor: User | None,
                 source: str | None = None) -> StoragePlace:
    """Give a place a new name (unique at its site); the items kept there keep it."""
    new_name = _place_name(session, name, place.site_id, place)
    if new_name != place.name:
        before = place.name
        _write_unique(session, lambda: setattr(place, "name", new_name),
                      N_("There is already a storage place called %(name)s at this site."), name=new_name)
        audit.record(session, now, "place_renamed", actor=actor, source=source, place_id=place.id,
                     site_id=place.site_id, before=before, after=new_name)
    return place


def retire_place(session: Session, now: datetime, place: StoragePlace, *, actor: User | None,
                 source: str | None = None) -> StoragePlace:
    """Stop using a place: it takes no new items; those kept there keep it until they are moved."""
    if place.retired_at is not None:
        raise InvalidInput(N_("The storage place %(name)s is already retired."), name=place.name)
    place.retired_at = now
    session.flush()
    audit.record(session, now, "place_retired", actor=actor, source=source, place_id=place.id,
                 site_id=place.site_id, name=place.name)
    return place


def places(session: Session, include_retired: bool = False) -> list[StoragePlace]:
    """Storage places, the main office's first, then by site and name."""
    stmt = select(StoragePlace).outerjoin(Site, Site.id == StoragePlace.site_id)
    if not include_retired:
        stmt = stmt.where(StoragePlace.retired_at.is_(None))
    return list(session.scalars(stmt.order_by(StoragePlace.site_id.is_not(None), Site.name, StoragePlace.name)))


# --- where an item lives ------------------------------------------------------------------------------------------


def chosen_place(session: Session, raw_id) -> StoragePlace | None:
    """The storage place chosen from a list by its id, None for none; InvalidInput for an id that is not one."""
    raw = str(raw_id if raw_id is not None else "").strip()
    if not raw:
        return None
    found = queries.by_text_id(session, StoragePlace, raw)
    if found is None:
        raise InvalidInput(N_("Choose a storage place from the list."), about="home_place")
    return found


def placement(site: Site | None, place: StoragePlace | None,
              kept_place_id: int | None = None) -> tuple[Site | None, StoragePlace | None]:
    """An item's site and home place: the home place is at the item's site, so a place sets the site; a retired
    place takes no new items (one already kept there may stay)."""
    if place is None:
        return site, None
    if place.retired_at is not None and place.id != kept_place_id:
        raise InvalidInput(N_("The storage place %(name)s is retired; it takes no new items."), name=place.name,
                           about="home_place")
    return place.site, place


class Directory:
    """Sites and places by name, read once when a row first names one, for the rows of a CSV file or an API
    request (a form that chooses from the lists never reads it)."""

    def __init__(self, session: Session):
        self.session = session

    @functools.cached_property
    def sites(self) -> dict[str, Site]:
        return {s.name: s for s in self.session.scalars(select(Site))}

    @functools.cached_property
    def places(self) -> dict[tuple[int | None, str], StoragePlace]:
        return {(p.site_id, p.name): p for p in self.session.scalars(select(StoragePlace))}

    def site(self, name: str | None) -> Site | None:
        """The site of that name; no name is the main office."""
        name = normalise(name)
        if not name:
            return None
        if name not in self.sites:
            raise InvalidInput(N_("There is no site called %(name)s."), name=name, about="site")
        return self.sites[name]

    def place(self, site: Site | None, name: str | None) -> StoragePlace | None:
        """The place of that name at that site; no name is none."""
        name = normalise(name)
        if not name:
            return None
        found = self.places.get((site.id if site is not None else None, name))
        if found is None:
            if site is None:
                raise InvalidInput(N_("There is no storage place called %(name)s at the main office."), name=name,
                                   about="home_place")
            raise InvalidInput(N_("There is no storage place called %(name)s at %(site)s."), name=name,
                               site=site.name, about="home_place")
        return found

