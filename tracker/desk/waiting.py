"""What waits for the desk beside the overdue list: finders' reports and take-outs to approve, bounded lists
with their full counts, read in a fixed number of statements however many there are."""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from .. import queries
from ..models import CheckoutRequest, Flag, FoundReport
from . import flags, found_reports
from .found_reports import ScannedLabel

LIST_LIMIT = found_reports.LIST_LIMIT


@dataclass
class Waiting:
    messages: list[FoundReport]
    scans: list[ScannedLabel]
    requests: list[CheckoutRequest]
    message_count: int
    label_count: int
    request_count: int
    missing: list[Flag] = field(default_factory=list)  # items a stock-take found missing
    missing_count: int = 0

    @property
    def found_count(self) -> int:
        return self.message_count + self.label_count

    @property
    def found_listed(self) -> int:
        return len(self.messages) + len(self.scans)


def waiting(session: Session) -> Waiting:
    messages, labels = found_reports.open_counts(session)
    missing, missing_count = flags.missing_flags(session, LIST_LIMIT)
    return Waiting(found_reports.open_messages(session, LIST_LIMIT), found_reports.open_scans(session, LIST_LIMIT),
                   queries.pending_requests(session, LIST_LIMIT), message_count=messages, label_count=labels,
                   request_count=queries.pending_count(session), missing=missing, missing_count=missing_count)
