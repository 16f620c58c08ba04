"""Hand-over offers without HTTP: the giver offers, only the receiver accepts (ticking the handling rules where the
take-out rule asks), custody moves only then; decline, cancel, lapse at the end of the day, the desk's direct move,
and the races (an accept and a cancel at once, two phones accepting at once) settled by the database."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, at_once, events, later, tokyo
from tracker import jobs
from tracker.custody import handover, rules
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import sweep
from tracker.errors import HandlingAckRequired, InBagOut, InvalidInput, NotOut, NotPermitted
from tracker.models import Checkout, DataClass, Event, Flag, HandoverOffer, Item, Kind, OfferStatus, User

pytestmark = pytest.mark.postgres  # conditional UPDATEs, row locks, the partial unique index and two races

POLICY = Policy()


def give(session, item, holder, due_at=None):
    co = custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=due_at or later(hours=8))
    session.commit()
    return co


def offered(session, item, giver, receiver, now=NOW):
    made = handover.offer(session, now, item=item, to=receiver, actor=giver)
    session.commit()
    return made


def holder_of(session, item):
    co = custody.open_checkout(session, item)
    return co.holder_id if co else None


@pytest.fixture
def people(make_user):
    return make_user(name="Alice Giver"), make_user(name="Bob Receiver"), make_user(name="Carol Bystander")


# --- offer -------------------------------------------------------------------------------------------------------


def test_an_offer_leaves_the_item_with_the_giver_until_the_receiver_accepts(session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    first = give(session, item, alice, due_at=later(hours=5))
    offer = offered(session, item, alice, bob)
    assert offer.status == OfferStatus.pending and offer.checkout_id == first.id
    assert holder_of(session, item) == alice.id
    (event,) = events(session, "handover_offered")
    assert event.actor_id == alice.id and event.subject_user_id == bob.id and bob.email in event.data

    new = handover.accept(session, later(hours=1), offer=offer, actor=bob, policy=POLICY)
    session.commit()
    assert holder_of(session, item) == bob.id and new.due_at == later(hours=5)
    assert (offer.status, offer.new_checkout_id, offer.decided_at) == (OfferStatus.accepted, new.id, later(hours=1))
    moved = json.loads(events(session, "handover")[-1].data)
    assert moved["receiver_confirmed"] is True and moved["offer"] == offer.id
    (accepted,) = events(session, "handover_accepted")
    assert accepted.actor_id == bob.id


def test_only_the_holder_or_the_desk_offers_and_only_to_someone_else_who_is_active(session, make_user, make_item,
                                                                                    people):
    alice, bob, carol = people
    desk, gone = make_user("security"), make_user(active=False)
    item = make_item()
    with pytest.raises(NotOut):
        handover.offer(session, NOW, item=item, to=bob, actor=alice)
    give(session, item, alice)
    with pytest.raises(NotPermitted):
        handover.offer(session, NOW, item=item, to=bob, actor=carol)
    with pytest.raises(NotPermitted, match="disabled"):
        handover.offer(session, NOW, item=item, to=gone, actor=alice)
    with pytest.raises(InvalidInput, match="already holds"):
        handover.offer(session, NOW, item=item, to=alice, actor=alice)
    session.rollback()
    assert session.scalar(select(func.count(HandoverOffer.id))) == 0
    on_behalf = offered(session, item, desk, bob)
    assert (on_behalf.from_user_id, on_behalf.offered_by_id) == (alice.id, desk.id)


def test_one_offer_waits_per_check_out_and_offering_again_to_the_same_person_is_the_same_offer(session, make_item,
                                                                                               people):
    alice, bob, carol = people
    item = make_item()
    give(session, item, alice)
    first = offered(session, item, alice, bob)
    assert offered(session, item, alice, bob).id == first.id  # a double tap
    with pytest.raises(InvalidInput, match="already offered to Bob Receiver"):
        handover.offer(session, NOW, item=item, to=carol, actor=alice)
    session.rollback()
    assert session.scalar(select(func.count(HandoverOffer.id))) == 1
    assert len(events(session, "handover_offered")) == 1


def test_a_content_of_a_bag_that_is_out_is_offered_with_its_bag_not_alone(session, make_item, people):
    alice, bob, _ = people
    bag = make_item(Kind.bag)
    usb = make_item(Kind.usb, bag=bag)
    give(session, bag, alice)
    with pytest.raises(InBagOut):
        handover.offer(session, NOW, item=usb, to=bob, actor=alice)


# --- accept ------------------------------------------------------------------------------------------------------


def test_only_the_receiver_accepts(session, make_user, make_item, people):
    alice, bob, carol = people
    desk = make_user("security")
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    for who in (alice, carol, desk):
        with pytest.raises(NotPermitted):
            handover.accept(session, NOW, offer=offer, actor=who, policy=POLICY)
        session.rollback()
    assert holder_of(session, item) == alice.id
    assert session.get(HandoverOffer, offer.id).status == OfferStatus.pending


def test_the_handling_rules_tick_is_needed_where_the_take_out_rule_asks_for_it(session, make_user, make_item, people):
    alice, bob, _ = people
    personal = make_item(Kind.usb, data_class=DataClass.personal)  # the default rule asks for the tick
    give(session, personal, alice)
    offer = offered(session, personal, alice, bob)
    with pytest.raises(HandlingAckRequired):
        handover.accept(session, NOW, offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    assert holder_of(session, personal) == alice.id
    handover.accept(session, NOW, offer=offer, actor=bob, handling_ack=True, policy=POLICY)
    session.commit()
    assert holder_of(session, personal) == bob.id and offer.handling_ack is True
    assert json.loads(events(session, "handover_accepted")[-1].data)["handling_rules_acknowledged"] is True

    # An admin's rule without the tick: none is asked.
    admin = make_user("admin")
    rules.save(session, NOW, replace(rules.default("laptop", "personal", POLICY), handling_ack=False), actor=admin)
    laptop = make_item(Kind.laptop, data_class=DataClass.personal)
    give(session, laptop, alice)
    handover.accept(session, NOW, offer=offered(session, laptop, alice, bob), actor=bob, policy=POLICY)
    session.commit()
    assert holder_of(session, laptop) == bob.id


def test_a_bag_and_its_contents_move_together_and_an_open_overdue_flag_follows(session, make_item, people):
    alice, bob, _ = people
    bag = make_item(Kind.bag, data_class=DataClass.none)
    usb = make_item(Kind.usb, bag=bag, data_class=DataClass.personal)
    give(session, bag, alice, due_at=later(hours=1))
    sweep.sweep(session, tokyo(1, 19), POLICY)
    session.commit()
    offer = offered(session, bag, alice, bob, now=tokyo(1, 19, 30))
    with pytest.raises(HandlingAckRequired):  # the USB drive inside has personal data
        handover.accept(session, tokyo(1, 20), offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    new = handover.accept(session, tokyo(1, 20), offer=offer, actor=bob, handling_ack=True, policy=POLICY)
    session.commit()
    assert holder_of(session, bag) == bob.id and holder_of(session, usb) == bob.id
    flag = session.scalar(select(Flag).where(Flag.item_id == bag.id))
    assert flag.checkout_id == new.id and flag.status.value == "open"


# --- decline, cancel, the item ending otherwise ------------------------------------------------------------------


def test_decline_by_the_receiver_leaves_the_item_with_the_giver(session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    with pytest.raises(NotPermitted):
        handover.decline(session, NOW, offer=offer, actor=alice)
    session.rollback()
    handover.decline(session, NOW, offer=offer, actor=bob)
    session.commit()
    assert offer.status == OfferStatus.declined and holder_of(session, item) == alice.id
    assert len(events(session, "handover_declined")) == 1
    with pytest.raises(InvalidInput, match="Bob Receiver declined"):
        handover.accept(session, NOW, offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    assert offered(session, item, alice, bob).id != offer.id  # a new offer may follow


def test_cancel_by_the_giver_or_the_desk_but_not_by_others(session, make_user, make_item, people):
    alice, bob, carol = people
    desk = make_user("security")
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    for who in (bob, carol):
        with pytest.raises(NotPermitted):
            handover.cancel(session, NOW, offer=offer, actor=who)
        session.rollback()
    handover.cancel(session, NOW, offer=offer, actor=alice)
    session.commit()
    assert offer.status == OfferStatus.cancelled
    with pytest.raises(InvalidInput, match="was cancelled"):
        handover.accept(session, NOW, offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    again = offered(session, item, alice, bob)
    handover.cancel(session, NOW, offer=again, actor=desk)
    session.commit()
    assert [e.actor_id for e in events(session, "handover_cancelled")] == [alice.id, desk.id]
    assert holder_of(session, item) == alice.id


def test_a_return_while_an_offer_waits_cancels_it_and_the_receiver_is_told_why(session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    custody.return_item(session, later(minutes=5), item=item, actor=alice)
    session.commit()
    session.refresh(offer)
    assert offer.status == OfferStatus.cancelled
    assert json.loads(events(session, "handover_cancelled")[-1].data)["because"] == "returned"
    with pytest.raises(InvalidInput, match="returned or handed over in the meantime"):
        handover.accept(session, later(minutes=6), offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    assert custody.open_checkout(session, item) is None


def test_the_desk_moves_custody_directly_recorded_without_the_receivers_confirmation(session, make_user, make_item,
                                                                                     people):
    alice, bob, carol = people
    desk = make_user("security")
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    custody.hand_over(session, NOW, item=item, to=carol, actor=desk, direct=True)
    session.commit()
    assert holder_of(session, item) == carol.id
    moved = json.loads(events(session, "handover")[-1].data)
    assert moved["direct"] is True and moved["receiver_confirmed"] is False
    session.refresh(offer)
    assert offer.status == OfferStatus.cancelled  # the offer ended with Alice's check-out
    with pytest.raises(InvalidInput, match="returned or handed over in the meantime"):
        handover.accept(session, NOW, offer=offer, actor=bob, policy=POLICY)
    session.rollback()
    assert holder_of(session, item) == carol.id


def test_without_an_accepted_offer_staff_cannot_move_custody(session, make_item, people):
    alice, bob, _ = people
    item = make_item()
    give(session, item, alice)
    for who in (alice, bob):
        with pytest.raises(NotPermitted):
            custody.hand_over(session, NOW, item=item, to=bob, actor=who)
        with pytest.raises(NotPermitted):
            custody.hand_over(session, NOW, item=item, to=bob, actor=who, direct=True)
        session.rollback()
    assert holder_of(session, item) == alice.id


# --- the end of the day --------------------------------------------------------------------------------------------


def test_an_offer_lapses_at_the_end_of_its_local_day_once_and_is_refused_after_it(session, make_item, people):
    alice, bob, carol = people
    old_item, new_item = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    give(session, old_item, alice, due_at=tokyo(3, 19))
    give(session, new_item, alice, due_at=tokyo(3, 19))
    old = offered(session, old_item, alice, bob, now=tokyo(1, 23, 50))
    assert handover.lapses_at(old, POLICY) == tokyo(2, 0)
    # Past midnight the offer cannot be accepted, even before the job has run.
    with pytest.raises(InvalidInput, match="lapsed at the end of its day"):
        handover.accept(session, tokyo(2, 0, 1), offer=old, actor=bob, policy=POLICY)
    session.rollback()
    fresh = offered(session, new_item, alice, carol, now=tokyo(2, 0, 5))
    assert [o.id for o in handover.expire(session, tokyo(2, 0, 10), POLICY)] == [old.id]
    session.commit()
    assert handover.expire(session, tokyo(2, 0, 20), POLICY) == []  # the second run finds nothing
    session.commit()
    session.refresh(old)
    session.refresh(fresh)
    assert (old.status, fresh.status) == (OfferStatus.expired, OfferStatus.pending)
    (lapsed,) = events(session, "handover_expired")
    assert lapsed.actor_id is None and lapsed.item_id == old_item.id
    assert holder_of(session, old_item) == alice.id


def test_an_offer_left_from_yesterday_neither_shows_nor_blocks_a_new_one(session, make_item, people):
    alice, bob, carol = people
    item = make_item(data_class=DataClass.none)
    co = give(session, item, alice, due_at=tokyo(3, 19))
    old = offered(session, item, alice, bob, now=tokyo(1, 18))
    assert handover.still_open(co, tokyo(1, 23, 59), POLICY).id == old.id
    assert [o.id for o in handover.waiting_for(session, bob, tokyo(1, 23, 59), POLICY)] == [old.id]
    # The next morning, before any scheduler has run:
    assert handover.still_open(co, tokyo(2, 9), POLICY) is None
    assert handover.waiting_for(session, bob, tokyo(2, 9), POLICY) == []
    new = handover.offer(session, tokyo(2, 9), item=item, to=carol, actor=alice, policy=POLICY)
    session.commit()
    session.refresh(old)
    assert (old.status, new.status) == (OfferStatus.expired, OfferStatus.pending)
    assert [e.action for e in events(session, item=item) if e.action.startswith("handover")] == [
        "handover_offered", "handover_expired", "handover_offered"]


def test_the_scheduler_job_closes_lapsed_offers(app, session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice, due_at=tokyo(3, 19))
    offer = offered(session, item, alice, bob)
    assert jobs.run_handover_expiry(app, NOW + timedelta(hours=1)) == 0
    assert jobs.run_handover_expiry(app, tokyo(2, 9)) == 1
    session.rollback()
    session.refresh(offer)
    assert offer.status == OfferStatus.expired


# --- races ---------------------------------------------------------------------------------------------------------


def _race(app, *moves):
    """Run each move (a function of a fresh session) in its own thread and connection, all at once (at_once); what
    each did: "done", or the refusal's text."""
    def done(move):
        def run(s) -> str:
            move(s)
            return "done"
        return run

    return [str(r) if isinstance(r, InvalidInput) else "did not finish" if r is None else r
            for r in at_once(app, *map(done, moves), refused=(InvalidInput,))]


def _accept(offer_id, user_id):
    def move(s):
        handover.accept(s, NOW, offer=s.get(HandoverOffer, offer_id), actor=s.get(User, user_id), policy=POLICY)
    return move


def _cancel(offer_id, user_id):
    def move(s):
        handover.cancel(s, NOW, offer=s.get(HandoverOffer, offer_id), actor=s.get(User, user_id))
    return move


def _moves_of(app, item_id):
    with app.extensions["tracker.sessionmaker"]() as s:
        return (s.scalar(select(func.count(Checkout.id)).where(Checkout.item_id == item_id)),
                s.scalars(select(Event.action).where(Event.item_id == item_id, Event.action.like("handover%"))
                          .order_by(Event.id)).all(),
                s.scalar(select(Checkout.holder_id).where(Checkout.item_id == item_id, Checkout.returned_at.is_(None))))


def test_race_two_phones_accept_at_once_one_hand_over(app, session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    outcomes = _race(app, _accept(offer.id, bob.id), _accept(offer.id, bob.id))
    assert sorted(outcomes) == [f"Bob Receiver has already accepted the hand-over of {item.asset_tag}.", "done"]
    checkouts, actions, holder = _moves_of(app, item.id)
    assert checkouts == 2 and holder == bob.id
    assert actions == ["handover_offered", "handover", "handover_accepted"]


def test_race_accept_and_cancel_at_once_exactly_one_happens(app, session, make_item, people):
    alice, bob, _ = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)
    accepted, cancelled = _race(app, _accept(offer.id, bob.id), _cancel(offer.id, alice.id))
    checkouts, actions, holder = _moves_of(app, item.id)
    if accepted == "done":
        assert cancelled == f"Bob Receiver has already accepted the hand-over of {item.asset_tag}."
        assert (checkouts, holder) == (2, bob.id)
        assert actions == ["handover_offered", "handover", "handover_accepted"]
    else:
        assert (cancelled, accepted) == ("done", f"The hand-over of {item.asset_tag} to Bob Receiver was cancelled.")
        assert (checkouts, holder) == (1, alice.id)
        assert actions == ["handover_offered", "handover_cancelled"]


def test_race_accept_and_a_desk_return_at_once_leave_one_story(app, session, make_user, make_item, people):
    alice, bob, _ = people
    desk = make_user("security")
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)
    offer = offered(session, item, alice, bob)

    def receive_return(s):
        custody.return_item(s, NOW, item=s.get(Item, item.id), actor=s.get(User, desk.id))

    accepted, returned = _race(app, _accept(offer.id, bob.id), receive_return)
    checkouts, actions, holder = _moves_of(app, item.id)
    assert returned == "done" and holder is None  # the desk has the item back either way
    if accepted == "done":  # Bob took it first; the desk then received it back from him
        assert checkouts == 2 and actions == ["handover_offered", "handover", "handover_accepted"]
    else:
        assert accepted.endswith("ended: the item was returned or handed over in the meantime.")
        assert checkouts == 1 and actions == ["handover_offered", "handover_cancelled"]


def test_race_two_offers_at_once_one_waits(app, session, make_item, people):
    alice, bob, carol = people
    item = make_item(data_class=DataClass.none)
    give(session, item, alice)

    def offer_to(user_id):
        def move(s):
            handover.offer(s, NOW, item=s.get(Item, item.id), to=s.get(User, user_id), actor=s.get(User, alice.id))
        return move

    outcomes = _race(app, offer_to(bob.id), offer_to(carol.id))
    assert outcomes.count("done") == 1
    (refusal,) = [o for o in outcomes if o != "done"]
    assert "is already offered to" in refusal
    with app.extensions["tracker.sessionmaker"]() as s:
        assert s.scalar(select(func.count(HandoverOffer.id)).where(HandoverOffer.status == OfferStatus.pending)) == 1
