"""Scans of labels by people who are not signed in: recorded for the desk at once, with the finder's message."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from . import audit
from .errors import N_, DomainError, InvalidInput
from .models import FoundReport, LabelToken

MESSAGE_LIMIT = 2000
CONTACT_LIMIT = 200
MESSAGES_PER_HOUR = 10  # per address, so the public form cannot flood the desk


class TooManyMessages(DomainError):
    message = N_("Too many messages from this connection. Please call the number above instead.")


def contact(config: dict) -> dict:
    """What a finder is told: the company and its hotline, nothing about the item."""
    return {"company": config.get("COMPANY_NAME", ""), "hotline": config.get("FOUND_HOTLINE", "")}


def record_scan(make_session: sessionmaker, now: datetime, label: LabelToken, source: str) -> None:
    """Record the scan in its own short transaction, so the desk sees it even if the finder leaves no message."""
    with make_session() as s:
        report = FoundReport(item_id=label.item_id, at=now, source=source)
        s.add(report)
        s.flush()
        audit.record(s, now, "found_scan", item=s.get(LabelToken, label.id).item, source=source,
                     report=report.id, label_replaced=label.replaced_at is not None)
        s.commit()


def leave_message(session: Session, now: datetime, label: LabelToken, message: str, contact_text: str,
                  source: str) -> FoundReport:
    message = (message or "").strip()
    contact_text = (contact_text or "").strip()
    if not message:
        raise InvalidInput(N_("Please write a short message."))
    if len(message) > MESSAGE_LIMIT:
        raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."), field=N_("Message"),
                           limit=MESSAGE_LIMIT)
    if len(contact_text) > CONTACT_LIMIT:
        raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."), field=N_("Contact"),
                           limit=CONTACT_LIMIT)
    recent = session.scalar(select(func.count(FoundReport.id)).where(
        FoundReport.source == source, FoundReport.message.is_not(None), FoundReport.at > now - timedelta(hours=1)))
    if (recent or 0) >= MESSAGES_PER_HOUR:
        raise TooManyMessages()
    report = FoundReport(item_id=label.item_id, at=now, message=message, contact=contact_text or None, source=source)
    session.add(report)
    session.flush()
    audit.record(session, now, "found_message", item=label.item, source=source, report=report.id)
    return report


def open_reports(session: Session, limit: int = 50) -> list[FoundReport]:
    """Found-item scans and messages the desk has not handled yet, newest first."""
    from sqlalchemy.orm import joinedload

    return list(session.scalars(select(FoundReport).options(joinedload(FoundReport.item))
                                .where(FoundReport.handled_at.is_(None))
                                .order_by(FoundReport.at.desc()).limit(limit)))


def handle(session: Session, now: datetime, report: FoundReport, actor, source: str | None = None) -> None:
    report.handled_at, report.handled_by_id = now, actor.id
    session.flush()
    audit.record(session, now, "found_handled", actor=actor, item=report.item, source=source, report=report.id)
