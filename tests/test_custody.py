"""The custody rules without HTTP: check out, return, hand over, bags, races, atomicity."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.helpers import NOW, at_once, events, handed_over, later
from tracker.custody import operations as custody
from tracker.errors import AlreadyOut, InBagOut, InvalidInput, NotOut, NotPermitted, Retired
from tracker.items.register import retire
from tracker.models import Checkout, Event, Kind

pytestmark = pytest.mark.postgres  # the rules' SQL, FOR UPDATE, the partial unique index and a race


def out(session, item, holder, actor=None, **kw):
    return custody.check_out(session, NOW, item=item, holder=holder, actor=actor or holder,
                             due_at=kw.pop("due_at", later(hours=9)), **kw)


def test_check_out_and_return_write_events(session, make_user, make_item):
    alice, item = make_user(), make_item()
    co = out(session, item, alice, purpose="client visit", destination="Osaka")
    session.commit()
    assert co.holder_id == alice.id and co.returned_at is None
    result = custody.return_item(session, later(hours=2), item=item, actor=alice)
    session.commit()
    assert result.checkout.returned_at == later(hours=2)
    assert result.checkout.returned_by_id == alice.id
    actions = [e.action for e in events(session) if e.item_id == item.id]
    assert actions[-2:] == ["checkout", "return"]
    checkout_event = events(session, "checkout")[-1]
    assert checkout_event.actor_id == alice.id and '"Osaka"' in checkout_event.data


def test_already_out_names_holder_and_time(session, make_user, make_item):
    alice, bob, item = make_user(name="Alice"), make_user(name="Bob"), make_item()
    out(session, item, alice)
    session.commit()
    with pytest.raises(AlreadyOut) as exc:
        out(session, item, bob)
    assert exc.value.holder_name == "Alice"
    assert exc.value.since == NOW


def test_return_of_item_not_out(session, make_user, make_item):
    alice, item = make_user(), make_item()
    with pytest.raises(NotOut):
        custody.return_item(session, NOW, item=item, actor=alice)


def test_retired_item_cannot_leave(session, make_user, make_item):
    admin, alice, item = make_user("admin"), make_user(), make_item()
    retire(session, NOW, item, admin)
    session.commit()
    with pytest.raises(Retired):
        out(session, item, alice)


def test_staff_cannot_check_out_for_someone_else(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item()
    with pytest.raises(NotPermitted):
        out(session, item, bob, actor=alice)
    desk = make_user("security")
    co = out(session, item, bob, actor=desk)
    assert co.holder_id == bob.id


def test_staff_cannot_return_someone_elses_item_but_security_can(session, make_user, make_item):
    alice, bob, desk, item = make_user(), make_user(), make_user("security"), make_item()
    out(session, item, alice)
    session.commit()
    with pytest.raises(NotPermitted):
        custody.return_item(session, NOW, item=item, actor=bob)
    custody.return_item(session, NOW, item=item, actor=desk)
    session.commit()
    assert custody.open_checkout(session, item) is None


def test_disabled_holder_cannot_receive(session, make_user, make_item):
    desk, gone, item = make_user("security"), make_user(active=False), make_item()
    with pytest.raises(NotPermitted):
        out(session, item, gone, actor=desk)


def test_due_time_must_be_in_future_and_text_limited(session, make_user, make_item):
    alice, item = make_user(), make_item()
    with pytest.raises(InvalidInput):
        out(session, item, alice, due_at=NOW)
    with pytest.raises(InvalidInput):
        out(session, item, alice, purpose="x" * 201)
    assert custody.open_checkout(session, item) is None


def test_hand_over_moves_custody_and_keeps_due(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item()
    first = out(session, item, alice, due_at=later(hours=5), purpose="Pitch", destination="Kobe")
    session.commit()
    new = handed_over(session, later(hours=1), item, alice, bob)
    session.commit()
    assert first.returned_at == later(hours=1)
    assert new.holder_id == bob.id and new.due_at == later(hours=5)
    assert (new.purpose, new.destination) == ("", ""), "Alice's purpose and destination are not Bob's"
    handover = events(session, "handover")[-1]
    assert alice.email in handover.data and bob.email in handover.data


def test_hand_over_by_a_bystander_is_refused(session, make_user, make_item):
    alice, bob, carol, item = make_user(), make_user(), make_user(), make_item()
    desk = make_user("security")
    out(session, item, alice)
    session.commit()
    with pytest.raises(NotPermitted):
        custody.hand_over(session, NOW, item=item, to=bob, actor=carol)
    with pytest.raises(InvalidInput):
        custody.hand_over(session, NOW, item=item, to=alice, actor=desk, direct=True)


def test_bag_checks_out_its_contents_together(session, make_user, make_item):
    alice, bob = make_user(), make_user()
    bag = make_item(Kind.bag)
    inside = [make_item(Kind.laptop, bag=bag), make_item(Kind.usb, bag=bag), make_item(Kind.folder, bag=bag)]
    out(session, bag, alice)
    session.commit()
    for content in inside:
        co = custody.open_checkout(session, content)
        assert co is not None and co.holder_id == alice.id and co.parent_id is not None
        with pytest.raises(InBagOut):
            out(session, content, bob)
        with pytest.raises(InBagOut):
            custody.return_item(session, NOW, item=content, actor=alice)


def test_bag_return_reports_missing_which_stay_out(session, make_user, make_item):
    alice = make_user()
    bag = make_item(Kind.bag)
    laptop, usb, folder = (make_item(Kind.laptop, bag=bag), make_item(Kind.usb, bag=bag),
                           make_item(Kind.folder, bag=bag))
    out(session, bag, alice)
    session.commit()
    # The USB drive is not back, so there is no erasure to state yet.
    result = custody.return_item(session, later(hours=3), item=bag, actor=alice, present={laptop.id, folder.id})
    session.commit()
    assert [i.asset_tag for i in result.missing] == [usb.asset_tag]
    assert sorted(i.asset_tag for i in result.returned) == sorted([laptop.asset_tag, folder.asset_tag])
    assert custody.open_checkout(session, bag) is None
    assert custody.open_checkout(session, laptop) is None
    still = custody.open_checkout(session, usb)
    assert still is not None and still.holder_id == alice.id
    assert events(session, "missing_on_return")[-1].item_id == usb.id
    # The missing item can be returned on its own once found.
    custody.return_item(session, later(hours=4), item=usb, actor=alice, erasure="nothing_written")
    session.commit()
    assert custody.open_checkout(session, usb) is None


def test_bag_with_a_content_already_out_cannot_leave(session, make_user, make_item):
    alice, bob = make_user(name="Alice"), make_user()
    bag = make_item(Kind.bag)
    usb = make_item(Kind.usb, bag=bag)
    out(session, usb, alice)
    session.commit()
    with pytest.raises(AlreadyOut) as exc:
        out(session, bag, bob)
    session.rollback()
    assert exc.value.asset_tag == usb.asset_tag
    assert custody.open_checkout(session, bag) is None  # nothing half-saved


def test_hand_over_of_bag_moves_contents(session, make_user, make_item):
    alice, bob = make_user(), make_user()
    bag = make_item(Kind.bag)
    usb = make_item(Kind.usb, bag=bag)
    out(session, bag, alice)
    session.commit()
    handed_over(session, NOW, bag, alice, bob)
    session.commit()
    assert custody.open_checkout(session, usb).holder_id == bob.id
    custody.return_item(session, NOW, item=bag, actor=bob, erasure="erased", erasure_method="format")
    session.commit()
    assert custody.open_checkout(session, usb) is None


def test_database_refuses_a_second_open_checkout(session, make_user, make_item):
    """The partial unique index holds even when the rules are bypassed."""
    alice, item = make_user(), make_item()
    out(session, item, alice)
    session.commit()
    session.add(Checkout(item_id=item.id, holder_id=alice.id, out_at=NOW, due_at=later(hours=1)))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_a_take_out_the_checks_missed_is_refused_by_the_index_with_the_holder_named(session, make_user, make_item,
                                                                                     monkeypatch):
    """Were the rules' own check to miss an open check-out (a race it did not see), the insert itself finds it:
    the person hears who has the item, and nothing of the second take-out is written."""
    alice, bob, item = make_user(name="Alice Abe"), make_user(), make_item()
    out(session, item, alice)
    session.commit()
    monkeypatch.setattr(custody, "_refuse_if_out", lambda *a, **kw: None)
    with pytest.raises(AlreadyOut) as refused:
        out(session, item, bob)
    assert refused.value.holder_name == "Alice Abe" and refused.value.holder_id == alice.id
    session.rollback()
    assert session.scalar(select(func.count(Checkout.id)).where(Checkout.item_id == item.id)) == 1
    assert [e.action for e in events(session, item=item)].count("checkout") == 1


def test_checkout_and_event_commit_together_or_not_at_all(session, make_user, make_item, monkeypatch):
    alice, item = make_user(), make_item()
    before = session.scalar(select(func.count(Event.id)).where(Event.action != "refused"))

    def broken(*a, **kw):
        raise RuntimeError("audit store failed")

    monkeypatch.setattr("tracker.custody.operations.audit.record", broken)
    with pytest.raises(RuntimeError):
        out(session, item, alice)
    session.rollback()
    assert custody.open_checkout(session, item) is None
    assert session.scalar(select(func.count(Event.id)).where(Event.action != "refused")) == before


def test_race_eight_phones_one_winner(app, make_user, make_item):
    """Eight threads, each its own session and connection, race to check out one item."""
    holders = [make_user() for _ in range(8)]
    item = make_item()

    def attempt(user_id: int):
        def move(s) -> str:
            from tracker.models import Item, User

            user, it = s.get(User, user_id), s.get(Item, item.id)
            custody.check_out(s, NOW, item=it, holder=user, actor=user, due_at=later(hours=8))
            return "won"
        return move

    results = ["already out" if isinstance(r, AlreadyOut) else r
               for r in at_once(app, *[attempt(u.id) for u in holders], refused=(AlreadyOut,))]
    assert sorted(results) == ["already out"] * 7 + ["won"], results
    s = app.extensions["tracker.sessionmaker"]()
    assert s.scalar(select(func.count(Checkout.id)).where(Checkout.item_id == item.id)) == 1
    assert s.scalar(select(func.count(Event.id)).where(Event.item_id == item.id, Event.action == "checkout")) == 1
    s.close()
