"""The custody policy without HTTP: day end and due times in local time, long check-outs, approval by the
desk and the handling rules asked for on the first check-out of the local day."""

from __future__ import annotations

import json
from datetime import UTC, datetime, time, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError

from tests.helpers import events, tokyo
from tracker.custody import approvals
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.errors import ApprovalRequired, HandlingAckRequired, InvalidInput, NotPermitted, ReasonRequired
from tracker.models import Checkout, CheckoutRequest, DataClass, RequestStatus

pytestmark = pytest.mark.postgres  # local-date SQL of the handling rules, the partial unique index on requests

POLICY = Policy(timezone="Asia/Tokyo", day_end=time(19, 0))
APPROVAL = Policy(timezone="Asia/Tokyo", day_end=time(19, 0), approval_required=True)
MORNING = tokyo(1, 10)  # 01:00 UTC
DAY_END = tokyo(1, 19)  # 10:00 UTC


# --- day end and long check-outs -------------------------------------------------------------------------


def test_default_due_is_todays_day_end_in_local_time():
    assert POLICY.default_due(MORNING) == DAY_END
    assert POLICY.default_due(MORNING) == datetime(2026, 6, 1, 10, 0, tzinfo=UTC)
    assert POLICY.default_due(tokyo(1, 18, 59)) == DAY_END


def test_default_due_uses_the_local_date_not_the_utc_one():
    # 00:30 on 2 June in Tokyo is still 1 June in UTC; the day end is 19:00 on 2 June, Tokyo time.
    just_after_midnight = tokyo(2, 0, 30)
    assert just_after_midnight.date().day == 1
    assert POLICY.default_due(just_after_midnight) == tokyo(2, 19)


@pytest.mark.parametrize("hour, minute", [(19, 0), (19, 1), (20, 0), (23, 59)])
def test_default_due_at_or_after_day_end_is_local_midnight(hour, minute):
    now = tokyo(1, hour, minute)
    due = POLICY.default_due(now)
    assert due > now
    assert due == tokyo(2, 0, 0)


def test_is_long_around_the_day_end():
    assert not POLICY.is_long(MORNING, DAY_END)
    assert not POLICY.is_long(MORNING, DAY_END - timedelta(minutes=1))
    assert POLICY.is_long(MORNING, DAY_END + timedelta(minutes=1))
    assert POLICY.is_long(MORNING, tokyo(2, 9))  # overnight
    assert POLICY.is_long(MORNING, tokyo(4, 19))  # several days
    evening = tokyo(1, 20)
    assert not POLICY.is_long(evening, tokyo(1, 23, 59))
    assert POLICY.is_long(evening, tokyo(2, 0, 1))


def test_another_day_end_and_zone():
    pol = Policy(timezone="Europe/London", day_end=time(17, 30))
    now = datetime(2026, 1, 15, 9, 0, tzinfo=UTC)  # winter: London is UTC
    assert pol.default_due(now) == datetime(2026, 1, 15, 17, 30, tzinfo=UTC)
    summer = datetime(2026, 7, 15, 9, 0, tzinfo=UTC)  # BST: 17:30 local is 16:30 UTC
    assert pol.default_due(summer) == datetime(2026, 7, 15, 16, 30, tzinfo=UTC)


# --- handling rules on the first check-out of the local day ---------------------------------------------


def _out_and_back(session, item, user, at, hours=1):
    custody.check_out(session, at, item=item, holder=user, actor=user, due_at=at + timedelta(hours=hours))
    session.flush()
    custody.return_item(session, at + timedelta(minutes=30), item=item, actor=user)
    session.commit()


def test_handling_ack_needed_only_for_first_checkout_of_the_day(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.personal)
    assert POLICY.needs_handling_ack(session, MORNING, item)
    _out_and_back(session, item, alice, MORNING)
    assert not POLICY.needs_handling_ack(session, tokyo(1, 15), item)
    assert not POLICY.needs_handling_ack(session, tokyo(1, 23, 59), item)
    assert POLICY.needs_handling_ack(session, tokyo(2, 0, 0), item)  # a new local day
    assert POLICY.needs_handling_ack(session, tokyo(2, 9), item)


def test_handling_ack_counts_a_checkout_at_0030_on_the_local_date(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.sensitive)
    after_midnight = tokyo(2, 0, 30)  # 15:30 UTC on 1 June
    _out_and_back(session, item, alice, after_midnight)
    # Later on 2 June (local) the rules were already shown today: no ack needed,
    # although in UTC the first check-out was on 1 June and this moment is on 2 June.
    morning = tokyo(2, 9, 30)  # 00:30 UTC on 2 June
    assert morning.date() != after_midnight.date()
    assert not POLICY.needs_handling_ack(session, morning, item)


def test_handling_ack_does_not_carry_over_from_the_previous_local_evening(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.personal)
    late = tokyo(1, 23, 0)  # 14:00 UTC on 1 June
    _out_and_back(session, item, alice, late)
    early = tokyo(2, 8, 0)  # 23:00 UTC on 1 June: same UTC date, next local date
    assert early.date() == late.date()
    assert POLICY.needs_handling_ack(session, early, item)


def test_no_handling_ack_for_items_without_personal_data(session, make_item):
    item = make_item(data_class=DataClass.none)
    assert not POLICY.needs_handling_ack(session, MORNING, item)


def test_check_out_with_policy_asks_for_the_handling_rules(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item(data_class=DataClass.personal)
    with pytest.raises(HandlingAckRequired):
        custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=DAY_END, policy=POLICY)
    session.rollback()
    assert custody.open_checkout(session, item) is None
    custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=DAY_END, policy=POLICY,
                      handling_ack=True)
    session.flush()
    custody.return_item(session, tokyo(1, 12), item=item, actor=alice)
    session.commit()
    # The second check-out of the day does not ask again.
    co = custody.check_out(session, tokyo(1, 13), item=item, holder=bob, actor=bob, due_at=DAY_END,
                           policy=POLICY)
    session.commit()
    assert co.holder_id == bob.id
    ev = events(session, "checkout")
    assert [json.loads(e.data)["handling_rules_acknowledged"] for e in ev] == [True, False]


# --- long check-outs and approval -------------------------------------------------------------------------


def test_long_checkout_needs_a_reason(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.none)
    overnight = tokyo(2, 10)
    with pytest.raises(ReasonRequired):
        custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=overnight, policy=POLICY)
    with pytest.raises(ReasonRequired):
        custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=overnight, policy=POLICY,
                          reason="   ")
    session.rollback()
    assert custody.open_checkout(session, item) is None
    co = custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=overnight, policy=POLICY,
                           reason="client visit in Osaka tomorrow morning")
    session.commit()
    assert co.reason == "client visit in Osaka tomorrow morning" and co.due_at == overnight


def test_short_checkout_needs_no_reason(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.none)
    co = custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=DAY_END, policy=APPROVAL)
    session.commit()
    assert co.reason is None


def test_approval_required_stops_staff_but_not_security(session, make_user, make_item):
    alice, desk, item = make_user(), make_user("security"), make_item(data_class=DataClass.none)
    overnight = tokyo(2, 10)
    with pytest.raises(ApprovalRequired):
        custody.check_out(session, MORNING, item=item, holder=alice, actor=alice, due_at=overnight, policy=APPROVAL,
                          reason="trip")
    session.rollback()
    assert custody.open_checkout(session, item) is None
    co = custody.check_out(session, MORNING, item=item, holder=desk, actor=desk, due_at=overnight, policy=APPROVAL,
                           reason="trip")
    session.commit()
    assert co.holder_id == desk.id


def test_request_then_approve_checks_out_to_the_requester(session, make_user, make_item):
    alice, desk, item = make_user(), make_user("security"), make_item(data_class=DataClass.personal)
    overnight = tokyo(3, 12)
    req = approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=overnight, purpose="audit",
                                   destination="Nagoya office", reason="two-day audit", policy=APPROVAL,
                                   handling_ack=True)
    session.commit()
    assert req.status == RequestStatus.pending
    assert custody.open_checkout(session, item) is None
    decided_at = MORNING + timedelta(minutes=5)
    approvals.decide_request(session, decided_at, request=req, actor=desk, approve=True, note="ok", policy=APPROVAL)
    session.commit()
    co = custody.open_checkout(session, item)
    assert co is not None
    assert co.holder_id == alice.id
    assert (co.due_at, co.purpose, co.destination, co.reason) == (overnight, "audit", "Nagoya office",
                                                                 "two-day audit")
    assert co.out_at == decided_at
    assert req.status == RequestStatus.approved and req.checkout_id == co.id
    assert req.decided_by_id == desk.id and req.decided_at == decided_at
    requested = events(session, "checkout_requested")
    approved = events(session, "checkout_approved")
    assert len(requested) == 1 and requested[0].actor_id == alice.id and requested[0].item_id == item.id
    assert len(approved) == 1 and approved[0].actor_id == desk.id and approved[0].subject_user_id == alice.id
    assert [e.subject_user_id for e in events(session, "checkout") if e.item_id == item.id] == [alice.id]


def test_request_then_deny_leaves_the_item_in(session, make_user, make_item):
    alice, desk, item = make_user(), make_user("security"), make_item(data_class=DataClass.none)
    req = approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=tokyo(2, 12),
                                   purpose="", destination="", reason="overnight", policy=APPROVAL)
    session.commit()
    approvals.decide_request(session, MORNING, request=req, actor=desk, approve=False, policy=APPROVAL)
    session.commit()
    assert req.status == RequestStatus.denied
    assert custody.open_checkout(session, item) is None
    assert session.scalar(select(func.count(Checkout.id)).where(Checkout.item_id == item.id)) == 0
    assert len(events(session, "checkout_denied")) == 1
    with pytest.raises(InvalidInput):  # decided once only
        approvals.decide_request(session, MORNING, request=req, actor=desk, approve=True, policy=APPROVAL)


def test_request_needs_a_reason(session, make_user, make_item):
    alice, item = make_user(), make_item(data_class=DataClass.none)
    with pytest.raises(ReasonRequired):
        approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=tokyo(2, 12),
                                 purpose="", destination="", reason=" ", policy=APPROVAL)


def test_second_pending_request_by_someone_else_is_refused(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item(data_class=DataClass.none)
    due = tokyo(2, 12)
    first = approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=due, purpose="",
                                     destination="", reason="a", policy=APPROVAL)
    session.commit()
    # The same person asking again (a double tap) gets the same request back.
    again = approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=due, purpose="",
                                     destination="", reason="a", policy=APPROVAL)
    assert again.id == first.id
    with pytest.raises(InvalidInput):
        approvals.request_checkout(session, MORNING, item=item, holder=bob, due_at=due, purpose="",
                                 destination="", reason="b", policy=APPROVAL)
    session.rollback()
    assert session.scalar(select(func.count(CheckoutRequest.id)).where(CheckoutRequest.item_id == item.id)) == 1


def test_database_refuses_a_second_pending_request(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item(data_class=DataClass.none)
    due = tokyo(2, 12)

    def row(user, status=RequestStatus.pending):
        return CheckoutRequest(item_id=item.id, requester_id=user.id, requested_at=MORNING, due_at=due,
                               reason="r", status=status)

    session.add(row(alice))
    session.commit()
    session.add(row(bob, RequestStatus.denied))  # decided requests do not count
    session.commit()
    session.add(row(bob))
    with pytest.raises(IntegrityError):
        session.flush()
    session.rollback()


def test_staff_cannot_decide_requests(session, make_user, make_item):
    alice, bob, item = make_user(), make_user(), make_item(data_class=DataClass.none)
    req = approvals.request_checkout(session, MORNING, item=item, holder=alice, due_at=tokyo(2, 12),
                                   purpose="", destination="", reason="r", policy=APPROVAL)
    session.commit()
    for who in (bob, alice):
        with pytest.raises(NotPermitted):
            approvals.decide_request(session, MORNING, request=req, actor=who, approve=True, policy=APPROVAL)
    session.rollback()
    assert req.status == RequestStatus.pending
    assert custody.open_checkout(session, item) is None


def test_bag_with_personal_data_inside_asks_for_the_handling_rules(session, make_user, make_item):
    """Taking out a bag takes out what is in it: a personal-data item inside needs the rules too."""
    alice = make_user()
    bag = make_item(kind="bag", data_class=DataClass.none)
    make_item(kind="usb", bag=bag, data_class=DataClass.personal)
    with pytest.raises(HandlingAckRequired):
        custody.check_out(session, MORNING, item=bag, holder=alice, actor=alice, due_at=DAY_END, policy=POLICY)
    session.rollback()
    assert custody.open_checkout(session, bag) is None
    custody.check_out(session, MORNING, item=bag, holder=alice, actor=alice, due_at=DAY_END, policy=POLICY,
                      handling_ack=True)
    session.commit()
