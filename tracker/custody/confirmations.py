""""I still have it": holders of long take-outs confirm custody by scanning the item's own label.

Where an item's take-out rule sets `confirm_every_days` (N), a check-out out for N days is due a confirmation,
and again N days after each one. The scheduler asks the holder by e-mail once per period (`claim_prompts`); the
holder scans the label and taps "I still have it" (`confirm`), which only the holder of the open check-out can do,
and only through a current label: that is the proof the item is in their hands. A prompt left unanswered for
GRACE goes to the security desk once (`claim_escalations`). Each item answers for itself under its own rule: a
USB drive with My Number in a bag that is out is asked for, and confirmed by its own label, even if the bag is not.

Every claim is a conditional UPDATE on the check-out's row (`WHERE custody_prompted_at < :period_start`, ...), so
two scheduler runs at once, or two taps at once, do each thing once. Only flushes: the caller queues the messages
(tracker.notify.outbox) and commits.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import and_, false, func, or_, select, update
from sqlalchemy.orm import Session, contains_eager, joinedload
from sqlalchemy.orm.attributes import set_committed_value

from .. import audit, clock
from ..errors import N_, DomainError, NotOut, NotPermitted
from ..models import Checkout, DataClass, Item, Kind, LabelToken, User
from . import rules
from .policy import Policy

GRACE = timedelta(days=1)  # a prompt unanswered this long goes to the desk


class LabelReplaced(DomainError):
    message = N_("This label was replaced by a new one: scan the label that is on the item now.")


class AlreadyConfirmed(DomainError):
    message = N_("You already confirmed %(asset_tag)s today.")


def _period(rule: rules.Rule) -> timedelta | None:
    return timedelta(days=rule.confirm_every_days) if rule.confirm_every_days else None


def due_since(co: Checkout, rule: rules.Rule, now: datetime) -> datetime | None:
    """The start of the confirmation period `now` is in (N days after the take-out or the last confirmation, then
    every N days), or None while no confirmation is due or the rule asks for none."""
    period = _period(rule)
    if period is None:
        return None
    basis = co.custody_confirmed_at or co.out_at
    if now < basis + period:
        return None
    return basis + period * ((now - basis) // period)


def asks(rule: rules.Rule) -> bool:
    """Whether take-outs under `rule` ask their holders to confirm custody (the scan page offers the button)."""
    return rule.confirm_every_days is not None


def _day_start(now: datetime, tz: str) -> datetime:
    day = clock.local(now, tz).date()
    return datetime.combine(day, time(0, 0), tzinfo=ZoneInfo(tz)).astimezone(UTC)


def confirm(session: Session, now: datetime, *, label: LabelToken, actor: User, policy: Policy,
            source: str | None = None) -> Checkout:
    """Record that the holder has the item in hand: they scanned its current label and tapped "I still have it".
    Once per check-out and local day (a double tap records one); the item counts as seen (`last_counted_at`)."""
    if label.replaced_at is not None:
        raise LabelReplaced()
    item = session.get(Item, label.item_id)
    co = session.scalar(select(Checkout).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None))
                        .with_for_update().execution_options(populate_existing=True))
    if co is None:
        raise NotOut(asset_tag=item.asset_tag)
    if co.holder_id != actor.id:
        raise NotPermitted(N_("Only the person who holds %(asset_tag)s can confirm they still have it."),
                           asset_tag=item.asset_tag)
    today = _day_start(now, policy.for_item(item).timezone)
    done = session.execute(
        update(Checkout).where(Checkout.id == co.id, Checkout.returned_at.is_(None), Checkout.holder_id == actor.id,
                               or_(Checkout.custody_confirmed_at.is_(None), Checkout.custody_confirmed_at < today))
        .values(custody_confirmed_at=now).execution_options(synchronize_session=False))
    if done.rowcount != 1:
        raise AlreadyConfirmed(asset_tag=item.asset_tag)
    seen = session.execute(update(Item).where(Item.id == item.id, or_(Item.last_counted_at.is_(None),
                                                                      Item.last_counted_at < now))
                           .values(last_counted_at=now).execution_options(synchronize_session=False))
    if seen.rowcount == 1:  # a count at the same moment or later stands
        set_committed_value(item, "last_counted_at", now)
    session.refresh(co)
    audit.record(session, now, "custody_confirmed", actor=actor, item=item, checkout=co, source=source,
                 prompted_at=co.custody_prompted_at.isoformat() if co.custody_prompted_at else None)
    return co


def _confirmation_due(found: list[rules.Rule], now: datetime):
    """Open check-outs whose rule asks for confirmations and whose last one (or the take-out) is a period old;
    one clause per such rule, so the database does the choosing."""
    clauses = [and_(Item.kind == Kind(r.kind), Item.data_class == DataClass(r.data_class),
                    func.coalesce(Checkout.custody_confirmed_at, Checkout.out_at) <= now - _period(r))
               for r in found if _period(r) is not None]
    return or_(*clauses) if clauses else false()


def claim_prompts(session: Session, now: datetime, policy: Policy) -> list[Checkout]:
    """The check-outs whose holder is asked now, each claimed once per period, race-free (with item and holder)."""
    table = rules.table(session, policy)
    candidates = session.scalars(
        select(Checkout).join(Checkout.item).options(contains_eager(Checkout.item), joinedload(Checkout.holder))
        .where(Checkout.returned_at.is_(None), _confirmation_due(list(table.values()), now))
        .order_by(Checkout.holder_id, Checkout.due_at, Checkout.id)).unique().all()
    claimed = []
    for co in candidates:
        since = due_since(co, rules.lookup(table, co.item), now)
        if since is None:
            continue
        done = session.execute(
            update(Checkout).where(Checkout.id == co.id, Checkout.returned_at.is_(None),
                                   or_(Checkout.custody_prompted_at.is_(None), Checkout.custody_prompted_at < since))
            .values(custody_prompted_at=now).execution_options(synchronize_session=False))
        if done.rowcount == 1:
            claimed.append(co)
    return claimed


def _unanswered():
    """Asked, and not confirmed since."""
    return and_(Checkout.returned_at.is_(None), Checkout.custody_prompted_at.is_not(None),
                or_(Checkout.custody_confirmed_at.is_(None),
                    Checkout.custody_confirmed_at < Checkout.custody_prompted_at))


def claim_escalations(session: Session, now: datetime) -> list[Checkout]:
    """The prompts unanswered for GRACE, each escalated to the desk once, with a `custody_unconfirmed` event."""
    not_yet = or_(Checkout.custody_escalated_at.is_(None), Checkout.custody_escalated_at < Checkout.custody_prompted_at)
    candidates = session.scalars(
        select(Checkout).options(joinedload(Checkout.item), joinedload(Checkout.holder))
        .where(_unanswered(), not_yet, Checkout.custody_prompted_at <= now - GRACE)
        .order_by(Checkout.custody_prompted_at, Checkout.id)).unique().all()
    claimed = []
    for co in candidates:
        done = session.execute(update(Checkout).where(Checkout.id == co.id, _unanswered(), not_yet)
                               .values(custody_escalated_at=now).execution_options(synchronize_session=False))
        if done.rowcount == 1:
            claimed.append(co)
    audit.record_rows(session, now, "custody_unconfirmed", actor=None, source="scheduler", rows=[
        {"item_id": co.item_id, "checkout_id": co.id, "subject_user_id": co.holder_id,
         "data": {"prompted_at": co.custody_prompted_at.isoformat()}} for co in claimed])
    return claimed


def unconfirmed(session: Session) -> list[Checkout]:
    """What the desk sees: open check-outs escalated because their holder did not confirm, oldest ask first."""
    return list(session.scalars(
        select(Checkout).options(joinedload(Checkout.item), joinedload(Checkout.holder))
        .where(_unanswered(), Checkout.custody_escalated_at >= Checkout.custody_prompted_at)
        .order_by(Checkout.custody_prompted_at, Checkout.id)).unique())


def awaiting(session: Session, user: User, now: datetime, policy: Policy) -> list[Checkout]:
    """The holder's open check-outs due a confirmation now (their "how to confirm" page lists them)."""
    table = rules.table(session, policy)
    mine = session.scalars(select(Checkout).options(joinedload(Checkout.item))
                           .where(Checkout.holder_id == user.id, Checkout.returned_at.is_(None))
                           .order_by(Checkout.out_at, Checkout.id)).unique()
    return [co for co in mine if due_since(co, rules.lookup(table, co.item), now) is not None]
