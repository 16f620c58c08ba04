"""The life of an overdue flag: raised by the sweep, worked by the desk (acknowledge, resolve, or mark lost,
which opens an incident), and closed when its check-out ends."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Integer, bindparam, func, literal, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, joinedload

from .. import audit, text
from ..custody import operations as custody
from ..custody.policy import Policy
from ..db import finds, probe
from ..errors import N_, InvalidInput
from ..models import Checkout, Flag, FlagStatus, Incident, Sweep, User, UTCDateTime
from . import incidents
from .common import clean_note, desk_only

OPEN = (FlagStatus.open, FlagStatus.acknowledged)
BOARD = (*OPEN, FlagStatus.lost)  # what the board shows while the item is still out


CHUNK = 1000  # ids per IN (...) list


def raise_flags(session: Session, now: datetime, sweep: Sweep | None, where, day: date | None = None) -> list[int]:
    """Flag every open check-out matching `where` that has no flag yet, in one INSERT ... SELECT; another sweep
    racing this one is settled by the unique check-out id (ON CONFLICT DO NOTHING), so each is flagged once.
    The events follow in one chained insert. Returns the new flags' ids in due order; `load` makes objects.
    Without a `sweep` (a curfew's flags, raised before the day end), `day` is the business date they are of."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql if dialect == "postgresql" else sqlite).insert
    sweep_id = literal(sweep.id if sweep is not None else None, Integer())
    candidates = select(Checkout.id, Checkout.item_id, sweep_id, literal(now, UTCDateTime()),
                        literal(FlagStatus.open.value)).where(*where)
    stmt = (insert(Flag).from_select(["checkout_id", "item_id", "sweep_id", "created_at", "status"], candidates)
            .on_conflict_do_nothing(index_elements=["checkout_id"]).returning(Flag.id))
    ids = list(session.scalars(stmt))
    rows: list[tuple] = []  # (flag id, check-out id, item id, holder id, due); plain tuples read fastest
    for start in range(0, len(ids), CHUNK):
        rows += map(tuple, session.execute(
            select(Flag.id, Flag.checkout_id, Flag.item_id, Checkout.holder_id, Checkout.due_at)
            .join(Checkout, Checkout.id == Flag.checkout_id).where(Flag.id.in_(ids[start:start + CHUNK]))))
    rows.sort(key=lambda r: (r[4], r[1]))
    day = (day or sweep.business_date).isoformat()
    audit.record_rows(session, now, "flagged", actor=None, source="sweep", rows=[
        {"item_id": item_id, "checkout_id": checkout_id, "subject_user_id": holder_id,
         "data": {"due_at": due.isoformat(), "business_date": day}}
        for _, checkout_id, item_id, holder_id, due in rows])
    return [r[0] for r in rows]


def load(session: Session, ids: list[int]) -> list[Flag]:
    """The flags with their check-out, item and holder (for the digests), in the order of `ids`."""
    found: dict[int, Flag] = {}
    for start in range(0, len(ids), CHUNK):
        found.update((f.id, f) for f in session.scalars(
            select(Flag).options(joinedload(Flag.checkout).joinedload(Checkout.item),
                                 joinedload(Flag.checkout).joinedload(Checkout.holder))
            .where(Flag.id.in_(ids[start:start + CHUNK]))))
    return [found[i] for i in ids]


# Built once: every return runs it, under SQLite's write lock.
_OPEN_OF_CHECKOUT = select(Flag).where(Flag.checkout_id == bindparam("checkout_id"), Flag.status.in_(OPEN))
_ANY_OPEN_OF_CHECKOUT = probe(_OPEN_OF_CHECKOUT)


@custody.checkout_ended.connect
def close_for_checkout(session: Session, *, now: datetime, checkout: Checkout, actor: User | None,
                       how: str) -> None:
    """A check-out that ended (returned or handed over) takes its open flag with it."""
    if not finds(session, _ANY_OPEN_OF_CHECKOUT, {"checkout_id": checkout.id}):  # nearly every return
        return
    for flag in session.scalars(_OPEN_OF_CHECKOUT, {"checkout_id": checkout.id}):
        flag.status, flag.resolution = FlagStatus.resolved, how
        flag.closed_at, flag.closed_by_id = now, actor.id if actor else None


@custody.handed_over.connect
def follow_hand_over(session: Session, *, now: datetime, old: Checkout, new: Checkout, actor: User) -> None:
    """A colleague taking an overdue item over does not close the desk's case: it follows the item."""
    for flag in session.scalars(select(Flag).where(Flag.checkout_id == old.id, Flag.status.in_(BOARD))):
        flag.checkout_id = new.id
        flag.checkout = new


def _open(flag: Flag) -> None:
    if flag.status not in OPEN:
        raise InvalidInput(N_("This flag is already closed."))


def acknowledge(session: Session, now: datetime, flag: Flag, actor: User, note: str,
                new_due: datetime | None = None, source: str | None = None) -> Flag:
    """Record that the desk is on it (for example 'called: bringing it back tomorrow 9:00'), maybe with a new due."""
    desk_only(actor)
    _open(flag)
    note = clean_note(note, required=True)
    if new_due is not None:
        if flag.checkout is None:  # a stock-take's missing item: nobody holds it, nothing is due
            raise InvalidInput(N_("This flag has no due time: the item is missing from a stock-take."))
        if new_due <= now:
            raise InvalidInput(N_("The due time must be in the future."))
        flag.checkout.due_at = new_due
    flag.status, flag.note = FlagStatus.acknowledged, note
    flag.acknowledged_at, flag.acknowledged_by_id = now, actor.id
    session.flush()
    audit.record(session, now, "flag_acknowledged", actor=actor, item=flag.item, checkout=flag.checkout,
                 source=source, note=note, new_due=new_due.isoformat() if new_due else None)
    return flag


def resolve(session: Session, now: datetime, flag: Flag, actor: User, how: str, confirmed_by: str = "",
            note: str = "", source: str | None = None, policy: Policy | None = None) -> Flag:
    """Close the flag: the item came back (returned now) or someone confirmed it is safe.

    An item coming back that needs its erasure confirmed waits for the desk's return inspection. A stock-take's
    missing item (no check-out) is resolved as found, or confirmed safe."""
    desk_only(actor)
    _open(flag)
    note = clean_note(note)
    if flag.checkout is None and how in ("returned", "found"):
        how = "found"
        flag.status, flag.resolution = FlagStatus.resolved, "found"
    elif how == "returned":
        if flag.checkout.returned_at is None:
            custody.return_item(session, now, item=flag.item, actor=actor, source=source, erasure="pending",
                                policy=policy)
        flag.status, flag.resolution = FlagStatus.resolved, "returned"
    elif how == "confirmed_safe":
        confirmed_by = text.clean(confirmed_by, N_("Confirmed by"), 200)
        if not confirmed_by:
            raise InvalidInput(N_("Say who confirmed that the item is safe."))
        flag.status, flag.resolution, flag.confirmed_by = FlagStatus.resolved, "confirmed_safe", confirmed_by
    else:
        raise InvalidInput(N_("Choose how the flag was resolved."))
    flag.closed_at, flag.closed_by_id = now, actor.id
    if note:
        flag.note = note
    session.flush()
    audit.record(session, now, "flag_resolved", actor=actor, item=flag.item, checkout=flag.checkout, source=source,
                 how=how, confirmed_by=confirmed_by, note=note)
    return flag


def mark_lost(session: Session, now: datetime, flag: Flag, actor: User, note: str,
              source: str | None = None) -> Incident:
    """The item is lost: close the flag as lost and open an incident with what the item held."""
    desk_only(actor)
    _open(flag)
    note = clean_note(note)
    co, item = flag.checkout, flag.item
    flag.status, flag.resolution, flag.closed_at, flag.closed_by_id = FlagStatus.lost, "lost", now, actor.id
    incident = incidents.open_for_lost(session, now, flag, actor, note)
    audit.record(session, now, "item_lost", actor=actor, item=item, checkout=co, source=source, incident=incident.id)
    return incident


def missing_flags(session: Session, limit: int) -> tuple[list[Flag], int]:
    """Open flags of items a stock-take found missing (they have no check-out, so the board's rows never show
    them): the oldest `limit`, and how many there are."""
    where = (Flag.checkout_id.is_(None), Flag.status.in_(OPEN))
    rows = list(session.scalars(select(Flag).options(joinedload(Flag.item)).where(*where)
                                .order_by(Flag.created_at, Flag.id).limit(limit)))
    return rows, session.scalar(select(func.count(Flag.id)).where(*where)) or 0


def board_flags_by_checkout(session: Session, checkout_ids: list[int]) -> dict[int, Flag]:
    """Flags the board shows (open, acknowledged, or lost while the item is still out), in one query."""
    if not checkout_ids:
        return {}
    return {f.checkout_id: f for f in session.scalars(
        select(Flag).where(Flag.checkout_id.in_(checkout_ids), Flag.status.in_(BOARD)))}
