"""Hand-over offers: the holder offers an item to a colleague, and custody moves only when the colleague accepts
it on their phone (ticking the handling rules where the item's take-out rule asks for them). Until then the giver
holds the item.

One offer waits per check-out at a time (a unique partial index). Every decision on an offer is one conditional
UPDATE ... WHERE status = 'pending', after the item's row lock: of an accept and a cancel at once, or two accepts
from two phones, exactly one happens and the other is told what became of the offer. An offer not decided by the
end of its local day lapses (`expire`, the scheduler's job; until it runs, an accept after the day is refused all
the same). A return, or the desk moving the item directly, cancels the offer that was waiting.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

from blinker import Namespace
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from .. import audit, clock
from ..db import finds, probe, written_in
from ..errors import (
    N_,
    ChangedHands,
    DomainError,
    HandlingAckRequired,
    InBagOut,
    InvalidInput,
    NotOut,
    NotPermitted,
)
from ..models import Checkout, HandoverOffer, Item, OfferStatus, Site, User
from . import operations, rules
from .policy import Policy

_signals = Namespace()
# (session, now=, offer=): an offer was made; the app tells the receiver (an e-mail queued in the same transaction).
offered = _signals.signal("handover-offered")
# (session, now=, offer=): an offer ended without moving custody (declined, or lapsed); the app tells the giver.
unanswered = _signals.signal("handover-unanswered")

_SETTLED = {
    OfferStatus.accepted: N_("%(name)s has already accepted the hand-over of %(asset_tag)s."),
    OfferStatus.declined: N_("%(name)s declined the hand-over of %(asset_tag)s."),
    OfferStatus.cancelled: N_("The hand-over of %(asset_tag)s to %(name)s was cancelled."),
    OfferStatus.expired: N_("The offer to hand %(asset_tag)s over to %(name)s lapsed at the end of its day."),
}
_ENDED = N_("The offer to hand %(asset_tag)s over to %(name)s ended: the item was returned or handed over "
            "in the meantime.")


_PENDING_OFFER = select(HandoverOffer).where(HandoverOffer.checkout_id == bindparam("checkout_id"),
                                            written_in(HandoverOffer.status, OfferStatus.pending))
_ANY_PENDING_OFFER = probe(_PENDING_OFFER)


def pending(session: Session, checkout: Checkout) -> HandoverOffer | None:
    """The offer waiting on this check-out, if any."""
    return session.scalar(_PENDING_OFFER, {"checkout_id": checkout.id})


def still_open(checkout: Checkout, now: datetime, policy: Policy) -> HandoverOffer | None:
    """The offer waiting on this check-out as its item's page shows it (`Checkout.waiting_offers`, read with the
    label on a scan): one past its day has lapsed, whether or not the scheduler has recorded it yet."""
    waiting = next(iter(checkout.waiting_offers), None)
    return waiting if waiting is not None and now < lapses_at(waiting, policy) else None


def waiting_for(session: Session, user: User, now: datetime, policy: Policy) -> list[HandoverOffer]:
    """The offers waiting for `user` to accept today, oldest first (their "my items" page)."""
    found = session.scalars(
        select(HandoverOffer).options(joinedload(HandoverOffer.item), joinedload(HandoverOffer.from_user))
        .where(HandoverOffer.to_user_id == user.id, HandoverOffer.status == OfferStatus.pending,
               HandoverOffer.offered_at >= earliest_day_start(session, now, policy))
        .order_by(HandoverOffer.offered_at, HandoverOffer.id))
    return [o for o in found if now < lapses_at(o, policy)]


def day_starts(session: Session, now: datetime, policy: Policy) -> list[datetime]:
    """The start of the local day of `now` at the main office and at every site (one small query)."""
    return [policy.at(site).local_day_start(now) for site in (None, *session.scalars(select(Site)))]


def earliest_day_start(session: Session, now: datetime, policy: Policy) -> datetime:
    """No offer made before this is still open anywhere (each lapses at the end of its item's site's day)."""
    return min(day_starts(session, now, policy))


def lapses_at(offer: HandoverOffer, policy: Policy) -> datetime:
    """The end of the local day the offer was made on, at the item's site: an offer is for today, and nobody
    accepts it tomorrow."""
    tz = policy.for_item(offer.item).timezone
    day = clock.local(offer.offered_at, tz).date() + timedelta(days=1)
    return clock.from_local(datetime.combine(day, time(0, 0)), tz)


def needs_handling_ack(session: Session, offer: HandoverOffer, policy: Policy) -> bool:
    """Whether the receiver must tick the handling rules: the take-out rule of the item (or of anything in the bag
    that moves with it) says so."""
    moving = [offer.item, *session.scalars(select(Item).join(Checkout, Checkout.item_id == Item.id).where(
        Checkout.parent_id == offer.checkout_id, Checkout.returned_at.is_(None)))]
    return any(rules.rule_for(session, it, policy).handling_ack for it in moving)


def offer(session: Session, now: datetime, *, item: Item, to: User, actor: User, shown_checkout_id: int | None = None,
          policy: Policy | None = None, source: str | None = None) -> HandoverOffer:
    """Offer the out item (with what is in it) to `to`; the holder keeps it until they accept.

    The holder offers, or the desk on their behalf. Offering again to the same person is the same offer (a double
    tap); an offer to someone else waits until the first is cancelled, declined or has lapsed (one left from an
    earlier day is recorded as lapsed here, if the scheduler has not done it yet).
    """
    item, co = operations.held(session, item)
    if shown_checkout_id is not None and co.id != shown_checkout_id:
        raise ChangedHands(asset_tag=item.asset_tag, holder=co.holder.name, since=co.out_at)
    if actor.id != co.holder_id and not actor.privileged:
        raise NotPermitted()
    if not to.active:
        raise NotPermitted(N_("%(name)s's account is disabled."), name=to.name)
    if to.id == co.holder_id:
        raise InvalidInput(N_("%(name)s already holds %(asset_tag)s."), name=to.name, asset_tag=item.asset_tag)
    waiting = pending(session, co)
    if waiting is not None and now >= lapses_at(waiting, policy or Policy()):
        _lapse(session, now, waiting)
        waiting = None
    if waiting is not None:
        if waiting.to_user_id == to.id:
            return waiting
        raise _waits_for(waiting, item)
    made = HandoverOffer(checkout_id=co.id, item_id=item.id, from_user_id=co.holder_id, to_user_id=to.id,
                         offered_by_id=actor.id, offered_at=now, status=OfferStatus.pending)
    try:
        with session.begin_nested():
            session.add(made)
            session.flush()
    except IntegrityError:  # another offer on this check-out went in at the same moment: the index decides
        waiting = pending(session, co)
        if waiting is None:
            raise
        if waiting.to_user_id == to.id:
            return waiting
        raise _waits_for(waiting, item) from None
    audit.record(session, now, "handover_offered", actor=actor, item=item, checkout=co, subject=to, source=source,
                 offer=made.id, from_user=co.holder.email, to_user=to.email)
    offered.send(session, now=now, offer=made)
    return made


def _waits_for(waiting: HandoverOffer, item: Item) -> InvalidInput:
    return InvalidInput(N_("%(asset_tag)s is already offered to %(name)s: cancel that offer first."),
                        asset_tag=item.asset_tag, name=waiting.to_user.name)


def accept(session: Session, now: datetime, *, offer: HandoverOffer, actor: User, handling_ack: bool = False,
           policy: Policy | None = None, source: str | None = None) -> Checkout:
    """The receiver takes the item: custody (and the bag's contents, and an open overdue flag) moves to them."""
    if actor.id != offer.to_user_id:
        raise NotPermitted()
    site = policy or Policy()
    item, _co = _held(session, offer)
    if now >= lapses_at(offer, site):
        raise InvalidInput(_SETTLED[OfferStatus.expired], asset_tag=item.asset_tag, name=offer.to_user.name)
    if not handling_ack and needs_handling_ack(session, offer, site):
        raise HandlingAckRequired()
    _settle(session, now, offer, OfferStatus.accepted, handling_ack=handling_ack)
    new = operations.hand_over(session, now, item=item, to=actor, actor=actor, shown_checkout_id=offer.checkout_id,
                               offer_id=offer.id, source=source)
    offer.new_checkout_id = new.id
    session.flush()
    audit.record(session, now, "handover_accepted", actor=actor, item=item, checkout=new, subject=actor,
                 source=source, offer=offer.id, from_user=offer.from_user.email,
                 handling_rules_acknowledged=handling_ack)
    return new


def decline(session: Session, now: datetime, *, offer: HandoverOffer, actor: User,
            source: str | None = None) -> HandoverOffer:
    """The receiver says no; the giver keeps the item."""
    if actor.id != offer.to_user_id:
        raise NotPermitted()
    _held(session, offer)
    _settle(session, now, offer, OfferStatus.declined)
    audit.record(session, now, "handover_declined", actor=actor, item=offer.item, checkout=offer.checkout,
                 subject=offer.from_user, source=source, offer=offer.id)
    unanswered.send(session, now=now, offer=offer)
    return offer


def cancel(session: Session, now: datetime, *, offer: HandoverOffer, actor: User,
           source: str | None = None) -> HandoverOffer:
    """The giver (or the desk) takes the offer back before it is accepted."""
    if actor.id not in (offer.from_user_id, offer.offered_by_id) and not actor.privileged:
        raise NotPermitted()
    _held(session, offer)
    _settle(session, now, offer, OfferStatus.cancelled)
    audit.record(session, now, "handover_cancelled", actor=actor, item=offer.item, checkout=offer.checkout,
                 subject=offer.to_user, source=source, offer=offer.id)
    return offer


def expire(session: Session, now: datetime, policy: Policy) -> list[HandoverOffer]:
    """Close the offers left pending past the end of their local day, each once, whoever runs the job."""
    day_start = max(day_starts(session, now, policy))  # every offer made before lapsed, whatever its site
    lapsed = []
    for waiting in session.scalars(select(HandoverOffer).where(HandoverOffer.status == OfferStatus.pending,
                                                               HandoverOffer.offered_at < day_start)
                                   .order_by(HandoverOffer.id)).all():
        if now >= lapses_at(waiting, policy) and _lapse(session, now, waiting):
            lapsed.append(waiting)
    return lapsed


def _lapse(session: Session, now: datetime, offer: HandoverOffer) -> bool:
    if not _claim(session, now, offer, OfferStatus.expired):
        return False
    audit.record(session, now, "handover_expired", item=offer.item, checkout=offer.checkout, subject=offer.to_user,
                 offer=offer.id)
    unanswered.send(session, now=now, offer=offer)
    return True


def _held(session: Session, offer: HandoverOffer) -> tuple[Item, Checkout]:
    """Read the offer (decided already: say how), lock the item as every change of custody does, and read the offer
    again under the lock."""
    session.refresh(offer)
    if offer.status != OfferStatus.pending:
        raise settled_already(offer)
    try:
        found = operations.held(session, offer.item)
    except (NotOut, InBagOut):  # returned while this waited for the lock: the offer ended with its check-out
        session.refresh(offer)
        if offer.status != OfferStatus.pending:
            raise settled_already(offer) from None
        raise
    session.refresh(offer)
    if offer.status != OfferStatus.pending:
        raise settled_already(offer)
    return found


def _claim(session: Session, now: datetime, offer: HandoverOffer, status: OfferStatus, **values) -> bool:
    """Move the offer from pending to `status` in one conditional UPDATE; False when something else decided it
    first. The object is read again either way, so it says what the database says."""
    done = session.execute(
        update(HandoverOffer).where(HandoverOffer.id == offer.id, HandoverOffer.status == OfferStatus.pending)
        .values(status=status, decided_at=now, **values).execution_options(synchronize_session=False))
    session.refresh(offer)
    return done.rowcount == 1


def _settle(session: Session, now: datetime, offer: HandoverOffer, status: OfferStatus, **values) -> None:
    if not _claim(session, now, offer, status, **values):
        raise settled_already(offer)


def settled_already(offer: HandoverOffer) -> DomainError:
    """Why an offer can no longer be acted on, in words the person can use."""
    ended = offer.status == OfferStatus.cancelled and offer.checkout.returned_at is not None
    return InvalidInput(_ENDED if ended else _SETTLED[offer.status], asset_tag=offer.item.asset_tag,
                        name=offer.to_user.name)


@operations.checkout_ended.connect
def _end_with_return(session: Session, *, now: datetime, checkout: Checkout, actor: User | None, how: str) -> None:
    _cancel_waiting(session, now, checkout, actor, "returned")


@operations.handed_over.connect
def _end_with_hand_over(session: Session, *, now: datetime, old: Checkout, new: Checkout, actor: User) -> None:
    _cancel_waiting(session, now, old, actor, "handed_over")


def _cancel_waiting(session: Session, now: datetime, checkout: Checkout, actor: User | None, why: str) -> None:
    """The check-out an offer was for has ended (returned, or moved by the desk): the offer ends with it. An offer
    being accepted is no longer pending here, so it is left alone."""
    if not finds(session, _ANY_PENDING_OFFER, {"checkout_id": checkout.id}):  # nearly every return
        return
    waiting = pending(session, checkout)
    if waiting is not None and _claim(session, now, waiting, OfferStatus.cancelled):
        audit.record(session, now, "handover_cancelled", actor=actor, item=waiting.item, checkout=checkout,
                     subject=waiting.to_user, offer=waiting.id, because=why)

