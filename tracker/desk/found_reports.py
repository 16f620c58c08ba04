"""The desk's side of finders' reports: what waits to be handled, and handling it, one or several with one note."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import case, distinct, func, select
from sqlalchemy.orm import Session, aliased, joinedload

from .. import audit
from ..models import FoundReport, Item, User
from .common import clean_note, desk_only

LIST_LIMIT = 100


@dataclass
class ScannedLabel:
    """Every unhandled scan of one item's label with no message, as one entry of the board."""

    item: Item
    scans: int
    first_at: datetime
    last_at: datetime


def open_messages(session: Session, limit: int = LIST_LIMIT) -> list[FoundReport]:
    """Finders' messages not handled yet, newest first; scans never push them off the board."""
    return list(session.scalars(select(FoundReport).options(joinedload(FoundReport.item))
                                .where(FoundReport.handled_at.is_(None), FoundReport.message.is_not(None))
                                .order_by(FoundReport.at.desc()).limit(limit)))


def _with_a_message():
    """The label also has a finder's message waiting: the message is that label's one entry on the board."""
    message = aliased(FoundReport)
    return (select(message.id).where(message.item_id == FoundReport.item_id, message.handled_at.is_(None),
                                     message.message.is_not(None)).exists())


def open_scans(session: Session, limit: int = LIST_LIMIT) -> list[ScannedLabel]:
    """Scans without a message not handled yet: one entry per label with the count, latest first; a label
    whose finder left a message is listed once, by its message."""
    rows = session.execute(
        select(FoundReport.item_id, func.sum(FoundReport.scans), func.min(FoundReport.at),
               func.max(FoundReport.last_at))
        .where(FoundReport.handled_at.is_(None), FoundReport.message.is_(None), ~_with_a_message())
        .group_by(FoundReport.item_id).order_by(func.max(FoundReport.last_at).desc()).limit(limit)).all()
    items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_([r[0] for r in rows])))}
    return [ScannedLabel(items[item_id], int(scans), first, last) for item_id, scans, first, last in rows]


def open_counts(session: Session) -> tuple[int, int]:
    """How many finders' messages, and how many labels scanned without one, wait in all (the lists are bounded)."""
    messages, labels = session.execute(
        select(func.count(case((FoundReport.message.is_not(None), FoundReport.id))),
               func.count(distinct(case((FoundReport.message.is_(None) & ~_with_a_message(), FoundReport.item_id)))))
        .where(FoundReport.handled_at.is_(None))).one()
    return int(messages or 0), int(labels or 0)


def by_item(session: Session, item_ids: list[int]) -> dict[int, list[FoundReport]]:
    """Unhandled reports of these items, newest first: the board shows them on the item's own row."""
    found: dict[int, list[FoundReport]] = {}
    if item_ids:
        for report in session.scalars(select(FoundReport).where(FoundReport.item_id.in_(item_ids),
                                                                 FoundReport.handled_at.is_(None))
                                       .order_by(FoundReport.last_at.desc())):
            found.setdefault(report.item_id, []).append(report)
    return found


def handle(session: Session, now: datetime, reports: list[FoundReport], actor: User, note: str = "",
           source: str | None = None) -> int:
    """Mark reports handled with one note; those already handled are left as they were. Returns how many."""
    desk_only(actor)
    note = clean_note(note)
    done = 0
    for report in reports:
        if report.handled_at is not None:
            continue
        report.handled_at, report.handled_by_id, report.handled_note = now, actor.id, note or None
        audit.record(session, now, "found_handled", actor=actor, item=report.item, source=source, report=report.id,
                     note=note)
        done += 1
    session.flush()
    return done


def unhandled(session: Session, report_ids: list[int], item_ids: list[int]) -> list[FoundReport]:
    """The unhandled reports the desk ticked: messages by id, and every scan of the ticked labels and of the
    labels whose message was ticked (the board lists such a label once, by its message)."""
    chosen: list[FoundReport] = []
    if report_ids:
        chosen += session.scalars(select(FoundReport).where(FoundReport.id.in_(report_ids),
                                                            FoundReport.handled_at.is_(None)))
        item_ids = [*item_ids, *{r.item_id for r in chosen if r.message is not None}]
    if item_ids:
        chosen += session.scalars(select(FoundReport).where(FoundReport.item_id.in_(item_ids),
                                                            FoundReport.message.is_(None),
                                                            FoundReport.handled_at.is_(None)))
    return chosen
