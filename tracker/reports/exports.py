"""CSV records for auditors: check-outs in a date range and the media register, safe to open in Excel.

Values are written in the reader's language like the headers (ノートPC, 個人情報, 持ち出し中, 紛失), times the way
the pages show them; they are built inside the request, so the reader's language is known.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased, joinedload, selectinload

from ..errors import N_
from ..i18n import CLASS_LABELS, KIND_LABELS, gettext, label, when
from ..models import Checkout, Flag, FlagStatus, Item, User

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


MAIN_OFFICE = N_("Main office")


def kept_at(item: Item) -> list[str]:
    """Where the item belongs: its site (the main office when it has none) and its storage place there."""
    return [item.site.name if item.site is not None else gettext(MAIN_OFFICE),
            item.home_place.name if item.home_place is not None else ""]


STATE_LABELS = {"in": N_("In the office"), "out": N_("Out"), "overdue": N_("Overdue"), "lost": N_("Lost"),
                "returned": N_("Returned"), "handed_over": N_("Handed over")}


def _state(now: datetime, co: Checkout | None, lost: bool, handed_to: str | None = None) -> str:
    if co is None:
        return label(STATE_LABELS, "in")
    if lost:
        return label(STATE_LABELS, "lost")
    if handed_to is not None:
        return label(STATE_LABELS, "handed_over")
    if co.returned_at is not None:
        return label(STATE_LABELS, "returned")
    return label(STATE_LABELS, "overdue" if co.due_at <= now else "out")


def checkouts_csv(session: Session, now: datetime, start: datetime, end: datetime, header: list[str]) -> Iterator[str]:
    """Every check-out that started in [start, end), oldest first, with how it ended: returned, handed over to whom
    (the check-out that began the moment this one ended, held by someone else), still out, overdue or lost."""
    successor, heir = aliased(Checkout), aliased(User)
    lost = (select(Flag.id).where(Flag.checkout_id == Checkout.id, Flag.status == FlagStatus.lost)
            .exists().label("lost"))
    # selectinload works batch by batch with yield_per, so a long period streams in bounded memory.
    stmt = (select(Checkout, lost, heir.name)
            .outerjoin(successor, and_(successor.item_id == Checkout.item_id, successor.out_at == Checkout.returned_at,
                                       successor.holder_id != Checkout.holder_id))
            .outerjoin(heir, heir.id == successor.holder_id)
            .options(selectinload(Checkout.item).selectinload(Item.dept), selectinload(Checkout.holder),
                     selectinload(Checkout.item).selectinload(Item.site),
                     selectinload(Checkout.item).selectinload(Item.home_place), selectinload(Checkout.returned_by))
            .where(Checkout.out_at >= start, Checkout.out_at < end).order_by(Checkout.out_at, Checkout.id)
            .execution_options(yield_per=500))

    def rows():
        for co, is_lost, handed_to in session.execute(stmt):
            yield [co.item.asset_tag, label(KIND_LABELS, co.item.kind), co.item.name, co.item.department or "",
                   *kept_at(co.item), label(CLASS_LABELS, co.item.data_class), co.holder.name, co.holder.email, when(co.out_at),
                   when(co.due_at), _state(now, co, is_lost, handed_to), when(co.returned_at),
                   co.returned_by.name if co.returned_by and handed_to is None else "", handed_to or "",
                   co.purpose, co.destination, co.reason or ""]

    return _rows(header, rows())


def register_csv(session: Session, now: datetime, header: list[str]) -> Iterator[str]:
    """The media register: every item in service, whether it is in, out, overdue or lost, and who holds it."""
    lost = (select(Flag.id).where(Flag.checkout_id == Checkout.id, Flag.status == FlagStatus.lost)
            .exists().label("lost"))
    open_by_item = {co.item_id: (co, is_lost) for co, is_lost in session.execute(
        select(Checkout, lost).options(joinedload(Checkout.holder)).where(Checkout.returned_at.is_(None)))}
    stmt = (select(Item).options(selectinload(Item.dept), selectinload(Item.site), selectinload(Item.home_place))
            .where(Item.retired_at.is_(None)).order_by(Item.asset_tag).execution_options(yield_per=500))
    yes, no = gettext("Yes"), gettext("No")

    def rows():
        for item in session.scalars(stmt):
            co, is_lost = open_by_item.get(item.id, (None, False))
            yield [item.asset_tag, label(KIND_LABELS, item.kind), item.name, item.serial or "", item.department or "",
                   *kept_at(item), label(CLASS_LABELS, item.data_class), yes if item.encrypted else no, item.people_count or "",
                   _state(now, co, is_lost), co.holder.name if co else "", co.holder.email if co else "",
                   when(co.out_at) if co else "", when(co.due_at) if co else ""]

    return _rows(header, rows())
