"""The item register: create, edit and retire items, with validation shared by forms and CSV import."""

from __future__ import annotations

import base64
import re
import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from .. import audit, queries, text
from ..errors import N_, InvalidInput
from ..models import Checkout, DataClass, Item, Kind, LabelToken, Site, StoragePlace, User
from ..queries import item_by_tag
from . import departments, sites

TAG_PREFIX = {Kind.laptop: "LT", Kind.usb: "USB", Kind.folder: "DF", Kind.bag: "BG", Kind.other: "OT"}
TAG_RE = re.compile(r"^[A-Z0-9][A-Z0-9-]{0,31}$")
LIMITS = {"asset_tag": 32, "name": 200, "serial": 100, "department": 100, "notes": 2000, "encryption_method": 100,
          "storage_place": 100, "site": 100, "disposal_contractor": 200, "disposal_certificate": 100}
FIELD_LABELS = {
    "asset_tag": N_("Asset tag"),
    "kind": N_("Kind"),
    "name": N_("Name"),
    "serial": N_("Serial number"),
    "department": N_("Department"),
    "data_class": N_("Personal data"),
    "encrypted": N_("Encrypted"),
    "people_count": N_("Number of people"),
    "notes": N_("Notes"),
    "bag": N_("Bag"),
    "encryption_method": N_("Encryption method"),
    "storage_place": N_("Storage place"),
    "site": N_("Site"),
    "disposal_contractor": N_("Disposal contractor"),
    "disposal_certificate": N_("Certificate number"),
}
# How an item is disposed of (廃棄); the labels are in tracker.i18n.
DISPOSAL_METHODS = ("destroyed", "degaussed", "overwritten", "contractor")


@dataclass
class ItemData:
    """Validated values for an item, as the register stores them."""

    kind: Kind
    name: str
    asset_tag: str | None = None
    serial: str | None = None
    department: str | None = None  # by name (the CSV import), exactly after NFKC and trimming
    department_id: str | None = None  # or chosen from the list (the form); either must name a department
    data_class: DataClass = DataClass.none
    encrypted: bool = False
    people_count: int | None = None
    notes: str | None = None
    bag_tag: str | None = None
    encryption_method: str | None = None
    # Where it is kept: a site and a storage place there, by name (the CSV import, the API; no site is the main
    # office) or chosen from the lists by id (the form); a place sets the site (sites.placement).
    storage_place: str | None = None
    site: str | None = None
    site_id: str | None = None
    home_place_id: str | None = None


def _text(values: dict, key: str, required: bool = False) -> str | None:
    return text.clean(values.get(key), FIELD_LABELS[key], LIMITS[key], required=required) or None


def parse_bool(raw) -> bool:
    if isinstance(raw, bool):
        return raw
    text = (raw or "").strip().lower()
    if text in ("", "0", "no", "false", "n", "いいえ", "なし", "無"):
        return False
    if text in ("1", "yes", "true", "y", "はい", "あり", "有", "on"):
        return True
    raise InvalidInput(N_("%(field)s must be yes or no."), field=FIELD_LABELS["encrypted"])


def validate(values: dict) -> ItemData:
    """Turn raw form or CSV values into ItemData, or raise InvalidInput naming the field."""
    try:
        kind = Kind((values.get("kind") or "").strip().lower())
    except ValueError:
        raise InvalidInput(N_("Kind must be one of: %(choices)s."),
                           choices=", ".join(k.value for k in Kind)) from None
    try:
        data_class = DataClass((values.get("data_class") or "none").strip().lower())
    except ValueError:
        raise InvalidInput(N_("Personal data must be one of: %(choices)s."),
                           choices=", ".join(c.value for c in DataClass)) from None
    tag = _text(values, "asset_tag")
    if tag is not None:
        tag = tag.upper()
        if not TAG_RE.match(tag):
            raise InvalidInput(N_("Asset tag may hold only letters A-Z, digits and hyphens."))
    people_raw = (str(values.get("people_count") or "")).strip()
    people = None
    if people_raw:
        people = text.as_int(people_raw)
        if people is None or people > 100_000_000:
            raise InvalidInput(N_("Number of people must be a whole number."))
    bag_tag = (values.get("bag") or "").strip().upper() or None
    if bag_tag and kind == Kind.bag:
        raise InvalidInput(N_("A bag cannot be put inside a bag."))
    return ItemData(
        kind=kind,
        name=_text(values, "name", required=True) or "",
        asset_tag=tag,
        serial=_text(values, "serial"),
        department=departments.normalise(_text(values, "department")) or None,
        department_id=str(values.get("department_id") or "").strip() or None,
        data_class=data_class,
        encrypted=parse_bool(values.get("encrypted")),
        people_count=people,
        notes=_text(values, "notes"),
        bag_tag=bag_tag,
        encryption_method=_text(values, "encryption_method"),
        storage_place=_text(values, "storage_place"),
        site=_text(values, "site"),
        site_id=str(values.get("site_id") or "").strip() or None,
        home_place_id=str(values.get("home_place_id") or "").strip() or None,
    )


def next_asset_tag(session: Session, kind: Kind) -> str:
    """The next free tag for the kind, such as LT-0043 after LT-0042."""
    return _TagNumbers(session).next(kind)


class _TagNumbers:
    """Numbers asset tags per kind from the highest in use, reading the register once (not once a row), and only
    when a row needs a number."""

    def __init__(self, session: Session, also_taken: set[str] | frozenset[str] = frozenset()):
        self.session, self.also_taken = session, also_taken
        self.highest: dict[str, int] | None = None

    def _read(self) -> dict[str, int]:
        highest: dict[str, int] = {}
        for tag in [*self.session.scalars(select(Item.asset_tag)), *self.also_taken]:
            prefix, _, number = tag.rpartition("-")
            if number.isdigit() and prefix in _PREFIXES:
                highest[prefix] = max(highest.get(prefix, 0), int(number))
        return highest

    def next(self, kind: Kind) -> str:
        if self.highest is None:
            self.highest = self._read()
        prefix = TAG_PREFIX[kind]
        self.highest[prefix] = self.highest.get(prefix, 0) + 1
        return f"{prefix}-{self.highest[prefix]:04d}"


_PREFIXES = set(TAG_PREFIX.values())


TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"  # noqa: S105 - an alphabet, not a secret
TOKEN_LENGTH = 26  # 26 base32 characters carry 130 bits


def new_token() -> str:
    """An unguessable label token: 130 bits from the CSPRNG as upper-case base32 (fits QR alphanumeric mode)."""
    return base64.b32encode(secrets.token_bytes(17)).decode()[:TOKEN_LENGTH]  # 17 bytes: 136 bits, 26 chars kept


def issue_label(session: Session, now: datetime, item: Item, actor: User | None,
                source: str | None = None) -> LabelToken:
    """Give the item a fresh label token; the previous one stops working."""
    for old in session.scalars(select(LabelToken).where(LabelToken.item_id == item.id,
                                                        LabelToken.replaced_at.is_(None))):
        old.replaced_at = now
    _new_labels(session, now, [item.id], actor, source)
    return session.scalars(select(LabelToken).where(LabelToken.item_id == item.id,
                                                    LabelToken.replaced_at.is_(None))).one()


def _new_labels(session: Session, now: datetime, item_ids: list[int], actor: User | None,
                source: str | None) -> None:
    session.flush()
    session.execute(LabelToken.__table__.insert(), [{"item_id": i, "token": new_token(), "created_at": now} for i in item_ids])
    audit.record_many(session, now, "label_issued", actor=actor, source=source, items=[(i, {}) for i in item_ids])


def _check_bag(data: ItemData, bag_kind: Kind | None) -> None:
    """The bag `data` names must be a bag, and a bag cannot go inside a bag."""
    if bag_kind != Kind.bag:
        raise InvalidInput(N_("There is no bag with the tag %(tag)s."), tag=data.bag_tag)
    if data.kind == Kind.bag:
        raise InvalidInput(N_("A bag cannot be put inside a bag."))


def _resolve_bag(session: Session, data: ItemData, item: Item) -> Item | None:
    if not data.bag_tag:
        return None
    bag = item_by_tag(session, data.bag_tag, exact=True)
    _check_bag(data, bag.kind if bag is not None else None)
    if bag.id == item.id:
        raise InvalidInput(N_("A bag cannot be put inside a bag."))
    return bag


def create(session: Session, now: datetime, data: ItemData, actor: User | None, source: str | None = None) -> Item:
    """Register a new item with a label token."""
    return session.get(Item, create_many(session, now, [data], actor, source)[0])


def create_many(session: Session, now: datetime, rows: list[ItemData], actor: User | None,
                source: str | None = None) -> list[int]:
    """Register items with their label tokens, bags first so the others can name them; returns their ids.

    The register is read once (tags in use, the bags named) and written in one statement per table, so a CSV
    file of 10,000 rows holds the write lock for about a second, not a statement per row.
    """
    numbers = _TagNumbers(session, {d.asset_tag for d in rows if d.asset_tag})
    in_use = set(session.scalars(select(Item.asset_tag).where(Item.asset_tag.in_(
        [d.asset_tag for d in rows if d.asset_tag]))))
    bags = {tag: (bag_id, kind) for tag, bag_id, kind in session.execute(
        select(Item.asset_tag, Item.id, Item.kind).where(Item.asset_tag.in_({d.bag_tag for d in rows if d.bag_tag})))}
    ids: dict[int, int] = {}
    tags: dict[int, str] = {}
    dept_ids = _department_ids(session, rows)
    kept = _placements(session, rows)
    for bags_first in (True, False):
        batch = [n for n, d in enumerate(rows) if (d.kind == Kind.bag) == bags_first]
        values = []
        for n in batch:
            data = rows[n]
            tag = data.asset_tag or numbers.next(data.kind)
            if tag in in_use:
                raise InvalidInput(N_("The asset tag %(tag)s is already in use."), tag=tag)
            in_use.add(tag)
            bag_id, bag_kind = bags.get(data.bag_tag or "", (None, None))
            if data.bag_tag:
                _check_bag(data, bag_kind)
            tags[n] = tag
            values.append({"asset_tag": tag, "kind": data.kind, "name": data.name, "serial": data.serial,
                           "department_id": dept_ids[n], "data_class": data.data_class,
                           "encrypted": data.encrypted, "people_count": data.people_count, "notes": data.notes,
                           "bag_id": bag_id, "created_at": now, "updated_at": now,
                           "encryption_method": data.encryption_method, "site_id": kept[n][0],
                           "home_place_id": kept[n][1],
                           "registered_by_id": actor.id if actor else None})
        if not values:
            continue
        made = session.scalars(insert(Item).returning(Item.id, sort_by_parameter_order=True), values).all()
        ids.update(zip(batch, made, strict=True))
        if bags_first:
            bags.update({tags[n]: (ids[n], Kind.bag) for n in batch})
    order = [ids[n] for n in range(len(rows))]
    audit.record_many(session, now, "item_created", actor=actor, source=source,
                      items=[(ids[n], {"asset_tag": tags[n]}) for n in range(len(rows))])
    _new_labels(session, now, order, actor, source)
    return order


def update(session: Session, now: datetime, item: Item, data: ItemData, actor: User, source: str | None = None) -> Item:
    """Edit an item; the asset tag may change if the new one is free."""
    if data.asset_tag and data.asset_tag != item.asset_tag:
        other = item_by_tag(session, data.asset_tag, exact=True)
        if other is not None:
            raise InvalidInput(N_("The asset tag %(tag)s is already in use."), tag=data.asset_tag)
    if data.kind != item.kind and item.kind == Kind.bag and item.contents:
        raise InvalidInput(N_("Empty the bag before changing its kind."))
    bag = _resolve_bag(session, data, item)
    dept = _department(session, data)
    site, place = _placement(session, sites.Directory(session), data, item.home_place_id)
    before = {"asset_tag": item.asset_tag, "kind": item.kind.value, "name": item.name, "bag_id": item.bag_id,
              "site_id": item.site_id, "home_place_id": item.home_place_id}
    item.asset_tag = data.asset_tag or item.asset_tag
    item.kind, item.name, item.serial, item.dept = data.kind, data.name, data.serial, dept
    item.data_class, item.encrypted, item.people_count = data.data_class, data.encrypted, data.people_count
    item.notes, item.bag_id, item.updated_at = data.notes, (bag.id if bag else None), now
    item.encryption_method, item.site, item.home_place = data.encryption_method, site, place
    session.flush()
    audit.record(session, now, "item_updated", actor=actor, item=item, source=source, before=before)
    return item


def _department(session: Session, data: ItemData):
    if data.department_id:
        return queries.chosen_department(session, data.department_id)
    return departments.named(session, data.department)


def _placement(session: Session, directory: sites.Directory, data: ItemData,
               kept_place_id: int | None = None) -> tuple[Site | None, StoragePlace | None]:
    """The site and home place a row asks for: chosen from the lists, or named (the place at the named site)."""
    site = queries.chosen_site(session, data.site_id) if data.site_id else directory.site(data.site)
    if data.home_place_id:
        place = sites.chosen_place(session, data.home_place_id)
    else:
        place = directory.place(site, data.storage_place)
    return sites.placement(site, place, kept_place_id)


def _placements(session: Session, rows: list[ItemData]) -> list[tuple[int | None, int | None]]:
    """Each new row's (site id, home place id), reading the sites and places once."""
    if not any(d.site or d.site_id or d.storage_place or d.home_place_id for d in rows):
        return [(None, None)] * len(rows)
    directory = sites.Directory(session)
    out = []
    for data in rows:
        site, place = _placement(session, directory, data)
        out.append((site.id if site is not None else None, place.id if place is not None else None))
    return out


def _department_ids(session: Session, rows: list[ItemData]) -> list[int | None]:
    """Each row's department id, reading the departments once; InvalidInput for a name or id that is none."""
    names = departments.by_name(session) if any(d.department or d.department_id for d in rows) else {}
    known = set(names.values())
    out: list[int | None] = []
    for data in rows:
        if data.department_id:
            department_id = text.as_int(data.department_id)
            if department_id not in known:
                raise InvalidInput(N_("Choose a department from the list."), about="department")
            out.append(department_id)
        elif data.department:
            if data.department not in names:
                raise InvalidInput(N_("There is no department called %(name)s."), name=data.department,
                                   about="department")
            out.append(names[data.department])
        else:
            out.append(None)
    return out


def retire(session: Session, now: datetime, item: Item, actor: User, source: str | None = None) -> Item:
    """Take an item out of service; an item that is out must come back first."""
    if item.retired:
        return item
    if session.scalar(select(Checkout.id).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None))):
        raise InvalidInput(N_("%(tag)s is out; it must be returned before it can be retired."), tag=item.asset_tag)
    for content in item.contents:
        content.bag_id = None
    item.retired_at = now
    item.updated_at = now
    session.flush()
    audit.record(session, now, "item_retired", actor=actor, item=item, source=source)
    return item


def dispose(session: Session, now: datetime, item: Item, actor: User, *, method: str, contractor: str = "",
            certificate: str = "", source: str | None = None) -> Item:
    """The end of an item's life (廃棄): how, by whom, and the contractor's certificate when a contractor did it.

    A disposed item is retired too, so it never goes out again, and its label says it was disposed of."""
    if item.disposed:
        raise InvalidInput(N_("%(tag)s was already disposed of."), tag=item.asset_tag)
    if session.scalar(select(Checkout.id).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None))):
        raise InvalidInput(N_("%(tag)s is out; it must be returned before it can be disposed of."), tag=item.asset_tag)
    if method not in DISPOSAL_METHODS:
        raise InvalidInput(N_("Choose how the item was disposed of."), about="disposal_method")
    values = {"disposal_contractor": contractor, "disposal_certificate": certificate}
    contractor = _text(values, "disposal_contractor")
    certificate = _text(values, "disposal_certificate")
    if method == "contractor" and not (contractor and certificate):
        raise InvalidInput(N_("Give the disposal contractor and the number of their certificate."),
                           about="disposal_certificate")
    for content in item.contents:
        content.bag_id = None
    item.disposed_at, item.disposal_method, item.disposed_by_id = now, method, actor.id
    item.disposal_contractor, item.disposal_certificate = contractor, certificate
    item.retired_at = item.retired_at or now
    item.updated_at = now
    session.flush()
    audit.record(session, now, "item_disposed", actor=actor, item=item, source=source, method=method,
                 contractor=contractor or "", certificate=certificate or "")
    return item
