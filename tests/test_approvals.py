"""Multi-step take-out approvals (上長承認) as the rules see them: the steps a rule asks for, who may decide (the
approver, their deputy, the desk), each decision an event, the last approval taking the item out under the rule the
request was made under, rejection, cancellation, expiry, approvals in advance, and the races the database settles."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.helpers import at_once, events, tokyo
from tracker.custody import approvals, rules
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.errors import ApprovalRequired, InvalidInput, NotPermitted, ReasonRequired
from tracker.models import (
    Approval,
    ApprovalStep,
    Checkout,
    CheckoutRequest,
    DataClass,
    Event,
    Kind,
    Overnight,
    RequestStatus,
    User,
)

pytestmark = pytest.mark.postgres  # the conditional UPDATEs, the row locks and the lists' SQL

POLICY = Policy()
POLICY_TZ = ZoneInfo(POLICY.timezone)
MORNING = tokyo(1, 9)  # Monday 1 June 2026, 09:00 in Tokyo
TONIGHT = tokyo(1, 18)  # the same day: no reason needed
OVERNIGHT = tokyo(2, 12)


@pytest.fixture
def people(make_user, make_department):
    """A sales department whose manager is Mori (deputy Abe); Hanako works there; Desk is the security desk."""
    mori, abe = make_user(name="Mori Manager"), make_user(name="Abe Deputy")
    sales = make_department("Sales", managers=[mori])
    hanako = make_user(name="Hanako Yamada", department_id=sales.id)
    return {"mori": mori, "abe": abe, "hanako": hanako, "desk": make_user("security", name="Desk One"),
            "other": make_user(name="Someone Else"), "admin": make_user("admin", name="Rule Admin"), "sales": sales}


@pytest.fixture
def deputy(session, people):
    people["mori"].deputy_id = people["abe"].id
    session.commit()


def _rule(session, admin, approval, approvers=(), **kw):
    base = rules.Rule(kind=Kind.laptop.value, data_class=DataClass.personal.value, approval=approval,
                      approvers=tuple(approvers), handling_ack=False, **kw)
    saved = rules.save(session, MORNING - timedelta(days=1), base, actor=admin)
    session.commit()
    return saved


def _ask(session, item, who, due=TONIGHT, reason="", **kw):
    req = approvals.request_checkout(session, MORNING, item=item, holder=who, due_at=due, purpose="Client visit",
                                     destination="Osaka", reason=reason, policy=POLICY, handling_ack=True, **kw)
    session.commit()
    return req


def _decide(session, req, who, approve=True, at=MORNING + timedelta(minutes=5), **kw):
    result = approvals.decide(session, at, request=req, actor=who, approve=approve, policy=POLICY, **kw)
    session.commit()
    return result


def _data(event: Event) -> dict:
    return json.loads(event.data)


# --- the steps a rule asks for ---------------------------------------------------------------------------------


def test_the_holders_manager_approves_and_the_item_goes_out_at_once(session, people, make_item):
    rule = _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    with pytest.raises(ApprovalRequired):
        custody.check_out(session, MORNING, item=laptop, holder=people["hanako"], actor=people["hanako"],
                          due_at=TONIGHT, policy=POLICY, handling_ack=True)
    session.rollback()
    req = _ask(session, laptop, people["hanako"])  # a same-day take-out: no reason asked
    assert [(s.position, s.who) for s in req.steps] == [(1, "manager")]
    assert rules.Rule.from_snapshot(req.rule).version == rule.version
    assert req.expires_at == tokyo(2, 0)  # the end of the request's local day
    assert [u.name for u in approvals.awaited(session, req)] == ["Mori Manager"]
    assert custody.open_checkout(session, laptop) is None

    _decide(session, req, people["mori"], note="fine")
    co = custody.open_checkout(session, laptop)
    assert co.holder_id == people["hanako"].id and co.due_at == TONIGHT and co.destination == "Osaka"
    assert req.status == RequestStatus.approved and req.checkout_id == co.id
    (step,) = events(session, "approval_step_approved")
    assert step.actor_id == people["mori"].id and step.subject_user_id == people["hanako"].id
    assert _data(step)["who"] == "manager" and _data(step)["on_behalf"] == "" and _data(step)["note"] == "fine"
    assert len(events(session, "checkout_approved")) == 1 and len(events(session, "checkout", item=laptop)) == 1


def test_a_section_without_a_manager_asks_the_manager_of_its_division(session, people, make_item, make_user,
                                                                      make_department):
    """A section (課) with no manager of its own, inside Sales (部): Mori decides, finds it in his list and in the
    header's count, and the step keeps whose managers decide. A manager asking goes one level further up."""
    _rule(session, people["admin"], Approval.manager)
    section = make_department("Sales 1", parent=people["sales"])
    taro = make_user(name="Taro Section", department_id=section.id)
    req = _ask(session, make_item(kind=Kind.laptop), taro)
    assert [(s.who, s.department_id) for s in req.steps] == [("manager", people["sales"].id)]
    assert [u.name for u in approvals.awaited(session, req)] == ["Mori Manager"]
    assert approvals.waiting_count(session, people["mori"], MORNING) == 1
    assert [r.id for r in approvals.waiting_for(session, people["mori"], MORNING)] == [req.id]
    assert approvals.waiting_count(session, people["other"], MORNING) == 0
    _decide(session, req, people["mori"])
    assert req.status == RequestStatus.approved

    # Mori, the only manager of Sales, asks himself: the head office's manager decides, not the desk by default.
    head = make_department("Head office", managers=[make_user(name="Kato Director")])
    people["sales"].parent_id = head.id
    people["mori"].department_id = people["sales"].id
    session.commit()
    own = _ask(session, make_item(kind=Kind.laptop), people["mori"])
    assert own.steps[0].department_id == head.id
    assert [u.name for u in approvals.awaited(session, own)] == ["Kato Director"]


def test_with_no_manager_up_the_tree_the_desk_decides(session, people, make_item, make_user, make_department):
    """...and finds it in its list and the header's count, as a step nobody else can decide."""
    _rule(session, people["admin"], Approval.manager)
    alone = make_department("Alone")
    nobody = make_user(name="No Boss", department_id=alone.id)
    req = _ask(session, make_item(kind=Kind.laptop), nobody)
    assert approvals.awaited(session, req) == []  # the security desk's
    assert [r.id for r in approvals.waiting_for(session, people["desk"], MORNING)] == [req.id]
    assert approvals.waiting_count(session, people["desk"], MORNING) == 1
    assert approvals.waiting_count(session, people["mori"], MORNING) == 0
    _decide(session, req, people["desk"])
    assert req.status == RequestStatus.approved
    assert approvals.waiting_count(session, people["desk"], MORNING) == 0


def test_a_step_whose_approvers_are_gone_waits_in_the_desks_list(session, people, make_user, make_item,
                                                                 make_department):
    """A named approver disabled after the request, and a department whose only manager is the one asking: nobody
    decides those steps in their own name, so the desk's list has them (their pages say the desk decides)."""
    named = make_user(name="Named One")
    rules.save(session, MORNING - timedelta(days=1), rules.Rule(
        kind=Kind.usb.value, data_class=DataClass.personal.value, approval=Approval.named, approvers=(named.id,)),
        actor=people["admin"])
    session.commit()
    by_name = _ask(session, make_item(kind=Kind.usb), people["hanako"])
    assert [r.id for r in approvals.waiting_for(session, people["desk"], MORNING)] == []  # Named One decides
    named.active = False
    session.commit()
    assert approvals.awaited(session, by_name) == []
    assert [r.id for r in approvals.waiting_for(session, people["desk"], MORNING)] == [by_name.id]

    _rule(session, people["admin"], Approval.manager)
    boss = make_user(name="Only Boss")
    own = make_department("Own", managers=[boss])
    boss.department_id = own.id
    session.commit()
    req = approvals.request_checkout(session, MORNING, item=make_item(kind=Kind.laptop), holder=boss, due_at=TONIGHT,
                                     purpose="p", destination="d", reason="", policy=POLICY, handling_ack=True)
    session.commit()
    assert req.steps[0].department_id == own.id  # no department above: the step stays Own's, whose manager asks
    assert approvals.awaited(session, req) == []
    assert {r.id for r in approvals.waiting_for(session, people["desk"], MORNING)} == {by_name.id, req.id}
    assert approvals.waiting_count(session, boss, MORNING) == 0


def test_manager_then_desk_waits_for_both_in_order(session, people, make_item):
    _rule(session, people["admin"], Approval.manager_desk)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    assert [s.who for s in req.steps] == ["manager", "desk"]
    _decide(session, req, people["mori"])
    assert req.status == RequestStatus.pending and custody.open_checkout(session, laptop) is None
    assert approvals.current_step(req).who == "desk"
    with pytest.raises(NotPermitted):  # the manager has had their turn; the desk's is the desk's
        _decide(session, req, people["mori"])
    session.rollback()
    _decide(session, req, people["desk"])
    assert custody.open_checkout(session, laptop).holder_id == people["hanako"].id
    assert [(_data(e)["who"], _data(e)["on_behalf"]) for e in events(session, "approval_step_approved")] == [
        ("manager", ""), ("desk", "")]


def test_named_approvers_decide_in_their_order(session, people, make_user, make_item):
    first, second, third = make_user(name="First"), make_user(name="Second"), make_user(name="Third")
    _rule(session, people["admin"], Approval.named, approvers=(first.id, second.id, third.id))
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    assert [(s.who, s.approver_id) for s in req.steps] == [("user", first.id), ("user", second.id),
                                                           ("user", third.id)]
    with pytest.raises(NotPermitted):  # not their turn yet
        _decide(session, req, second)
    session.rollback()
    for who in (first, second):
        _decide(session, req, who)
        assert custody.open_checkout(session, laptop) is None
    _decide(session, req, third)
    assert custody.open_checkout(session, laptop) is not None
    assert [e.actor_id for e in events(session, "approval_step_approved")] == [first.id, second.id, third.id]


def test_overnight_approval_without_approvers_is_the_desks_as_before(session, people, make_item):
    laptop = make_item(kind=Kind.laptop)
    req = approvals.request_checkout(session, MORNING, item=laptop, holder=people["hanako"], due_at=OVERNIGHT,
                                     purpose="", destination="", reason="trip", handling_ack=True,
                                     policy=replace(POLICY, approval_required=True))
    session.commit()
    assert [s.who for s in req.steps] == ["desk"] and approvals.awaited(session, req) == []
    approvals.decide_request(session, MORNING, request=req, actor=people["desk"], approve=True)
    session.commit()
    assert custody.open_checkout(session, laptop).due_at == OVERNIGHT


def test_only_an_overnight_request_needs_a_reason(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    with pytest.raises(ReasonRequired):
        _ask(session, laptop, people["hanako"], due=OVERNIGHT, reason=" ")
    session.rollback()
    assert _ask(session, laptop, people["hanako"], due=OVERNIGHT, reason="Two-day audit").reason == "Two-day audit"


# --- who may decide --------------------------------------------------------------------------------------------


def test_a_deputy_decides_for_the_absent_manager_and_the_event_says_so(session, people, deputy, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    _decide(session, req, people["abe"])
    step = req.steps[0]
    assert step.decided_by_id == people["abe"].id and step.on_behalf == "deputy"
    (event,) = events(session, "approval_step_approved")
    assert _data(event)["on_behalf"] == "deputy" and _data(event)["on_behalf_of"] == [people["mori"].email]
    assert custody.open_checkout(session, laptop) is not None


def test_the_desk_decides_for_an_approver_on_their_behalf(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    _decide(session, req, people["desk"], approve=False, note="Not this week")
    assert req.steps[0].on_behalf == "desk" and req.status == RequestStatus.denied and req.note == "Not this week"
    (event,) = events(session, "approval_step_rejected")
    assert _data(event)["on_behalf"] == "desk" and event.actor_id == people["desk"].id
    assert len(events(session, "checkout_denied")) == 1 and custody.open_checkout(session, laptop) is None


def test_nobody_else_decides_not_even_the_requester_who_manages_their_own_department(session, people, make_item,
                                                                                    make_user):
    _rule(session, people["admin"], Approval.manager)
    boss = make_user(name="Self Approver", department_id=people["sales"].id)
    people["sales"].managers.append(boss)
    session.commit()
    mine, theirs = make_item(kind=Kind.laptop), make_item(kind=Kind.laptop)
    own = _ask(session, mine, boss)
    req = _ask(session, theirs, people["hanako"])
    before = session.scalar(select(func.count(Event.id)))
    for who, request in ((people["other"], req), (people["hanako"], req), (boss, own)):
        with pytest.raises(NotPermitted):
            _decide(session, request, who)
        session.rollback()
    assert session.scalar(select(func.count(Event.id))) == before
    assert all(s.decision is None for s in req.steps + own.steps)
    assert [u.name for u in approvals.awaited(session, own)] == ["Mori Manager"]  # never the requester


def test_a_rejection_ends_the_request_and_later_steps_never_come(session, people, make_item):
    _rule(session, people["admin"], Approval.manager_desk)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    _decide(session, req, people["mori"], approve=False)
    assert req.status == RequestStatus.denied and req.steps[1].decision is None
    with pytest.raises(InvalidInput, match="already rejected"):
        _decide(session, req, people["desk"])
    session.rollback()
    assert custody.open_checkout(session, laptop) is None


# --- the rule it was made under --------------------------------------------------------------------------------


def test_a_rule_changed_while_the_request_waits_does_not_apply_to_it(session, people, make_user, make_item):
    first = _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"], due=OVERNIGHT, reason="Audit")
    stranger = make_user(name="New Approver")
    rules.save(session, MORNING, replace(first, approval=Approval.named, approvers=(stranger.id,),
                                         overnight=Overnight.forbidden), actor=people["admin"])
    session.commit()
    with pytest.raises(NotPermitted):  # the new rule's approver is not this request's
        _decide(session, req, stranger)
    session.rollback()
    _decide(session, req, people["mori"])  # the old rule's manager; overnight allowed as it was then
    assert custody.open_checkout(session, laptop).due_at == OVERNIGHT
    assert approvals.rule_of(req).version == first.version and approvals.rule_of(req).approval == Approval.manager


def test_a_request_from_before_steps_is_the_desks(session, people, make_item):
    laptop = make_item(kind=Kind.laptop)
    old = CheckoutRequest(item_id=laptop.id, requester_id=people["hanako"].id, requested_at=MORNING,
                          due_at=OVERNIGHT, reason="old", status=RequestStatus.pending)
    session.add(old)
    session.commit()
    with pytest.raises(NotPermitted):
        _decide(session, old, people["mori"])
    session.rollback()
    _decide(session, old, people["desk"])
    assert old.status == RequestStatus.approved and [s.who for s in old.steps] == ["desk"]


# --- cancel, expiry, approvals in advance ----------------------------------------------------------------------


def test_the_requester_cancels_and_the_approver_is_told_so(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    with pytest.raises(NotPermitted):
        approvals.cancel(session, MORNING, request=req, actor=people["mori"])
    session.rollback()
    approvals.cancel(session, MORNING, request=req, actor=people["hanako"])
    session.commit()
    assert req.status == RequestStatus.cancelled and len(events(session, "checkout_request_cancelled")) == 1
    with pytest.raises(InvalidInput, match="requester cancelled"):
        _decide(session, req, people["mori"])
    session.rollback()
    assert custody.open_checkout(session, laptop) is None
    again = _ask(session, laptop, people["hanako"])  # a new request may follow
    assert again.id != req.id


def test_requests_expire_at_the_end_of_their_day_once_and_cannot_be_approved_after(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop, usb = make_item(kind=Kind.laptop), make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    fresh = approvals.request_checkout(session, tokyo(2, 9), item=usb, holder=people["hanako"], due_at=tokyo(2, 18),
                                       purpose="", destination="", reason="", policy=POLICY, handling_ack=True)
    session.commit()
    with pytest.raises(InvalidInput, match="expired"):  # the job has not run yet: still no
        _decide(session, req, people["mori"], at=tokyo(2, 0, 1))
    session.rollback()
    assert [r.id for r in approvals.expire(session, tokyo(2, 10))] == [req.id]
    session.commit()
    assert approvals.expire(session, tokyo(2, 10)) == []  # once
    assert req.status == RequestStatus.expired and fresh.status == RequestStatus.pending
    (event,) = events(session, "checkout_request_expired")
    assert event.item_id == laptop.id and event.actor_id is None
    with pytest.raises(InvalidInput, match="expired"):
        _decide(session, req, people["mori"], at=tokyo(2, 10))


def test_an_approval_in_advance_is_used_on_its_day_and_only_then(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    friday = tokyo(5, 0).astimezone(POLICY_TZ).date()
    req = approvals.request_checkout(session, MORNING, item=laptop, holder=people["hanako"], due_at=tokyo(5, 18),
                                     purpose="Fair", destination="Makuhari", reason="", policy=POLICY,
                                     handling_ack=True, for_date=friday)
    session.commit()
    assert req.for_date == friday and req.expires_at == tokyo(6, 0)
    # Until then the item goes out to others as usual (no approval is needed for a take-out of a plain laptop).
    _decide(session, req, people["mori"])
    assert req.status == RequestStatus.approved and req.checkout_id is None
    assert custody.open_checkout(session, laptop) is None  # nothing went out on Monday
    me = people["hanako"]
    with pytest.raises(ApprovalRequired):  # on Thursday it is not the approved day
        approvals.take_out(session, tokyo(4, 9), item=laptop, holder=me, actor=me, due_at=tokyo(4, 18),
                           policy=POLICY, handling_ack=True)
    session.rollback()
    co = approvals.take_out(session, tokyo(5, 9), item=laptop, holder=me, actor=me, due_at=tokyo(5, 17),
                            purpose="typed", destination="", reason="", policy=POLICY, handling_ack=True)
    session.commit()
    assert (co.due_at, co.destination) == (tokyo(5, 18), "Makuhari")  # what was approved
    assert req.checkout_id == co.id and len(events(session, "advance_approval_used")) == 1
    assert approvals.expire(session, tokyo(6, 1)) == []  # used: nothing to expire


def test_an_unused_approval_in_advance_expires_after_its_day(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = approvals.request_checkout(session, MORNING, item=laptop, holder=people["hanako"], due_at=tokyo(2, 18),
                                     purpose="", destination="", reason="", policy=POLICY, handling_ack=True,
                                     for_date=tokyo(2, 9).astimezone(POLICY_TZ).date())
    session.commit()
    _decide(session, req, people["mori"])
    assert approvals.expire(session, tokyo(2, 23)) == []
    assert [r.id for r in approvals.expire(session, tokyo(3, 0))] == [req.id]
    session.commit()
    assert req.status == RequestStatus.expired


@pytest.mark.parametrize("days, message", [(-1, "today or later"), (91, "90 days")])
def test_an_approval_in_advance_is_for_a_sensible_date(session, people, make_item, days, message):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    day = MORNING.astimezone(POLICY_TZ).date() + timedelta(days=days)
    with pytest.raises(InvalidInput, match=message):
        approvals.request_checkout(session, MORNING, item=laptop, holder=people["hanako"],
                                   due_at=tokyo(1, 18) + timedelta(days=days), purpose="", destination="",
                                   reason="", policy=POLICY, handling_ack=True, for_date=day)
    session.rollback()
    assert session.scalar(select(func.count(CheckoutRequest.id))) == 0


# --- what waits for whom ---------------------------------------------------------------------------------------


def test_each_approver_sees_what_waits_for_them_now(session, people, deputy, make_user, make_item):
    named = make_user(name="Named One")
    _rule(session, people["admin"], Approval.manager_desk)
    managed = _ask(session, make_item(kind=Kind.laptop), people["hanako"])
    usb_rule = rules.Rule(kind=Kind.usb.value, data_class=DataClass.personal.value, approval=Approval.named,
                          approvers=(named.id,))
    rules.save(session, MORNING, usb_rule, actor=people["admin"])
    session.commit()
    by_name = _ask(session, make_item(kind=Kind.usb), people["hanako"])

    def ids(who):
        return [r.id for r in approvals.waiting_for(session, who, MORNING)]

    assert ids(people["mori"]) == [managed.id] and ids(people["abe"]) == [managed.id]  # the deputy too
    assert ids(named) == [by_name.id] and ids(people["other"]) == [] and ids(people["hanako"]) == []
    assert ids(people["desk"]) == []  # nothing at the desk's own step yet
    _decide(session, managed, people["mori"])
    assert ids(people["mori"]) == [] and ids(people["desk"]) == [managed.id]
    assert approvals.waiting_count(session, people["desk"], MORNING) == 1
    assert ids(people["desk"]) == [managed.id] and approvals.waiting_for(session, named, tokyo(2, 1)) == []


# --- races -----------------------------------------------------------------------------------------------------


def _race(app, *actions):
    """Run each action(session) in its own thread and session at the same moment (at_once); what each one ended
    with: "done", or the refusal's text."""
    def done(action):
        def move(s) -> str:
            action(s)
            return "done"
        return move

    return [str(r) if isinstance(r, InvalidInput) else r
            for r in at_once(app, *map(done, actions), refused=(InvalidInput,))]


def test_two_approvers_at_once_on_one_step_one_wins_the_other_is_told(app, session, people, deputy, make_item):
    _rule(session, people["admin"], Approval.manager_desk)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    step_id, req_id = req.steps[0].id, req.id

    def decide(who_id, approve):
        def act(s):
            approvals.decide(s, MORNING, request=s.get(CheckoutRequest, req_id), actor=s.get(User, who_id),
                             approve=approve, step_id=step_id, policy=POLICY)
        return act

    results = _race(app, decide(people["mori"].id, True), decide(people["abe"].id, False))
    assert sorted(r == "done" for r in results) == [False, True], results
    (loser,) = [r for r in results if r != "done"]
    session.expire_all()
    decided = session.scalars(select(ApprovalStep).where(ApprovalStep.request_id == req_id)
                              .order_by(ApprovalStep.position)).all()
    assert decided[1].decision is None
    if decided[0].decision == "approved":  # Mori won: the desk's turn now; Abe is told who decided
        assert decided[0].decided_by_id == people["mori"].id
        assert "Mori Manager already decided this step" in loser
    else:  # Abe's rejection won: the request is over
        assert decided[0].decided_by_id == people["abe"].id
        assert "already rejected" in loser
    step_events = session.scalar(select(func.count(Event.id)).where(Event.action.like("approval_step_%")))
    assert step_events == 1


def test_approval_and_cancellation_at_once_never_both(app, session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    req = _ask(session, laptop, people["hanako"])
    req_id, step_id, item_id = req.id, req.steps[0].id, laptop.id

    def approve(s):
        approvals.decide(s, MORNING, request=s.get(CheckoutRequest, req_id), actor=s.get(User, people["mori"].id),
                         approve=True, step_id=step_id, policy=POLICY)

    def cancel(s):
        approvals.cancel(s, MORNING, request=s.get(CheckoutRequest, req_id), actor=s.get(User, people["hanako"].id))

    results = _race(app, approve, cancel)
    assert sorted(r == "done" for r in results) == [False, True], results
    session.expire_all()
    final = session.get(CheckoutRequest, req_id)
    out = session.scalar(select(func.count(Checkout.id)).where(Checkout.item_id == item_id))
    if results[0] == "done":
        assert final.status == RequestStatus.approved and out == 1
        assert "already approved" in results[1]
    else:
        assert final.status == RequestStatus.cancelled and out == 0
        assert "requester cancelled" in results[0]


def test_two_expiry_runs_at_once_expire_each_request_once(app, session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    for _ in range(3):
        _ask(session, make_item(kind=Kind.laptop), people["hanako"])
    results = _race(app, lambda s: approvals.expire(s, tokyo(2, 1)), lambda s: approvals.expire(s, tokyo(2, 1)))
    assert results == ["done", "done"]
    session.expire_all()
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "checkout_request_expired")) == 3
    assert session.scalar(select(func.count(CheckoutRequest.id)).where(
        CheckoutRequest.status == RequestStatus.expired)) == 3



def test_an_approval_in_advance_waiting_holds_nothing_back_today(session, people, make_item):
    _rule(session, people["admin"], Approval.manager)
    laptop = make_item(kind=Kind.laptop)
    _ask(session, laptop, people["hanako"], for_date=tokyo(5, 9).astimezone(POLICY_TZ).date(), due=tokyo(5, 18))
    desk = people["desk"]  # the desk needs no approval: it takes the laptop out today despite the waiting request
    co = custody.check_out(session, MORNING, item=laptop, holder=desk, actor=desk, due_at=TONIGHT, policy=POLICY,
                           handling_ack=True)
    session.commit()
    assert co.holder_id == desk.id
