"""The one function through which every audit event is written."""

from __future__ import annotations

import json
from datetime import datetime

from sqlalchemy.orm import Session

from .models import Event, Item, User


def record(
    session: Session,
    now: datetime,
    action: str,
    *,
    actor: User | None = None,
    item: Item | None = None,
    checkout=None,
    subject: User | None = None,
    source: str | None = None,
    **data,
) -> Event:
    """Append one event in the caller's transaction, so it commits with the change or not at all."""
    event = _event(now, action, actor, item, checkout, subject, source, data)
    session.add(event)
    session.flush()
    return event


def record_many(session: Session, now: datetime, action: str, *, actor: User | None, source: str | None,
                items: list[tuple[int, dict]]) -> None:
    """One event per item (its id and data) in one statement, for a change made to many items at once."""
    if not items:
        return
    session.flush()
    session.execute(Event.__table__.insert(), [_row(now, action, actor, None, None, None, source, data) | {"item_id": item_id}
                                    for item_id, data in items])


def _event(now, action, actor, item, checkout, subject, source, data) -> Event:
    return Event(**_row(now, action, actor, item, checkout, subject, source, data))


def _row(now, action, actor, item, checkout, subject, source, data) -> dict:
    return {
        "at": now,
        "action": action,
        "actor_id": actor.id if actor else None,
        "item_id": item.id if item else None,
        "checkout_id": checkout.id if checkout else None,
        "subject_user_id": subject.id if subject else None,
        "source": source,
        "data": json.dumps(data, ensure_ascii=False, sort_keys=True, default=str),
    }
