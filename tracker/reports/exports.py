"""CSV records for auditors: check-outs in a date range and the media register, safe to open in Excel."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, selectinload

from .. import clock
from ..models import Checkout, Item

BOM = "\ufeff"
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def cell(value) -> str:
    """A value Excel shows as text: anything that could start a formula gets a leading apostrophe."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def _rows(header: list[str], rows: Iterator[list]) -> Iterator[str]:
    """CSV text in chunks, with a BOM first so Excel reads UTF-8 (and Japanese) correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(header)
    yield BOM + buf.getvalue()
    for row in rows:
        buf.seek(0)
        buf.truncate()
        writer.writerow([cell(v) for v in row])
        yield buf.getvalue()


def _local(moment: datetime | None, tz: str) -> str:
    return clock.local(moment, tz).strftime("%Y-%m-%d %H:%M") if moment else ""


def checkouts_csv(session: Session, start: datetime, end: datetime, tz: str, header: list[str]) -> Iterator[str]:
    """Every check-out that started in [start, end), oldest first."""
    # selectinload works batch by batch with yield_per, so a long period streams in bounded memory.
    stmt = (select(Checkout).options(selectinload(Checkout.item), selectinload(Checkout.holder),
                                     selectinload(Checkout.returned_by))
            .where(Checkout.out_at >= start, Checkout.out_at < end).order_by(Checkout.out_at, Checkout.id)
            .execution_options(yield_per=500))

    def rows():
        for co in session.scalars(stmt):
            yield [co.item.asset_tag, co.item.kind.value, co.item.name, co.item.department or "",
                   co.item.data_class.value, co.holder.name, co.holder.email, _local(co.out_at, tz),
                   _local(co.due_at, tz), _local(co.returned_at, tz), co.returned_by.name if co.returned_by else "",
                   co.purpose, co.destination, co.reason or ""]

    return _rows(header, rows())


def register_csv(session: Session, tz: str, header: list[str]) -> Iterator[str]:
    """The media register: every item in service and who holds it now."""
    open_by_item = {co.item_id: (co.holder.name, co.holder.email, co.out_at, co.due_at) for co in session.scalars(
        select(Checkout).options(joinedload(Checkout.holder)).where(Checkout.returned_at.is_(None)))}
    stmt = select(Item).where(Item.retired_at.is_(None)).order_by(Item.asset_tag).execution_options(yield_per=500)

    def rows():
        for item in session.scalars(stmt):
            co = open_by_item.get(item.id)
            yield [item.asset_tag, item.kind.value, item.name, item.serial or "", item.department or "",
                   item.data_class.value, "yes" if item.encrypted else "no", item.people_count or "",
                   "out" if co else "in", co[0] if co else "", co[1] if co else "",
                   _local(co[2], tz) if co else "", _local(co[3], tz) if co else ""]

    return _rows(header, rows())
