"""The take-out ledger (持ち出し管理台帳) of a month and the media register (媒体管理台帳), as tables that the
writers turn into CSV, .xlsx and PDF alike, each with the audit trail's hashes at both ends of its range.

Built inside the request, so headers and values are in the reader's language (dates through `when`).
Fixed text avoids characters that Shift_JIS (cp932) lacks, so a copy saved from Excel as Shift_JIS keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select
from sqlalchemy.orm import Session, aliased, selectinload

from ..errors import N_
from ..i18n import (
    CLASS_LABELS,
    DISPOSAL_METHOD_LABELS,
    ERASURE_LABELS,
    ERASURE_METHOD_LABELS,
    KIND_LABELS,
    gettext,
    when,
)
from ..i18n import label as label_of
from ..models import (
    ApprovalStep,
    AuditHead,
    Checkout,
    CheckoutRequest,
    Erasure,
    Event,
    Flag,
    FlagStatus,
    Incident,
    Item,
    RequestStatus,
    User,
)
from ..queries import in_department
from .exports import STATE_LABELS, kept_at

REGISTER_STATES = {"disposed": N_("Disposed of"), "retired": N_("Retired"),
                   "inspection": N_("Waiting for return inspection")}


@dataclass
class ChainEnds:
    """The audit trail's events at both ends of a range (seq and hash), or its head when nothing happened then."""

    first_seq: int
    first_hash: str
    last_seq: int
    last_hash: str
    head: bool  # no event in the range: both ends are the head at the time of the export

    def lines(self, period: bool = True) -> list[str]:
        if not period:
            return [gettext("Audit trail at export: last event #%(seq)d %(hash)s", seq=self.last_seq,
                            hash=self.last_hash),
                    gettext("Check it with: flask --app app audit verify")]
        if self.head:
            return [gettext("Audit trail: no event in this period; the trail's last event at export: #%(seq)d %(hash)s",
                            seq=self.last_seq, hash=self.last_hash),
                    gettext("Check it with: flask --app app audit verify")]
        return [gettext("Audit trail, first event of the period: #%(seq)d %(hash)s", seq=self.first_seq,
                        hash=self.first_hash),
                gettext("Audit trail, last event of the period: #%(seq)d %(hash)s", seq=self.last_seq,
                        hash=self.last_hash)]

    def data(self) -> dict:
        return {"first_seq": self.first_seq, "first_hash": self.first_hash, "last_seq": self.last_seq,
                "last_hash": self.last_hash, "chain_head": self.head}


def chain_ends(session: Session, start: datetime | None = None, end: datetime | None = None) -> ChainEnds:
    """The first and last event written in [start, end), or the head of the chain when there is none (or no
    range is given: the media register is as of now)."""
    if start is not None and end is not None:
        in_range = select(Event.seq, Event.hash).where(Event.at >= start, Event.at < end)
        first = session.execute(in_range.order_by(Event.seq).limit(1)).first()
        last = session.execute(in_range.order_by(Event.seq.desc()).limit(1)).first()
        if first is not None and last is not None:
            return ChainEnds(first.seq, first.hash, last.seq, last.hash, head=False)
    head = session.execute(select(AuditHead.seq, AuditHead.hash).where(AuditHead.id == 1)).one()
    return ChainEnds(head.seq, head.hash, head.seq, head.hash, head=True)


def _encryption(item: Item) -> str:
    if not item.encrypted:
        return gettext("not encrypted")
    return gettext("encrypted") + (f" ({item.encryption_method})" if item.encryption_method else "")


def _erasure(co: Checkout) -> list[str]:
    """The erasure check's date, what was done (the method), and who: empty where none was asked for."""
    if co.erasure is None:
        return ["", "", ""]
    if co.erasure == Erasure.pending:
        return ["", label_of(ERASURE_LABELS, co.erasure), ""]
    if co.erasure == Erasure.nothing_written:
        how = label_of(ERASURE_LABELS, co.erasure)
    else:
        how = label_of(ERASURE_METHOD_LABELS, co.erasure_method or "")
        if co.erasure == Erasure.inspected:
            how = f"{how} ({label_of(ERASURE_LABELS, co.erasure)})"
    return [when(co.erasure_at), how, co.erasure_by.name if co.erasure_by else ""]


def ledger_header(with_names: bool) -> list[str]:
    return [gettext("Take-out number"), gettext("Asset tag"), gettext("Kind"),
            *([gettext("Item name")] if with_names else []), gettext("Personal data class"),
            gettext("Number of people"), gettext("Encryption"), gettext("Holder's name"), gettext("Department"), gettext("Site"),
            gettext("Storage place"), gettext("Purpose"),
            gettext("Destination"), gettext("Approved by"), gettext("Approved at"), gettext("Witness"),
            gettext("Taken out at"),
            gettext("Due back"), gettext("Returned at"), gettext("Return checked by"), gettext("Hand-over"),
            gettext("Erasure checked at"), gettext("Erasure method"), gettext("Erasure checked by"),
            gettext("Status"), gettext("Incident")]


def approval_chains(session: Session, request_ids: list[int]) -> dict[int, str]:
    """Who approved each request, every step in order ("Mori → Desk One"), in one query: a take-out approved by the
    manager and then the desk names both, not only the last."""
    if not request_ids:
        return {}
    decider = aliased(User)
    chains: dict[int, list[str]] = {}
    for request_id, name in session.execute(
            select(ApprovalStep.request_id, decider.name).join(decider, decider.id == ApprovalStep.decided_by_id)
            .where(ApprovalStep.request_id.in_(request_ids), ApprovalStep.decision == "approved")
            .order_by(ApprovalStep.request_id, ApprovalStep.position)):
        chains.setdefault(request_id, []).append(name)
    return {rid: " → ".join(names) for rid, names in chains.items()}


def ledger_rows(session: Session, now: datetime, start: datetime, end: datetime, department: str | None,
                with_names: bool) -> list[list]:
    """One line per take-out that began in [start, end), oldest first, for one department (the item's) or all.

    A hand-over ends one take-out and begins the next: each says to or from whom, and the one that ended has no
    return check (nobody received it back)."""
    successor, heir = aliased(Checkout), aliased(User)
    predecessor, giver = aliased(Checkout), aliased(User)
    approver = aliased(User)
    stmt = (select(Checkout, Flag.status, Incident.id, CheckoutRequest.decided_at, approver.name, heir.name,
                   giver.name, CheckoutRequest.id)
            .join(Item, Item.id == Checkout.item_id)
            .outerjoin(successor, and_(successor.item_id == Checkout.item_id, successor.out_at == Checkout.returned_at,
                                       successor.holder_id != Checkout.holder_id))
            .outerjoin(heir, heir.id == successor.holder_id)
            .outerjoin(predecessor, and_(predecessor.item_id == Checkout.item_id,
                                         predecessor.returned_at == Checkout.out_at,
                                         predecessor.holder_id != Checkout.holder_id))
            .outerjoin(giver, giver.id == predecessor.holder_id)
            .outerjoin(Flag, Flag.checkout_id == Checkout.id)
            .outerjoin(Incident, Incident.checkout_id == Checkout.id)
            .outerjoin(CheckoutRequest, and_(CheckoutRequest.checkout_id == Checkout.id,
                                             CheckoutRequest.status == RequestStatus.approved))
            .outerjoin(approver, approver.id == CheckoutRequest.decided_by_id)
            .options(selectinload(Checkout.item).selectinload(Item.dept), selectinload(Checkout.holder), selectinload(Checkout.returned_by),
                     selectinload(Checkout.item).selectinload(Item.site),
                     selectinload(Checkout.item).selectinload(Item.home_place),
                     selectinload(Checkout.erasure_by), selectinload(Checkout.witness))
            .where(Checkout.out_at >= start, Checkout.out_at < end)
            .order_by(Checkout.out_at, Checkout.id))
    if department:
        stmt = stmt.where(in_department(department))
    found = session.execute(stmt).all()
    chains = approval_chains(session, [r[-1] for r in found if r[-1] is not None])
    rows = []
    for co, flag_status, incident_id, approved_at, approved_by, handed_to, taken_from, request_id in found:
        approved_by = chains.get(request_id) or approved_by
        item = co.item
        if flag_status == FlagStatus.lost:
            state = "lost"
        elif handed_to is not None:
            state = "handed_over"
        elif co.returned_at is not None:
            state = "returned"
        else:
            state = "overdue" if co.due_at <= now else "out"
        hand_over = [gettext("to %(name)s", name=handed_to) if handed_to else "",
                     gettext("from %(name)s", name=taken_from) if taken_from else ""]
        rows.append([
            co.id, item.asset_tag, label_of(KIND_LABELS, item.kind), *([item.name] if with_names else []),
            label_of(CLASS_LABELS, item.data_class), item.people_count if item.people_count is not None else "",
            _encryption(item), co.holder.name, item.department or "", *kept_at(item), co.purpose, co.destination,
            approved_by or "", when(approved_at), co.witness.name if co.witness else "", when(co.out_at), when(co.due_at), when(co.returned_at),
            co.returned_by.name if co.returned_by and handed_to is None else "",
            " ".join(h for h in hand_over if h), *_erasure(co), label_of(STATE_LABELS, state),
            f"#{incident_id}" if incident_id else "",
        ])
    return rows


def register_header() -> list[str]:
    return [gettext("Asset tag"), gettext("Kind"), gettext("Item name"), gettext("Serial number"),
            gettext("Department"), gettext("Personal data class"), gettext("Number of people"), gettext("Encryption"),
            gettext("Site"), gettext("Storage place"), gettext("Registered at"), gettext("Registered by"), gettext("Status"),
            gettext("Held by"), gettext("Disposed at"), gettext("Disposal method"), gettext("Disposed by"),
            gettext("Disposal contractor"), gettext("Certificate number")]


def register_rows(session: Session, now: datetime, department: str | None) -> list[list]:
    """Every item ever registered, in service or not, with its life: registered, kept where, now where, disposed."""
    lost = select(Flag.id).where(Flag.checkout_id == Checkout.id, Flag.status == FlagStatus.lost).exists()
    open_by_item = {co.item_id: (co, is_lost) for co, is_lost in session.execute(
        select(Checkout, lost).options(selectinload(Checkout.holder)).where(Checkout.returned_at.is_(None)))}
    waiting = set(session.scalars(select(Checkout.item_id).where(Checkout.erasure == Erasure.pending)))
    stmt = (select(Item).options(selectinload(Item.registered_by), selectinload(Item.disposed_by), selectinload(Item.dept),
                                 selectinload(Item.site), selectinload(Item.home_place))
            .order_by(Item.asset_tag))
    if department:
        stmt = stmt.where(in_department(department))
    rows = []
    for item in session.scalars(stmt):
        co, is_lost = open_by_item.get(item.id, (None, False))
        if item.disposed:
            state = label_of(REGISTER_STATES, "disposed")
        elif item.retired:
            state = label_of(REGISTER_STATES, "retired")
        elif co is not None:
            state = label_of(STATE_LABELS, "lost" if is_lost else "overdue" if co.due_at <= now else "out")
        elif item.id in waiting:
            state = label_of(REGISTER_STATES, "inspection")
        else:
            state = label_of(STATE_LABELS, "in")
        rows.append([
            item.asset_tag, label_of(KIND_LABELS, item.kind), item.name, item.serial or "", item.department or "",
            label_of(CLASS_LABELS, item.data_class), item.people_count if item.people_count is not None else "",
            _encryption(item), *kept_at(item), when(item.created_at),
            item.registered_by.name if item.registered_by else "", state, co.holder.name if co else "",
            when(item.disposed_at), label_of(DISPOSAL_METHOD_LABELS, item.disposal_method or "") if item.disposed else "",
            item.disposed_by.name if item.disposed_by else "", item.disposal_contractor or "",
            item.disposal_certificate or "",
        ])
    return rows
