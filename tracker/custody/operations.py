"""The rules of custody: check out, return and hand over, shared by web, API, CLI and scheduler.

Every function takes a session and an explicit `now`, only flushes (the caller commits once),
writes its audit events through `audit.record`, and raises `errors.DomainError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from blinker import Namespace
from sqlalchemy import and_, bindparam, exists, inspect, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased, make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

from .. import audit, queries, text
from ..db import finds, probe, written_in
from ..errors import (
    N_,
    AlreadyOut,
    ApprovalRequired,
    AwaitingInspection,
    ChangedHands,
    Disposed,
    DomainError,
    ErasureRequired,
    HandlingAckRequired,
    InBagOut,
    Incomplete,
    InvalidInput,
    NotOut,
    NotPermitted,
    ReasonRequired,
    Retired,
    WitnessRequired,
)
from ..models import Checkout, CheckoutRequest, Erasure, Item, Kind, RequestStatus, TakeoutRule, User
from . import rules
from .policy import Policy

TEXT_LIMIT = 200

_signals = Namespace()
# Sent inside the change's transaction; the desk acts on them (custody does not know about flags).
# (session, now=, checkout=, actor=, how=): a check-out ended with the item back; its overdue flag closes.
checkout_ended = _signals.signal("checkout-ended")
# (session, now=, old=, new=, actor=): custody passed to someone else; an overdue flag stays open on the new one.
handed_over = _signals.signal("handed-over")


@dataclass
class ReturnResult:
    checkout: Checkout
    returned: list[Item] = field(default_factory=list)
    missing: list[Item] = field(default_factory=list)


_OPEN_CHECKOUT = select(Checkout).where(Checkout.item_id == bindparam("item_id"), Checkout.returned_at.is_(None))
_AWAITING_INSPECTION = (select(Checkout).where(Checkout.item_id == bindparam("item_id"),
                                               Checkout.erasure == Erasure.pending)
                        .order_by(Checkout.id.desc()).limit(1))


def open_checkout(session: Session, item: Item) -> Checkout | None:
    return session.scalar(_OPEN_CHECKOUT, {"item_id": item.id})


def on_page(checkouts: list[Checkout]) -> tuple[Checkout | None, Checkout | None]:
    """Of the check-outs an item's page shows (`Item.on_page_checkouts`): the open one, and the return awaiting
    the desk's inspection."""
    return (next((c for c in checkouts if c.returned_at is None), None),
            next((c for c in checkouts if c.erasure == Erasure.pending), None))


# Built once, like the reads above: every take-out and return runs them under SQLite's write lock.
_LOCK_ITEM = (select(Item).where(Item.id == bindparam("item_id")).with_for_update()
              .execution_options(populate_existing=True))
_PENDING_REQUEST = select(CheckoutRequest).where(CheckoutRequest.item_id == bindparam("item_id"),
                                                 written_in(CheckoutRequest.status, RequestStatus.pending))
_CHILDREN = (select(Checkout).where(Checkout.parent_id == bindparam("parent_id"), Checkout.returned_at.is_(None))
             .order_by(Checkout.id))
_ANY_PENDING_REQUEST, _ANY_CHILD = probe(_PENDING_REQUEST), probe(_CHILDREN)
# What a take-out decides on after the lock, in one read: whether someone waits for approval to take the item
# (loaded only when so), and its open check-out and return awaiting inspection (`Item.on_page_checkouts`).
_TAKE_OUT_STATE = (select(Item.id, _ANY_PENDING_REQUEST.exists().label("pending"), Checkout)
                   .outerjoin(Checkout, and_(Checkout.item_id == Item.id,
                                             or_(Checkout.returned_at.is_(None), Checkout.erasure == Erasure.pending)))
                   .where(Item.id == bindparam("item_id")).order_by(Checkout.id.desc()))
_CHILD = aliased(Checkout)
# A return's check-out, and whether anything (a bag's contents) went out under it and is still out.
_OPEN_AND_ANY_CHILD = select(Checkout, exists().where(_CHILD.parent_id == Checkout.id,
                                                      _CHILD.returned_at.is_(None)).label("children")
                             ).where(Checkout.item_id == bindparam("item_id"), Checkout.returned_at.is_(None))


_CHECKOUTS = Checkout.__table__
# The same statement in each database's words: nothing is inserted when the item already has an open check-out.
_INSERT_CHECKOUT = {
    name: dialect.insert(_CHECKOUTS).on_conflict_do_nothing(
        index_elements=[_CHECKOUTS.c.item_id], index_where=_CHECKOUTS.c.returned_at.is_(None),
    ).returning(_CHECKOUTS.c.id)
    for name, dialect in (("sqlite", sqlite), ("postgresql", postgresql))
}
# What a new check-out's columns hold unless set: the model's defaults (the rest are None).
_DEFAULTS = {c.key: c.default.arg for c in _CHECKOUTS.columns if c.default is not None and c.default.is_scalar}


# The item (locked; on PostgreSQL its row only, not the rule's) with its saved take-out rule, if any.
_LOCK_BY_TAG = (select(Item, TakeoutRule)
                .outerjoin(TakeoutRule, and_(TakeoutRule.kind == Item.kind, TakeoutRule.data_class == Item.data_class))
                .where(Item.asset_tag.in_(bindparam("tags", expanding=True))).with_for_update(of=Item)
                .execution_options(populate_existing=True))
# session.info: (transaction, {item id: (item, its saved rule or None)}) read locked by `locked_by_tag`
_LOCKED = "tracker.custody.locked"


def locked_by_tag(session: Session, tag: str) -> Item | None:
    """The item an asset tag names (as `queries.item_by_tag` reads tags), read and locked in the caller's write
    transaction with its saved take-out rule: a take-out or return from the item's page starts here, and the rules
    below read neither again. None when no item has the tag."""
    candidates = queries.tag_candidates(tag)
    found = {i.asset_tag: (i, r) for i, r in session.execute(_LOCK_BY_TAG, {"tags": candidates})} if candidates else {}
    item, rule = next((found[c] for c in candidates if c in found), (None, None))
    if item is not None:
        txn = session.get_transaction()
        held = session.info.get(_LOCKED)
        if held is None or held[0] is not txn:
            held = session.info[_LOCKED] = (txn, {})
        held[1][item.id] = (item, rule)
    return item


def _held(session: Session, item: Item, item_id: int) -> tuple[Item, TakeoutRule | None] | None:
    """The item and its saved rule as `locked_by_tag` read them in this transaction, or None."""
    held = session.info.get(_LOCKED)
    if held is None or held[0] is not session.get_transaction():
        return None
    found = held[1].get(item_id)
    return found if found is not None and found[0] is item else None


def _saved_rule(session: Session, item: Item) -> TakeoutRule | None | object:
    """The item's saved rule as `locked_by_tag` read it in this transaction, else `rules.UNREAD`."""
    found = _held(session, item, item.id)
    return found[1] if found is not None else rules.UNREAD


def _lock(session: Session, item: Item) -> Item:
    """Lock the item's row (PostgreSQL) so two phones on one item queue; SQLite already serialises.
    The row is read once, locked: its id comes from the identity map (reading `item.id` of an object expired by
    the request's read snapshot ending would load it first, unlocked). An item `locked_by_tag` read in this
    transaction is locked and current already."""
    ident = inspect(item).identity
    item_id = ident[0] if ident else item.id
    if _held(session, item, item_id) is not None:
        return item
    return session.scalars(_LOCK_ITEM, {"item_id": item_id}).one()


def _clean(value: str | None, label: str, about: str | None = None) -> str:
    return text.clean(value, label, TEXT_LIMIT, about=about)


def _already_out(co: Checkout) -> AlreadyOut:
    return AlreadyOut(co.holder.name, co.out_at, co.item.asset_tag, holder_id=co.holder_id)


def _refuse_if_out(session: Session, item: Item, co: Checkout | None | bool = False) -> None:
    """Refuse when `item` is out (alone, or inside a bag that is out); `co`: its open check-out, if already read."""
    if co is False:
        co = open_checkout(session, item)
    if co is None:
        return
    if co.parent_id is not None:
        parent = session.get(Checkout, co.parent_id)
        if parent is not None and parent.returned_at is None:
            raise InBagOut(asset_tag=item.asset_tag, bag=parent.item.asset_tag)
    raise _already_out(co)


def _insert(session: Session, co: Checkout) -> None:
    """Insert a check-out; the partial unique index is the last word on 'already out'.

    The row goes in as one INSERT ... ON CONFLICT DO NOTHING, so a take-out that loses a race on that index
    learns it from the statement itself, without a savepoint around it (two more statements). `co` then becomes
    the session's object for the row, as if loaded: the unit of work's flush of one new row costs twice the
    statement, and a take-out runs it under SQLite's write lock."""
    state = inspect(co)
    values = {c.key: state.dict.get(c.key, _DEFAULTS.get(c.key)) for c in _CHECKOUTS.columns if c.key != "id"}
    co.id = session.connection().execute(_INSERT_CHECKOUT[session.get_bind().dialect.name], values).scalar()
    if co.id is None:
        existing = open_checkout(session, co.item)
        if existing is None:  # not a race the index decided: nothing to tell the person but that it failed
            raise RuntimeError(f"item {co.item_id}: a check-out was refused by the database for no known reason")
        raise _already_out(existing)
    for key, value in values.items():
        if key not in state.dict:
            set_committed_value(co, key, value)
    make_transient_to_detached(co)
    session.add(co)


def _contents(item: Item) -> list[Item]:
    """What is in a bag (only a bag holds anything: the register sees to it), without a read for anything else."""
    if item.kind != Kind.bag:
        return []
    return [c for c in item.contents if not c.retired]


# How data is erased, at return or at the desk's inspection (消去確認); the labels are in tracker.i18n.
ERASURE_METHODS = ("overwrite", "format", "delete", "key_destroyed", "nothing_found")


def awaiting_inspection(session: Session, item: Item) -> Checkout | None:
    """The returned check-out of `item` whose erasure the desk has still to inspect, if any."""
    return session.scalar(_AWAITING_INSPECTION, {"item_id": item.id})


def waiting_for_inspection(session: Session, limit: int = 200) -> list[Checkout]:
    """The returns whose erasure the desk has still to inspect, oldest first (each item waits until it is done)."""
    return list(session.scalars(select(Checkout).where(Checkout.erasure == Erasure.pending)
                                .order_by(Checkout.returned_at, Checkout.id).limit(limit)))


def _refuse_if_unusable(session: Session, item: Item, waiting: Checkout | None | bool = False) -> None:
    """A disposed item never goes out; one waiting for its return inspection waits until the desk has done it.
    `waiting`: the item's return awaiting inspection, if already read."""
    if item.disposed:
        raise Disposed(asset_tag=item.asset_tag)
    if (awaiting_inspection(session, item) if waiting is False else waiting) is not None:
        raise AwaitingInspection(asset_tag=item.asset_tag)
    for it in _contents(item):
        if awaiting_inspection(session, it) is not None:
            raise AwaitingInspection(asset_tag=it.asset_tag)


def check_out(
    session: Session,
    now: datetime,
    *,
    item: Item,
    holder: User,
    actor: User,
    due_at: datetime | None,
    purpose: str = "",
    destination: str = "",
    reason: str = "",
    policy: Policy | None = None,
    handling_ack: bool = False,
    approved: bool = False,
    witness: User | None = None,
    rule: rules.Rule | None = None,
    source: str | None = None,
) -> Checkout:
    """Give `item` (and, for a bag, everything in it) to `holder` until `due_at`.

    With a `policy`, the take-out rules of the item (and of what is in it) decide: an overnight check-out needs
    a reason; one past a rule's curfew or maximum duration is refused by name or waits for approval; approvers
    named by the rule approve first; the first check-out of the day needs `handling_ack` where the rule says so;
    and where the rule asks for a witness, `witness` is the second person who confirmed (their credentials were
    checked by the caller). A rule that caps the due time makes the check-out `strict_due`. `due_at` None is the
    default: today's day end, or the rules' earlier limit (it needs a `policy`).
    """
    if actor.id != holder.id and not actor.privileged:
        raise NotPermitted()
    if not holder.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=holder.name)
    purpose = _clean(purpose, N_("Purpose"), "purpose")
    destination = _clean(destination, N_("Destination"), "destination")
    reason = _clean(reason, N_("Reason"), "reason")
    if due_at is None and policy is None:
        raise ValueError("the default due time comes from the take-out rules: pass a policy")
    if due_at is not None and due_at <= now:
        raise InvalidInput(N_("The due time must be in the future."), about="due_at")
    item = _lock(session, item)
    strict = False
    if policy is not None:
        policy = policy.for_item(item)  # due times, "overnight" and curfews on the clock of the item's site
        found = rules.governing(session, item, policy, _contents(item), saved=_saved_rule(session, item))
        if rule is not None:  # an approved request goes out under the rule it was made under (its item's own)
            found = [rule, *found[1:]]
        due_at = due_at or rules.due_by(found, now, policy)
        long = policy.is_long(now, due_at)
        _refuse_if_incomplete(session, now, policy, item, long, reason, handling_ack, found)
        for rule in found:
            rules.refuse_if_broken(rule, now, due_at, policy)
        if not approved and not actor.privileged and any(
                rules.needs_approval(r, rules.goes_past(r, now, due_at, policy)) for r in found):
            raise ApprovalRequired()
        # Approved or not, the two-person rule is kept at the take-out itself (an approval is no witness).
        _refuse_without_witness(found, holder, witness)
        strict = rules.strict(found)
    rows = session.execute(_TAKE_OUT_STATE, {"item_id": item.id}).all()
    if not approved and rows[0].pending:
        waiting = session.scalar(_PENDING_REQUEST, {"item_id": item.id})
        # An approval in advance (for a later day) holds nothing back today.
        if waiting is not None and waiting.requester_id != holder.id and waiting.for_date is None:
            raise InvalidInput(N_("%(name)s is waiting for approval to take %(asset_tag)s out."),
                               name=waiting.requester.name, asset_tag=item.asset_tag)
    out, waiting = on_page([r.Checkout for r in rows if r.Checkout is not None])
    _refuse_if_unusable(session, item, waiting)
    if item.retired:
        raise Retired(asset_tag=item.asset_tag)
    _refuse_if_out(session, item, out)
    contents = _contents(item)
    for content in contents:
        _refuse_if_out(session, content)

    def new(it: Item, parent: Checkout | None) -> Checkout:
        return Checkout(
            item=it,
            item_id=it.id,
            holder=holder,
            holder_id=holder.id,
            parent_id=parent.id if parent else None,
            out_at=now,
            due_at=due_at,
            purpose=purpose,
            destination=destination,
            reason=reason or None,
            strict_due=strict,
            witness_id=witness.id if witness is not None else None,
        )

    co = new(item, None)
    _insert(session, co)
    for content in contents:
        child = new(content, co)
        _insert(session, child)
        audit.record(session, now, "checkout", actor=actor, item=content, checkout=child, subject=holder,
                     source=source, bag=item.asset_tag, due_at=due_at.isoformat())
    audit.record(session, now, "checkout", actor=actor, item=item, checkout=co, subject=holder, source=source,
                 due_at=due_at.isoformat(), purpose=purpose, destination=destination, reason=reason,
                 handling_rules_acknowledged=handling_ack, contents=[c.asset_tag for c in contents],
                 **({"strict_due": True} if strict else {}), **({"witness": witness.email} if witness else {}))
    return co


def _refuse_without_witness(found: list[rules.Rule], holder: User, witness: User | None) -> None:
    """The two-person rule: where a rule asks for a witness, another active person confirmed."""
    if witness is not None and witness.id == holder.id:
        raise InvalidInput(N_("The witness must be someone other than the person taking it out."), about="witness")
    if witness is not None and not witness.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=witness.name)
    if witness is None and any(r.witness for r in found):
        raise WitnessRequired()


def _refuse_if_incomplete(session: Session, now: datetime, policy: Policy, item: Item, long: bool, reason: str,
                          handling_ack: bool, found: list[rules.Rule] | None = None) -> None:
    """Refuse a take-out that lacks the reason a long one needs or the tick the handling rules ask for, naming
    every missing piece at once (the person then fixes both in one go). `found`: the rules of the item and its
    contents, in that order (read here when not given)."""
    missing: list[DomainError] = []
    if long and not (reason or "").strip():
        missing.append(ReasonRequired())
    items = [item, *_contents(item)]
    found = found if found is not None else rules.governing(session, item, policy, items[1:])
    if not handling_ack and any(rules.needs_handling_ack(session, now, it, r, policy)
                                for r, it in zip(found, items, strict=True)):
        missing.append(HandlingAckRequired())
    if len(missing) == 1:
        raise missing[0]
    if missing:
        raise Incomplete(missing)


def pending_request(session: Session, item: Item) -> CheckoutRequest | None:
    if not finds(session, _ANY_PENDING_REQUEST, {"item_id": item.id}):
        return None
    return session.scalar(_PENDING_REQUEST, {"item_id": item.id})


def _children(session: Session, co: Checkout) -> list[Checkout]:
    if not finds(session, _ANY_CHILD, {"parent_id": co.id}):
        return []
    return list(session.scalars(_CHILDREN, {"parent_id": co.id}))


def _open_for_action(session: Session, item: Item, co: Checkout | None | bool = False) -> Checkout:
    """The item's open check-out (`co`, if already read), refused when there is none or it is inside a bag that is
    out."""
    if co is False:
        co = open_checkout(session, item)
    if co is None:
        raise NotOut(asset_tag=item.asset_tag)
    if co.parent_id is not None:
        parent = session.get(Checkout, co.parent_id)
        if parent is not None and parent.returned_at is None:
            raise InBagOut(asset_tag=item.asset_tag, bag=parent.item.asset_tag)
    return co


def _erasure_statement(erasure: str | None, method: str | None) -> tuple[Erasure | None, str | None]:
    """The returner's statement as the rules store it, or InvalidInput: erased needs a method."""
    if not erasure:
        return None, None
    try:
        how = Erasure(erasure)
    except ValueError:
        raise ErasureRequired() from None
    if how == Erasure.inspected:
        raise ErasureRequired()
    if how == Erasure.erased:
        if method not in ERASURE_METHODS:
            raise InvalidInput(N_("Choose how the data was erased."), about="erasure")
        return how, method
    return how, None


def return_item(
    session: Session,
    now: datetime,
    *,
    item: Item,
    actor: User,
    present: set[int] | None = None,
    erasure: str | None = None,
    erasure_method: str | None = None,
    policy: Policy | None = None,
    source: str | None = None,
) -> ReturnResult:
    """Close the open check-out; for a bag, contents not confirmed `present` stay out as missing.

    `present` holds the ids of the bag's contents that were confirmed; None confirms them all. Where the item's
    take-out rule asks for erasure at return (a USB drive with personal data, by default), `erasure` says what
    became of the data on each such item coming back: `erased` (with `erasure_method`), `nothing_written`, or
    `pending` (left for the desk's return inspection, until which the item cannot go out again).
    """
    site = policy or Policy()
    how, method = _erasure_statement(erasure, erasure_method)
    item = _lock(session, item)
    row = session.execute(_OPEN_AND_ANY_CHILD, {"item_id": item.id}).first()
    co = _open_for_action(session, item, row.Checkout if row is not None else None)
    if actor.id != co.holder_id and not actor.privileged:
        raise NotPermitted()
    result = ReturnResult(checkout=co)
    children = list(session.scalars(_CHILDREN, {"parent_id": co.id})) if row.children else []
    back = [co, *(c for c in children if present is None or c.item_id in present)]
    if children:
        table = rules.table(session, site)  # one read, however many items a bag brings back
        needing = [c for c in back if rules.lookup(table, c.item).erasure_on_return]
    else:  # its own rule only, read with the item where the return began with `locked_by_tag`
        (own,) = rules.governing(session, item, site, [], _saved_rule(session, item))
        needing = [co] if own.erasure_on_return else []
    if needing and how is None:
        raise ErasureRequired()
    erased = {"erasure": how} | ({"erasure_at": now, "erasure_method": method, "erasure_by_id": actor.id}
                                  if how != Erasure.pending else {})

    def close(c: Checkout) -> None:
        _write(session, c, returned_at=now, returned_by_id=actor.id, **(erased if c in needing else {}))

    def erasure_data(c: Checkout) -> dict:
        return {"erasure": c.erasure.value, "erasure_method": c.erasure_method or ""} if c.erasure else {}

    for child in children:
        if present is None or child.item_id in present:
            close(child)
            checkout_ended.send(session, now=now, checkout=child, actor=actor, how="returned")
            result.returned.append(child.item)
            audit.record(session, now, "return", actor=actor, item=child.item, checkout=child,
                         subject=child.holder, source=source, bag=item.asset_tag, **erasure_data(child))
        else:
            result.missing.append(child.item)
            audit.record(session, now, "missing_on_return", actor=actor, item=child.item, checkout=child,
                         subject=child.holder, source=source, bag=item.asset_tag)
    close(co)
    checkout_ended.send(session, now=now, checkout=co, actor=actor, how="returned")
    session.flush()
    audit.record(session, now, "return", actor=actor, item=item, checkout=co, subject=co.holder, source=source,
                 returned=[i.asset_tag for i in result.returned], missing=[i.asset_tag for i in result.missing],
                 **erasure_data(co))
    return result


def _write(session: Session, co: Checkout, **values) -> None:
    """Set columns of a check-out with one UPDATE, and the loaded object with it. A return does this under SQLite's
    write lock, where the unit of work's flush of the one changed row costs three times the statement."""
    session.connection().execute(update(_CHECKOUTS).where(_CHECKOUTS.c.id == co.id).values(**values))
    for name, value in values.items():
        set_committed_value(co, name, value)


def inspect_erasure(session: Session, now: datetime, *, item: Item, actor: User, method: str,
                    source: str | None = None) -> Checkout:
    """The desk's return inspection: it checked the item (and erased what was on it); the item may go out again."""
    if not actor.privileged:
        raise NotPermitted()
    item = _lock(session, item)
    co = awaiting_inspection(session, item)
    if co is None:
        raise InvalidInput(N_("%(asset_tag)s is not waiting for a return inspection."), asset_tag=item.asset_tag)
    if method not in ERASURE_METHODS:
        raise InvalidInput(N_("Choose how the data was erased."), about="erasure")
    co.erasure, co.erasure_at, co.erasure_method, co.erasure_by_id = Erasure.inspected, now, method, actor.id
    session.flush()
    audit.record(session, now, "erasure_inspected", actor=actor, item=item, checkout=co, subject=co.holder,
                 source=source, erasure_method=method)
    return co


def held(session: Session, item: Item) -> tuple[Item, Checkout]:
    """The item, locked, and its open check-out: where a hand-over starts (refused when the item is not out, or is
    inside a bag that is out)."""
    item = _lock(session, item)
    return item, _open_for_action(session, item)


def hand_over(
    session: Session,
    now: datetime,
    *,
    item: Item,
    to: User,
    actor: User,
    shown_checkout_id: int | None = None,
    source: str | None = None,
    offer_id: int | None = None,
    direct: bool = False,
) -> Checkout:
    """Move custody of an out item (and what is in it) from its holder to `to`, keeping the due time (but not
    the previous holder's purpose and destination).

    Custody moves only with the receiver's consent: `to` accepting an offer (`offer_id`, see custody.handover), or
    the security desk moving it `direct`, which the events record as done without the receiver's confirmation.
    `shown_checkout_id` is the check-out the person saw on their page: if the item changed hands since, the
    hand-over is refused and they are told who holds it now. A flag on the check-out moves to the new one.
    """
    item, co = held(session, item)
    if shown_checkout_id is not None and co.id != shown_checkout_id:
        raise ChangedHands(asset_tag=item.asset_tag, holder=co.holder.name, since=co.out_at)
    if direct and not actor.privileged:
        raise NotPermitted()
    if not direct and (offer_id is None or actor.id != to.id):
        raise NotPermitted(N_("A hand-over waits for the receiver: offer it to them, and it is theirs when they "
                              "accept."))
    if not to.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=to.name)
    if to.id == co.holder_id:
        raise InvalidInput(N_("%(name)s already holds %(asset_tag)s."), name=to.name, asset_tag=item.asset_tag)
    previous = co.holder
    children = _children(session, co)
    for old in [co, *children]:
        old.returned_at, old.returned_by_id = now, actor.id
    session.flush()

    def successor(old: Checkout, parent: Checkout | None) -> Checkout:
        # The purpose and destination were the previous holder's: the new holder's are not known, so they are
        # left empty rather than carried on (and offered again at the new holder's next take-out).
        return Checkout(item=old.item, item_id=old.item_id, holder=to, holder_id=to.id,
                        parent_id=parent.id if parent else None, out_at=now, due_at=old.due_at,
                        strict_due=old.strict_due)

    # How the receiver's consent was given: their acceptance of an offer, or none (the desk moved it directly).
    how = {"direct": True, "receiver_confirmed": False} if direct else {"offer": offer_id, "receiver_confirmed": True}
    new = successor(co, None)
    _insert(session, new)
    handed_over.send(session, now=now, old=co, new=new, actor=actor)
    for old in children:
        child = successor(old, new)
        _insert(session, child)
        handed_over.send(session, now=now, old=old, new=child, actor=actor)
        audit.record(session, now, "handover", actor=actor, item=old.item, checkout=child, subject=to,
                     source=source, bag=item.asset_tag, from_user=previous.email, to_user=to.email, **how)
    audit.record(session, now, "handover", actor=actor, item=item, checkout=new, subject=to, source=source,
                 from_user=previous.email, to_user=to.email, **how)
    return new

