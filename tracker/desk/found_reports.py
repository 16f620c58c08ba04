"""The desk's side of finders' reports: what waits to be handled, and handling it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from .. import audit
from ..models import FoundReport, User


def open_reports(session: Session, limit: int = 50) -> list[FoundReport]:
    """Found-item scans and messages the desk has not handled yet, newest first."""
    return list(session.scalars(select(FoundReport).options(joinedload(FoundReport.item))
                                .where(FoundReport.handled_at.is_(None))
                                .order_by(FoundReport.at.desc()).limit(limit)))


def handle(session: Session, now: datetime, report: FoundReport, actor: User, source: str | None = None) -> None:
    report.handled_at, report.handled_by_id = now, actor.id
    session.flush()
    audit.record(session, now, "found_handled", actor=actor, item=report.item, source=source, report=report.id)
