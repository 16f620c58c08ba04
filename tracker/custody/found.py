"""The finder's side of a label scan by someone not signed in: the scan and their message, kept for the desk."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from .. import audit, text
from ..errors import N_, DomainError, InvalidInput
from ..models import FoundReport, LabelToken

MESSAGE_LIMIT = 2000
CONTACT_LIMIT = 200
MESSAGES_PER_HOUR = 10  # per address, so the public form cannot flood the desk
SCAN_WINDOW = timedelta(hours=1)  # scans of one label within it are one entry, counted


class TooManyMessages(DomainError):
    message = N_("Too many messages from this connection. Please call the number above instead.")


def contact(config: dict) -> dict:
    """What a finder is told: the company and its hotline, nothing about the item."""
    return {"company": config.get("COMPANY_NAME", ""), "hotline": config.get("FOUND_HOTLINE", "")}


def record_scan(session: Session, now: datetime, label: LabelToken, source: str) -> None:
    """Count the scan, so the desk sees it even if the finder leaves no message (a GET: the caller writes it in
    a short transaction of its own). Scans of one label within SCAN_WINDOW make one entry and one audit line,
    so reloading the page, or a script, cannot flood the desk or the trail."""
    counted = session.execute(
        update(FoundReport)
        .where(FoundReport.item_id == label.item_id, FoundReport.message.is_(None),
               FoundReport.handled_at.is_(None), FoundReport.last_at >= now - SCAN_WINDOW)
        .values(scans=FoundReport.scans + 1, last_at=now).execution_options(synchronize_session=False))
    if counted.rowcount:
        return
    report = FoundReport(item_id=label.item_id, at=now, last_at=now, scans=1, source=source)
    session.add(report)
    session.flush()
    audit.record(session, now, "found_scan", item=session.get(LabelToken, label.id).item, source=source,
                 report=report.id, label_replaced=label.replaced_at is not None)


def leave_message(session: Session, now: datetime, label: LabelToken, message: str, contact_text: str,
                  source: str) -> FoundReport:
    message = text.clean(message, N_("Message"), MESSAGE_LIMIT)
    contact_text = text.clean(contact_text, N_("Contact"), CONTACT_LIMIT)
    if not message:
        raise InvalidInput(N_("Please write a short message."))
    recent = session.scalar(select(func.count(FoundReport.id)).where(
        FoundReport.source == source, FoundReport.message.is_not(None), FoundReport.at > now - timedelta(hours=1)))
    if (recent or 0) >= MESSAGES_PER_HOUR:
        raise TooManyMessages()
    report = FoundReport(item_id=label.item_id, at=now, message=message, contact=contact_text or None, source=source)
    session.add(report)
    session.flush()
    audit.record(session, now, "found_message", item=label.item, source=source, report=report.id)
    return report
