"""Take-out rules per kind and data class: defaults from the site's configuration, saved versions, the
snapshot a request keeps, and bad input refused without a change."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import time

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, at_once, events, reread, tokyo
from tracker.custody import rules
from tracker.custody.policy import Policy
from tracker.errors import InvalidInput
from tracker.models import Approval, DataClass, Event, Kind, Overnight, TakeoutRule

POLICY = Policy()


def test_defaults_follow_the_site_configuration(session, make_item):
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.none)
    r = rules.rule_for(session, usb, POLICY)
    assert r.is_default and r.erasure_on_return and r.handling_ack and r.approval == Approval.nobody
    assert r.overnight == Overnight.allowed
    plain = rules.rule_for(session, laptop, POLICY)
    assert not plain.erasure_on_return and not plain.handling_ack
    assert rules.rule_for(session, laptop, replace(POLICY, approval_required=True)).overnight == Overnight.approval
    assert len(rules.all_rules(session, POLICY)) == len(Kind) * len(DataClass)


def test_saving_makes_a_new_version_and_one_event(session, make_item, make_user):
    admin = make_user("admin")
    boss = make_user("staff")
    usb = make_item(kind=Kind.usb, data_class=DataClass.my_number)
    first = rules.save(session, NOW, replace(rules.recommended("usb", "my_number")), actor=admin)
    session.commit()
    assert first.version == 1 and first.curfew == time(18, 0) and first.witness
    second = rules.save(session, NOW, replace(first, approval=Approval.named, approvers=(boss.id,)), actor=admin)
    session.commit()
    assert second.version == 2 and rules.rule_for(session, usb, POLICY).approvers == (boss.id,)
    changed = events(session, "rule_changed")
    assert len(changed) == 2
    data = json.loads(changed[-1].data)
    assert data["before"]["approval"] == "manager_desk" and data["after"]["approvers"] == [boss.id]
    assert rules.Rule.from_snapshot(second.snapshot()) == second


@pytest.mark.parametrize("change", [
    {"approval": Approval.named, "approvers": ()},
    {"approval": Approval.named, "approvers": (1, 1)},
    {"approval": Approval.named, "approvers": (999999,)},
    {"max_hours": 0},
    {"escalate_after_hours": 10000},
    {"kind": "spaceship"},
])
def test_bad_rules_are_refused_and_change_nothing(session, make_user, change):
    admin = make_user("admin")
    with pytest.raises(InvalidInput):
        rules.save(session, NOW, replace(rules.default("usb", "personal", POLICY), **change), actor=admin)
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TakeoutRule)) == 0
    assert events(session, "rule_changed") == []


def test_a_rule_that_forbids_overnight_refuses_a_long_take_out_by_name_and_one_that_asks_approval_waits(
        session, make_user, make_item):
    from tracker.custody import operations as custody
    from tracker.errors import ApprovalRequired, RuleBroken

    admin, staff = make_user("admin"), make_user("staff")
    usb = make_item(kind=Kind.usb, data_class=DataClass.my_number)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.personal)
    rules.save(session, NOW, rules.recommended("usb", "my_number"), actor=admin)
    rules.save(session, NOW, rules.recommended("laptop", "personal"), actor=admin)
    session.commit()
    tomorrow = POLICY.default_due(NOW) + (POLICY.default_due(NOW) - NOW)
    with pytest.raises(RuleBroken) as refused:
        custody.check_out(session, NOW, item=usb, holder=staff, actor=staff, due_at=tomorrow, reason="visit",
                          handling_ack=True, policy=POLICY)
    assert refused.value.params == {"kind": "usb", "data_class": "my_number"} and refused.value.about == "due_at"
    with pytest.raises(ApprovalRequired):  # overnight needs approval under the recommended personal-data rule
        custody.check_out(session, NOW, item=laptop, holder=staff, actor=staff, due_at=tomorrow, reason="visit",
                          handling_ack=True, policy=POLICY)
    session.rollback()
    co = custody.check_out(session, NOW, item=laptop, holder=staff, actor=staff, due_at=POLICY.default_due(NOW),
                           handling_ack=True, policy=POLICY)  # today only: no approval needed
    assert co.id is not None and not rules.needs_approval(rules.rule_for(session, laptop, POLICY), long=False)


# --- enforcement: curfews, maximum durations, strict due times ----------------------------------------------------


def _rule(session, admin, kind, data_class, **fields) -> rules.Rule:
    saved = rules.save(session, NOW, replace(rules.default(kind, data_class, POLICY), **fields), actor=admin)
    session.commit()
    return saved


def _out(session, item, holder, now, due_at, **kw):
    from tracker.custody import operations as custody

    return custody.check_out(session, now, item=item, holder=holder, actor=kw.pop("actor", holder), due_at=due_at,
                             reason=kw.pop("reason", ""), handling_ack=True, policy=POLICY, **kw)


def test_a_curfew_refuses_a_take_out_due_later_or_after_it_by_name_and_caps_the_default_due(
        session, make_user, make_item):
    from tracker.errors import RuleBroken

    admin, staff = make_user("admin"), make_user("staff")
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    rule = _rule(session, admin, "usb", "personal", curfew=time(18, 0))
    with pytest.raises(RuleBroken) as late:
        _out(session, usb, staff, tokyo(1, 10), tokyo(1, 19))  # the day end, past the curfew
    assert late.value.params == {"kind": "usb", "data_class": "personal", "curfew": "18:00"}
    assert late.value.about == "due_at"
    session.rollback()
    with pytest.raises(RuleBroken):  # after the curfew nothing goes out today, however short
        _out(session, usb, staff, tokyo(1, 18, 30), tokyo(1, 18, 45))
    session.rollback()
    assert rules.due_by([rule], tokyo(1, 10), POLICY) == tokyo(1, 18)
    assert rules.due_by([rule], tokyo(1, 18, 30), POLICY) == tokyo(1, 19)  # past it: the day end, then refused
    co = _out(session, usb, staff, tokyo(1, 10), rules.due_by([rule], tokyo(1, 10), POLICY))
    session.commit()
    assert co.due_at == tokyo(1, 18) and co.strict_due
    assert json.loads(events(session, "checkout")[-1].data)["strict_due"] is True


def test_a_curfew_with_overnight_needing_approval_sends_the_take_out_for_approval(session, make_user, make_item):
    from tracker.errors import ApprovalRequired

    admin, staff, desk = make_user("admin"), make_user("staff"), make_user("security")
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    rule = _rule(session, admin, "usb", "personal", curfew=time(18, 0), overnight=Overnight.approval)
    assert rules.goes_past(rule, tokyo(1, 10), tokyo(1, 19), POLICY)
    assert rules.needs_approval(rule, rules.goes_past(rule, tokyo(1, 10), tokyo(1, 19), POLICY))
    assert not rules.needs_approval(rule, rules.goes_past(rule, tokyo(1, 10), tokyo(1, 17), POLICY))
    with pytest.raises(ApprovalRequired):
        _out(session, usb, staff, tokyo(1, 10), tokyo(1, 19))
    session.rollback()
    co = _out(session, usb, staff, tokyo(1, 10), tokyo(1, 19), actor=desk)  # the desk may allow it
    assert co.due_at == tokyo(1, 19) and co.strict_due


def test_a_maximum_duration_refuses_a_longer_take_out_and_caps_the_default_due(session, make_user, make_item):
    from tracker.errors import RuleBroken

    admin, staff = make_user("admin"), make_user("staff")
    folder = make_item(kind=Kind.folder, data_class=DataClass.sensitive)
    rule = _rule(session, admin, "folder", "sensitive", max_hours=4)
    with pytest.raises(RuleBroken) as long:
        _out(session, folder, staff, tokyo(1, 10), tokyo(1, 14, 1))
    assert long.value.params["hours"] == 4
    session.rollback()
    assert rules.due_by([rule], tokyo(1, 10), POLICY) == tokyo(1, 14)
    assert rules.due_by([rule], tokyo(1, 17), POLICY) == tokyo(1, 19)  # the day end comes first
    assert _out(session, folder, staff, tokyo(1, 10), tokyo(1, 14)).strict_due


def test_a_bag_keeps_the_curfew_of_what_is_in_it(session, make_user, make_item):
    from tracker.errors import RuleBroken

    admin, staff = make_user("admin"), make_user("staff")
    bag = make_item(kind=Kind.bag, data_class=DataClass.none)
    make_item(kind=Kind.usb, data_class=DataClass.personal, bag=bag)
    _rule(session, admin, "usb", "personal", curfew=time(18, 0))
    session.refresh(bag)
    assert rules.due_by(rules.governing(session, bag, POLICY), tokyo(1, 10), POLICY) == tokyo(1, 18)
    with pytest.raises(RuleBroken):
        _out(session, bag, staff, tokyo(1, 10), tokyo(1, 19))


def test_a_rule_changed_later_leaves_an_open_check_out_as_it_was(session, make_user, make_item):
    from tracker.desk import sweep

    admin, staff = make_user("admin"), make_user("staff")
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.personal)
    co = _out(session, laptop, staff, tokyo(1, 9), tokyo(1, 19))
    session.commit()
    _rule(session, admin, "laptop", "personal", curfew=time(12, 0), max_hours=1)
    session.expire_all()
    assert co.due_at == tokyo(1, 19) and not co.strict_due
    assert sweep.sweep_strict(session, tokyo(1, 18), POLICY).flag_ids == []


# --- the witness (two-person rule) --------------------------------------------------------------------------------


def test_a_witness_rule_needs_another_active_person_recorded_on_the_check_out(session, make_user, make_item):
    from tracker.errors import NotPermitted, WitnessRequired

    admin, staff, colleague = make_user("admin"), make_user("staff"), make_user("staff")
    gone = make_user("staff", active=False)
    folder = make_item(kind=Kind.folder, data_class=DataClass.my_number)
    _rule(session, admin, "folder", "my_number", witness=True)
    due = tokyo(1, 19)
    with pytest.raises(WitnessRequired) as missing:
        _out(session, folder, staff, tokyo(1, 10), due)
    assert missing.value.about == "witness"
    session.rollback()
    with pytest.raises(InvalidInput) as self_witness:
        _out(session, folder, staff, tokyo(1, 10), due, witness=staff)
    assert self_witness.value.about == "witness"
    session.rollback()
    with pytest.raises(NotPermitted):
        _out(session, folder, staff, tokyo(1, 10), due, witness=gone)
    session.rollback()
    assert events(session, "checkout") == []
    co = _out(session, folder, staff, tokyo(1, 10), due, witness=colleague)
    session.commit()
    assert co.witness_id == colleague.id
    assert json.loads(events(session, "checkout")[-1].data)["witness"] == colleague.email


def test_a_witness_confirms_with_their_own_password_throttled_like_a_sign_in(session, make_user):
    from tests.helpers import PASSWORD
    from tracker.accounts import signin

    colleague = make_user("staff")
    assert signin.confirm_witness(session, NOW, colleague.email, PASSWORD, "10.0.0.1").id == colleague.id
    for _ in range(5):
        with pytest.raises(signin.WitnessFailed):
            signin.confirm_witness(session, NOW, colleague.email, "wrong", "10.0.0.1")
        session.commit()  # the view commits the failure, so it counts
    with pytest.raises(signin.Throttled):
        signin.confirm_witness(session, NOW, colleague.email, PASSWORD, "10.0.0.1")
    assert len(events(session, "witness_failed")) == 5


# --- erasure and the handling rules by rule ------------------------------------------------------------------------


def test_erasure_at_return_follows_the_rule_and_unset_rules_behave_as_before(session, make_user, make_item):
    from tracker.custody import operations as custody
    from tracker.errors import ErasureRequired

    admin, staff = make_user("admin"), make_user("staff")
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.personal)
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    assert not rules.needs_erasure(session, laptop, POLICY) and rules.needs_erasure(session, usb, POLICY)
    for it in (laptop, usb):
        _out(session, it, staff, tokyo(1, 9), tokyo(1, 19))
    session.commit()
    with pytest.raises(ErasureRequired):  # the default, as configured
        custody.return_item(session, tokyo(1, 12), item=usb, actor=staff, policy=POLICY)
    session.rollback()
    _rule(session, admin, "laptop", "personal", erasure_on_return=True)
    _rule(session, admin, "usb", "personal", erasure_on_return=False)
    with pytest.raises(ErasureRequired):
        custody.return_item(session, tokyo(1, 12), item=laptop, actor=staff, policy=POLICY)
    session.rollback()
    custody.return_item(session, tokyo(1, 12), item=usb, actor=staff, policy=POLICY)
    back = custody.return_item(session, tokyo(1, 12), item=laptop, actor=staff, policy=POLICY, erasure="erased",
                               erasure_method="overwrite")
    assert back.checkout.erasure is not None


def test_the_handling_rules_tick_follows_the_rule_at_the_first_take_out_of_the_day(session, make_user, make_item):
    from tracker.custody import operations as custody
    from tracker.errors import HandlingAckRequired

    admin, staff = make_user("admin"), make_user("staff")
    plain = make_item(kind=Kind.laptop, data_class=DataClass.none)
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    _rule(session, admin, "laptop", "none", handling_ack=True)
    _rule(session, admin, "usb", "personal", handling_ack=False, erasure_on_return=False)
    with pytest.raises(HandlingAckRequired):
        custody.check_out(session, tokyo(1, 9), item=plain, holder=staff, actor=staff, due_at=tokyo(1, 19),
                          policy=POLICY)
    session.rollback()
    custody.check_out(session, tokyo(1, 9), item=usb, holder=staff, actor=staff, due_at=tokyo(1, 19), policy=POLICY)
    custody.check_out(session, tokyo(1, 9), item=plain, holder=staff, actor=staff, due_at=tokyo(1, 19),
                      policy=POLICY, handling_ack=True)
    custody.return_item(session, tokyo(1, 10), item=plain, actor=staff, policy=POLICY)
    session.commit()  # the second take-out of the day asks no more
    custody.check_out(session, tokyo(1, 11), item=plain, holder=staff, actor=staff, due_at=tokyo(1, 19),
                      policy=POLICY)


# --- the curfew sweep ----------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_the_curfew_sweep_flags_a_usb_drive_at_18_00_and_leaves_a_laptop_for_the_day_end(
        app, session, make_user, make_item):
    from tracker import jobs
    from tracker.desk import sweep
    from tracker.models import Flag

    admin, staff = make_user("admin"), make_user("staff")
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.personal)
    rules.apply_recommended(session, NOW, actor=admin, policy=POLICY)
    session.commit()
    stick = _out(session, usb, staff, tokyo(1, 10), rules.due_by(rules.governing(session, usb, POLICY),
                                                                  tokyo(1, 10), POLICY))
    book = _out(session, laptop, staff, tokyo(1, 10), POLICY.default_due(tokyo(1, 10)))
    session.commit()
    assert (stick.due_at, stick.strict_due, book.due_at, book.strict_due) == (tokyo(1, 18), True, tokyo(1, 19), False)

    def flagged():
        reread(session)
        return {f.checkout_id for f in session.scalars(select(Flag))}

    assert jobs.run_curfew_sweep(app, tokyo(1, 17, 59)).flag_ids == [] and flagged() == set()
    assert len(jobs.run_curfew_sweep(app, tokyo(1, 18)).flag_ids) == 1 and flagged() == {stick.id}
    assert jobs.run_curfew_sweep(app, tokyo(1, 18, 1)).flag_ids == []  # once
    assert jobs.run_curfew_sweep(app, tokyo(1, 19)).flag_ids == [] and flagged() == {stick.id}
    sweep.sweep(session, tokyo(1, 19), POLICY)  # the day end flags the laptop, and the drive no second time
    session.commit()
    assert flagged() == {stick.id, book.id}
    assert len(events(session, "flagged")) == 2


def test_the_desk_is_told_a_curfew_passed_not_that_the_day_ended(new_app, make_user, make_item, session):
    from tests.listeners import SmtpServer, smtp_config
    from tracker import jobs

    with SmtpServer() as smtp:
        app = new_app(**smtp_config(smtp), DESK_EMAILS="desk@example.com")
        admin, staff = make_user("admin"), make_user("staff", language="en")
        usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
        rules.apply_recommended(session, NOW, actor=admin, policy=POLICY)
        _out(session, usb, staff, tokyo(1, 10), rules.due_by(rules.governing(session, usb, POLICY), tokyo(1, 10),
                                                             POLICY))
        session.commit()
        assert len(jobs.run_curfew_sweep(app, tokyo(1, 18)).flag_ids) == 1
        (desk,) = smtp.inbox.to("desk@example.com")
        body = desk.get_content()
        assert usb.asset_tag in body and "門限" in body and "終業時" not in body  # the desk reads the site language
        (holder,) = smtp.inbox.to(staff.email)
        assert usb.asset_tag in holder.get_content()


def test_only_admins_save_rules(session, make_user):
    from tracker.errors import NotPermitted

    for role in ("staff", "security"):
        with pytest.raises(NotPermitted):
            rules.save(session, NOW, rules.recommended("usb", "personal"), actor=make_user(role))
    session.rollback()
    assert session.scalar(select(func.count()).select_from(TakeoutRule)) == 0


@pytest.mark.postgres
def test_two_admins_saving_one_rule_at_once_one_is_saved_and_the_other_told(app, make_user):
    """Both changed the version they opened (the default, version 0): the first save makes version 1, and the other
    is refused, naming who saved meanwhile, instead of overwriting that change unseen (last save wins)."""
    admins = [make_user("admin", name=f"Admin {n}") for n in range(2)]
    maker = app.extensions["tracker.sessionmaker"]

    def save_as(admin_id: int, hours: int):
        def move(s) -> str:
            from tracker.models import User

            rule = replace(rules.default("usb", "personal", POLICY), max_hours=hours)
            rules.save(s, NOW, rule, actor=s.get(User, admin_id))
            return f"saved {hours}"
        return move

    outcomes = at_once(app, *[save_as(a.id, n + 1) for n, a in enumerate(admins)], refused=(rules.RuleChanged,))
    saved = [o for o in outcomes if isinstance(o, str)]
    told = [o for o in outcomes if isinstance(o, rules.RuleChanged)]
    assert len(saved) == 1 and len(told) == 1, outcomes
    winner = admins[outcomes.index(saved[0])]
    assert told[0].params["name"] == winner.name
    with maker() as s:
        row = s.scalars(select(TakeoutRule)).one()
        assert (row.version, row.max_hours, row.updated_by_id) == (1, int(saved[0].split()[1]), winner.id)
        changed = [json.loads(e.data) for e in s.scalars(select(Event).where(Event.action == "rule_changed"))]
    assert [c["version"] for c in changed] == [1]


def test_a_change_to_the_version_one_opened_is_saved_and_to_an_older_one_refused(session, make_user):
    first, second = make_user("admin", name="Aiko Admin"), make_user("admin", name="Ben Admin")
    opened = rules.default("usb", "personal", POLICY)  # both open the page at version 0
    rules.save(session, NOW, replace(opened, max_hours=4), actor=first)
    session.commit()
    with pytest.raises(rules.RuleChanged) as refused:
        rules.save(session, NOW, replace(opened, witness=True), actor=second)
    session.rollback()
    assert refused.value.params["name"] == "Aiko Admin"
    now_ = rules.all_rules(session, POLICY)
    current = next(r for r in now_ if (r.kind, r.data_class) == ("usb", "personal"))
    assert (current.version, current.max_hours, current.witness) == (1, 4, False)
    rules.save(session, NOW, replace(current, witness=True), actor=second)  # made again on what is there now
    session.commit()
    current = next(r for r in rules.all_rules(session, POLICY) if (r.kind, r.data_class) == ("usb", "personal"))
    assert (current.version, current.max_hours, current.witness) == (2, 4, True)
