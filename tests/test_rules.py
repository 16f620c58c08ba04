"""Take-out rules per kind and data class: defaults from the site's configuration, saved versions, the
snapshot a request keeps, and bad input refused without a change."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import time

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, events
from tracker.custody import rules
from tracker.custody.policy import Policy
from tracker.errors import InvalidInput
from tracker.models import Approval, DataClass, Kind, Overnight, TakeoutRule

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
