"""The rules of custody: check out, return and hand over, shared by web, API, CLI and scheduler.

Every function takes a session and an explicit `now`, only flushes (the caller commits once),
writes its audit events through `audit.record`, and raises `errors.DomainError` subclasses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from . import audit
from .errors import AlreadyOut, InBagOut, InvalidInput, NotOut, NotPermitted, Retired, N_
from .models import Checkout, Item, Role, User

TEXT_LIMIT = 200
PRIVILEGED = (Role.security, Role.admin)


@dataclass
class ReturnResult:
    checkout: Checkout
    returned: list[Item] = field(default_factory=list)
    missing: list[Item] = field(default_factory=list)


def open_checkout(session: Session, item: Item) -> Checkout | None:
    return session.scalar(
        select(Checkout).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None))
    )


def _lock(session: Session, item: Item) -> Item:
    """Lock the item's row (PostgreSQL) so two phones on one item queue; SQLite already serialises."""
    return session.scalars(
        select(Item).where(Item.id == item.id).with_for_update().execution_options(populate_existing=True)
    ).one()


def _clean(text: str | None, label: str) -> str:
    text = (text or "").strip()
    if len(text) > TEXT_LIMIT:
        raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."), field=label, limit=TEXT_LIMIT)
    return text


def _already_out(co: Checkout) -> AlreadyOut:
    return AlreadyOut(co.holder.name, co.out_at, co.item.asset_tag)


def _refuse_if_out(session: Session, item: Item) -> None:
    co = open_checkout(session, item)
    if co is None:
        return
    if co.parent_id is not None:
        parent = session.get(Checkout, co.parent_id)
        if parent is not None and parent.returned_at is None:
            raise InBagOut(asset_tag=item.asset_tag, bag=parent.item.asset_tag)
    raise _already_out(co)


def _insert(session: Session, co: Checkout) -> None:
    """Insert a check-out; the partial unique index is the last word on 'already out'."""
    try:
        with session.begin_nested():
            session.add(co)
            session.flush()
    except IntegrityError:
        existing = open_checkout(session, co.item)
        if existing is not None:
            raise _already_out(existing) from None
        raise


def _contents(item: Item) -> list[Item]:
    return [c for c in item.contents if not c.retired]


def check_out(
    session: Session,
    now: datetime,
    *,
    item: Item,
    holder: User,
    actor: User,
    due_at: datetime,
    purpose: str = "",
    destination: str = "",
    source: str | None = None,
) -> Checkout:
    """Give `item` (and, for a bag, everything in it) to `holder` until `due_at`."""
    if actor.id != holder.id and actor.role not in PRIVILEGED:
        raise NotPermitted()
    if not holder.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=holder.name)
    purpose = _clean(purpose, N_("Purpose"))
    destination = _clean(destination, N_("Destination"))
    if due_at <= now:
        raise InvalidInput(N_("The due time must be in the future."))
    item = _lock(session, item)
    if item.retired:
        raise Retired(asset_tag=item.asset_tag)
    _refuse_if_out(session, item)
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
        )

    co = new(item, None)
    _insert(session, co)
    for content in contents:
        child = new(content, co)
        _insert(session, child)
        audit.record(session, now, "checkout", actor=actor, item=content, checkout=child, subject=holder,
                     source=source, bag=item.asset_tag, due_at=due_at.isoformat())
    audit.record(session, now, "checkout", actor=actor, item=item, checkout=co, subject=holder, source=source,
                 due_at=due_at.isoformat(), purpose=purpose, destination=destination,
                 contents=[c.asset_tag for c in contents])
    return co


def _children(session: Session, co: Checkout) -> list[Checkout]:
    return list(session.scalars(
        select(Checkout).where(Checkout.parent_id == co.id, Checkout.returned_at.is_(None)).order_by(Checkout.id)
    ))


def _open_for_action(session: Session, item: Item) -> Checkout:
    co = open_checkout(session, item)
    if co is None:
        raise NotOut(asset_tag=item.asset_tag)
    if co.parent_id is not None:
        parent = session.get(Checkout, co.parent_id)
        if parent is not None and parent.returned_at is None:
            raise InBagOut(asset_tag=item.asset_tag, bag=parent.item.asset_tag)
    return co


def return_item(
    session: Session,
    now: datetime,
    *,
    item: Item,
    actor: User,
    present: set[int] | None = None,
    source: str | None = None,
) -> ReturnResult:
    """Close the open check-out; for a bag, contents not confirmed `present` stay out as missing.

    `present` holds the ids of the bag's contents that were confirmed; None confirms them all.
    """
    item = _lock(session, item)
    co = _open_for_action(session, item)
    if actor.id != co.holder_id and actor.role not in PRIVILEGED:
        raise NotPermitted()
    result = ReturnResult(checkout=co)
    for child in _children(session, co):
        if present is None or child.item_id in present:
            child.returned_at, child.returned_by_id = now, actor.id
            result.returned.append(child.item)
            audit.record(session, now, "return", actor=actor, item=child.item, checkout=child,
                         subject=child.holder, source=source, bag=item.asset_tag)
        else:
            result.missing.append(child.item)
            audit.record(session, now, "missing_on_return", actor=actor, item=child.item, checkout=child,
                         subject=child.holder, source=source, bag=item.asset_tag)
    co.returned_at, co.returned_by_id = now, actor.id
    session.flush()
    audit.record(session, now, "return", actor=actor, item=item, checkout=co, subject=co.holder, source=source,
                 returned=[i.asset_tag for i in result.returned], missing=[i.asset_tag for i in result.missing])
    return result


def hand_over(
    session: Session,
    now: datetime,
    *,
    item: Item,
    to: User,
    actor: User,
    source: str | None = None,
) -> Checkout:
    """Move custody of an out item (and what is in it) from its holder to `to`, keeping the due time."""
    item = _lock(session, item)
    co = _open_for_action(session, item)
    if actor.id not in (co.holder_id, to.id) and actor.role not in PRIVILEGED:
        raise NotPermitted()
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
        return Checkout(item=old.item, item_id=old.item_id, holder=to, holder_id=to.id,
                        parent_id=parent.id if parent else None, out_at=now, due_at=old.due_at,
                        purpose=old.purpose, destination=old.destination)

    new = successor(co, None)
    _insert(session, new)
    for old in children:
        child = successor(old, new)
        _insert(session, child)
        audit.record(session, now, "handover", actor=actor, item=old.item, checkout=child, subject=to,
                     source=source, bag=item.asset_tag, from_user=previous.email, to_user=to.email)
    audit.record(session, now, "handover", actor=actor, item=item, checkout=new, subject=to, source=source,
                 from_user=previous.email, to_user=to.email)
    return new

