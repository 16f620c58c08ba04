"""A stock-take session's life: the desk opens it for a scope, people count items into it, the desk closes it.

Plain rules: each takes a session and an explicit `now`, only flushes, and writes its audit events in the same
transaction. Counting is settled by the database: one row per session and item (a unique index), inserted with
ON CONFLICT DO NOTHING, so a second scan, or a second counter at the same moment, counts the item once. A count
holds a share lock on its session's row and closing takes it exclusively, so no count slips in after the close.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import datetime

from blinker import Namespace
from sqlalchemy import literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from .. import audit
from ..desk.common import desk_only
from ..errors import N_, DomainError, InvalidInput
from ..models import Department, Flag, FlagStatus, Item, Site, StockCount, StockTake, StoragePlace, User, UTCDateTime
from . import reconcile as rc

SCOPES = ("all", "site", "department", "place")
METHODS = ("phone", "scanner", "typed")
MISSING = "stocktake_missing"  # Flag.reason of an item a stock-take found missing

_signals = Namespace()
# (session, now=, stocktake=, item_ids=[...]): a closed stock-take found items missing. Sent inside the closing
# transaction, so the notice (tracker.notify.stocktake; the app connects it) commits with the flags or not at all.
missing_found = _signals.signal("stocktake-missing-found")

# Renders the closed session's report: (stock-take, reconciliation) -> {"pdf": ..., "csv": ..., "xlsx": ...}.
Renderer = Callable[[StockTake, rc.Reconciliation], dict[str, bytes]]


class Closed(DomainError):
    message = N_("Stock-take %(n)d is closed; nothing more can be counted in it.")


def open_stocktake(session: Session, now: datetime, actor: User, scope: str, target: int | None = None,
                   source: str | None = None) -> StockTake:
    """Open a session for every item, or one site (None: the main office), department or storage place."""
    desk_only(actor)
    if scope not in SCOPES:
        raise InvalidInput(N_("Choose what the stock-take covers."), about="scope")
    stocktake = StockTake(scope=scope, opened_at=now, opened_by_id=actor.id)
    if scope == "site" and target is not None:
        stocktake.site_id = _existing(session, Site, target).id
    elif scope == "department":
        stocktake.department_id = _existing(session, Department, target).id
    elif scope == "place":
        place = _existing(session, StoragePlace, target)
        if place.retired_at is not None:
            raise InvalidInput(N_("That storage place is no longer in use."), about="target")
        stocktake.place_id, stocktake.site_id = place.id, place.site_id
    session.add(stocktake)
    session.flush()
    audit.record(session, now, "stocktake_opened", actor=actor, source=source, stocktake=stocktake.id, scope=scope,
                 target=target)
    return stocktake


def _existing(session: Session, model, ident: int | None):
    found = session.get(model, ident) if ident is not None else None
    if found is None:
        raise InvalidInput(N_("Choose what the stock-take covers."), about="target")
    return found


def _locked(session: Session, stocktake_id: int, exclusive: bool) -> StockTake:
    """The session's row, read again under a lock: shared for a count, exclusive for the close (PostgreSQL;
    SQLite writes one transaction at a time)."""
    return session.execute(select(StockTake).where(StockTake.id == stocktake_id)
                           .with_for_update(read=not exclusive).execution_options(populate_existing=True)).scalar_one()


def count(session: Session, now: datetime, stocktake: StockTake, item: Item, actor: User, method: str,
          place_id: int | None = None, source: str | None = None) -> tuple[StockCount, bool]:
    """Count `item` as seen now; returns the count and whether this call made it (False: it was counted already,
    by whom and when the count says). A place-scoped session's counts are found at that place unless told."""
    desk_only(actor)
    if method not in METHODS:
        raise InvalidInput(N_("The input is not valid."))
    stocktake = _locked(session, stocktake.id, exclusive=False)
    if stocktake.closed_at is not None:
        raise Closed(n=stocktake.id)
    if place_id is not None and session.get(StoragePlace, place_id) is None:
        raise InvalidInput(N_("Choose a storage place from the list."), about="place")
    if place_id is None and stocktake.scope == "place":
        place_id = stocktake.place_id
    insert = (postgresql if session.get_bind().dialect.name == "postgresql" else sqlite).insert
    new_id = session.scalar(
        insert(StockCount).values(stocktake_id=stocktake.id, item_id=item.id, counted_by_id=actor.id,
                                  counted_at=now, method=method, place_id=place_id)
        .on_conflict_do_nothing(index_elements=["stocktake_id", "item_id"]).returning(StockCount.id))
    if new_id is None:
        return session.scalars(select(StockCount).where(StockCount.stocktake_id == stocktake.id,
                                                        StockCount.item_id == item.id)).one(), False
    session.execute(update(Item).where(Item.id == item.id).values(last_counted_at=literal(now, UTCDateTime())))
    audit.record(session, now, "stocktake_counted", actor=actor, item=item, source=source, stocktake=stocktake.id,
                 method=method, place=place_id)
    return session.get(StockCount, new_id), True


def close(session: Session, now: datetime, stocktake: StockTake, actor: User, render: Renderer,
          source: str | None = None) -> StockTake:
    """Close the session: freeze its reconciliation, keep its report (PDF, CSV and .xlsx, from `render`), raise a flag on
    the desk's board for each missing item, and record `stocktake_closed` with the SHA-256 of the PDF's bytes
    exactly as kept and handed out (an auditor hashes the downloaded file and finds the same value in the trail)."""
    desk_only(actor)
    stocktake = _locked(session, stocktake.id, exclusive=True)
    if stocktake.closed_at is not None:
        raise Closed(n=stocktake.id)
    rec = rc.reconcile(session, stocktake)
    stocktake.closed_at, stocktake.closed_by_id = now, actor.id
    session.flush()  # the report names who closed it
    files = render(stocktake, rec)
    stocktake.result = rc.freeze(rec)
    stocktake.report_pdf, stocktake.report_csv, stocktake.report_xlsx = files["pdf"], files["csv"], files["xlsx"]
    stocktake.report_sha256 = hashlib.sha256(files["pdf"]).hexdigest()
    session.add_all(Flag(item_id=line.item_id, reason=MISSING, stocktake_id=stocktake.id, created_at=now,
                         status=FlagStatus.open) for line in rec.missing)
    session.flush()
    audit.record_rows(session, now, "stocktake_missing", actor=actor, source=source, rows=[
        {"item_id": line.item_id, "data": {"stocktake": stocktake.id}} for line in rec.missing])
    if rec.missing:
        missing_found.send(session, now=now, stocktake=stocktake, item_ids=[line.item_id for line in rec.missing])
    audit.record(session, now, "stocktake_closed", actor=actor, source=source, stocktake=stocktake.id,
                 sha256=stocktake.report_sha256, **rec.totals())
    return stocktake
