"""Reminders before the due time: which check-outs to remind, each claimed once whoever runs the job."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, joinedload

from ..models import Checkout


def claim_reminders(session: Session, now: datetime, before: timedelta) -> list[Checkout]:
    """Open check-outs due within `before` that were not reminded yet; each is claimed once, race-free."""
    candidates = session.scalars(
        select(Checkout).options(joinedload(Checkout.item), joinedload(Checkout.holder))
        .where(Checkout.returned_at.is_(None), Checkout.reminder_sent_at.is_(None), Checkout.parent_id.is_(None),
               Checkout.due_at > now, Checkout.due_at <= now + before)
        .order_by(Checkout.holder_id, Checkout.due_at)).unique().all()
    claimed = []
    for co in candidates:
        done = session.execute(update(Checkout).where(Checkout.id == co.id, Checkout.reminder_sent_at.is_(None))
                               .values(reminder_sent_at=now).execution_options(synchronize_session=False))
        if done.rowcount == 1:
            claimed.append(co)
    return claimed
