"""The reconciliation of a stock-take, computed from the data: what was expected in its scope, what was counted,
what is missing, what turned up unexpectedly, what is out with someone, and what was disposed of.

An open session's reconciliation is read afresh on every look; closing freezes it (`freeze`/`thaw`), so the
closed session's page and its report show what was true when it closed, whatever happens to the items later."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from ..models import Checkout, Department, Item, StockCount, StockTake, StoragePlace

CATEGORIES = ("counted", "missing", "out", "unexpected", "disposed")
# Why a counted item is listed as unexpected.
OUT_OF_SCOPE, RETIRED, DISPOSED, OTHER_PLACE = "out_of_scope", "retired", "disposed", "other_place"


@dataclass
class Line:
    """One item on one of the lists, with what the list needs to say about it (plain values: it is frozen as JSON)."""

    item_id: int
    tag: str
    name: str
    kind: str
    data_class: str
    department: str | None
    home_place: str | None
    counted_by: str | None = None
    counted_at: datetime | None = None
    method: str | None = None
    found_place: str | None = None
    holder: str | None = None
    due_at: datetime | None = None
    why: str | None = None  # for an unexpected item: OUT_OF_SCOPE, RETIRED, DISPOSED or OTHER_PLACE


@dataclass
class Reconciliation:
    expected: int = 0
    counted: list[Line] = field(default_factory=list)
    missing: list[Line] = field(default_factory=list)
    out: list[Line] = field(default_factory=list)
    unexpected: list[Line] = field(default_factory=list)
    disposed: list[Line] = field(default_factory=list)

    @property
    def accounted(self) -> int:
        """Expected items counted or out with someone: the session's progress towards `expected`."""
        return len(self.counted) + len(self.out)

    def totals(self) -> dict[str, int]:
        return {"expected": self.expected, **{c: len(getattr(self, c)) for c in CATEGORIES}}


def in_scope(stocktake: StockTake):
    """The condition on Item that puts an item in the session's scope (a NULL site is the main office)."""
    if stocktake.scope == "site":
        return Item.site_id.is_(None) if stocktake.site_id is None else Item.site_id == stocktake.site_id
    if stocktake.scope == "department":
        return Item.department_id == stocktake.department_id
    if stocktake.scope == "place":
        return Item.home_place_id == stocktake.place_id
    return Item.id.isnot(None)


# What the lists say of an item, read as plain rows (an open session's page reads its whole scope every few seconds).
_COLUMNS = (Item.id, Item.asset_tag, Item.name, Item.kind, Item.data_class, Item.department_id, Item.home_place_id,
            Item.retired_at, Item.disposed_at)


def _line(item, places: dict[int, str], departments: dict[int, str], **more) -> Line:
    """A list's line for an item (an Item or a row of _COLUMNS)."""
    return Line(item_id=item.id, tag=item.asset_tag, name=item.name, kind=item.kind.value,
                data_class=item.data_class.value, department=departments.get(item.department_id),
                home_place=places.get(item.home_place_id), **more)


def reconcile(session: Session, stocktake: StockTake) -> Reconciliation:
    """Read the places, the departments, the scope's items, the session's counts and the scope's open check-outs
    (five statements, whatever the size of the register) and sort every item into its lists."""
    places = dict(session.execute(select(StoragePlace.id, StoragePlace.name)).all())
    departments = dict(session.execute(select(Department.id, Department.name)).all())
    scoped = {i.id: i for i in session.execute(select(*_COLUMNS).where(in_scope(stocktake)).order_by(Item.asset_tag))}
    counts = {c.item_id: c for c in session.scalars(
        select(StockCount).options(joinedload(StockCount.item), joinedload(StockCount.counted_by))
        .where(StockCount.stocktake_id == stocktake.id).order_by(StockCount.counted_at, StockCount.id))}
    out = {co.item_id: co for co in session.scalars(
        select(Checkout).join(Item, Item.id == Checkout.item_id).options(joinedload(Checkout.holder))
        .where(in_scope(stocktake), Checkout.returned_at.is_(None)))}
    rec = Reconciliation()
    for item in scoped.values():
        if item.disposed_at is not None:
            rec.disposed.append(_line(item, places, departments))
        elif item.retired_at is not None:
            continue
        else:
            rec.expected += 1
            if item.id in counts:
                continue  # listed with the counts below
            co = out.get(item.id)
            if co is not None:
                rec.out.append(_line(item, places, departments, holder=co.holder.name, due_at=co.due_at))
            else:
                rec.missing.append(_line(item, places, departments))
    for count in counts.values():
        item = count.item
        line = _line(item, places, departments, counted_by=count.counted_by.name, counted_at=count.counted_at,
                     method=count.method, found_place=places.get(count.place_id))
        why = _unexpected(item, count, item.id in scoped)
        if why in (None, OTHER_PLACE):
            rec.counted.append(line)
        if why is not None:
            rec.unexpected.append(Line(**{**asdict(line), "why": why}))
    return rec


def _unexpected(item: Item, count: StockCount, scoped: bool) -> str | None:
    """Why a counted item should not have been there, or None: outside the scope, retired or disposed of, or found
    at another place than its home (it still counts: it is there, only not where the register says)."""
    if not scoped:
        return OUT_OF_SCOPE
    if item.disposed:
        return DISPOSED
    if item.retired:
        return RETIRED
    if count.place_id is not None and item.home_place_id is not None and count.place_id != item.home_place_id:
        return OTHER_PLACE
    return None


def freeze(rec: Reconciliation) -> str:
    """The reconciliation as JSON (times in ISO 8601 UTC), kept on the closed session."""
    def plain(line: Line) -> dict:
        return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in asdict(line).items()}

    return json.dumps({"expected": rec.expected, **{c: [plain(x) for x in getattr(rec, c)] for c in CATEGORIES}},
                      ensure_ascii=False, sort_keys=True)


def thaw(frozen: str) -> Reconciliation:
    """The reconciliation a closed session froze."""
    data = json.loads(frozen)

    def line(d: dict) -> Line:
        for key in ("counted_at", "due_at"):
            if d.get(key):
                d[key] = datetime.fromisoformat(d[key])
        return Line(**d)

    return Reconciliation(expected=data["expected"], **{c: [line(d) for d in data[c]] for c in CATEGORIES})
