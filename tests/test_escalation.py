"""Escalation of overdue flags nobody acknowledged: to the holder's manager after the hours of the item's take-out
rule, then to the desk lead; e-mails in each person's language and the desk's webhook; two scheduler ticks at once."""

from __future__ import annotations

import json
from datetime import time

import pytest
from sqlalchemy import select

from tests.helpers import NOW, at_once, counting, tokyo
from tests.listeners import smtp_config
from tracker import jobs
from tracker.accounts import users
from tracker.custody import operations as custody
from tracker.custody import rules
from tracker.custody.policy import Policy
from tracker.desk import escalation, flags, sweep
from tracker.items import departments
from tracker.items import register as items_mod
from tracker.models import DataClass, Department, Event, Flag, FlagStatus, Kind

pytestmark = pytest.mark.postgres  # the set-based selection, the conditional UPDATE and two ticks racing

TOKYO = Policy(timezone="Asia/Tokyo", day_end=time(19, 0))


@pytest.fixture
def rule(session, admin):
    """Save a take-out rule that escalates after `hours` (None: never) for a kind and class."""

    def save(hours, kind=Kind.laptop, data_class=DataClass.personal):
        rules.save(session, NOW, rules.Rule(kind=kind.value, data_class=data_class.value, handling_ack=True,
                                            escalate_after_hours=hours), actor=admin)
        session.commit()

    return save


@pytest.fixture
def team(make_user, make_department):
    """Sales: a holder and her manager; the desk lead; a department without a manager."""
    manager = make_user("staff", name="Manager Mori", language="ja")
    sales = make_department("Sales", managers=[manager])
    orphans = make_department("Orphans")
    holder = make_user(name="Holder Hana", department_id=sales.id, language="en")
    lonely = make_user(name="Lonely Lee", department_id=orphans.id)
    lead = make_user("security", name="Lead Lin", language="en", desk_lead=True)
    return {"manager": manager, "holder": holder, "lonely": lonely, "lead": lead}


def overdue(session, make_item, holder, kind=Kind.laptop, data_class=DataClass.personal):
    """An item out since 9:00 on 1 June, due 18:00, flagged by the 19:00 sweep."""
    item = make_item(kind=kind, data_class=data_class)
    custody.check_out(session, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=tokyo(1, 18))
    session.commit()
    return item


def run(session, now) -> escalation.EscalationResult:
    result = escalation.escalate(session, now, TOKYO)
    session.commit()
    return result


def sweep_at_day_end(session) -> None:
    sweep.sweep(session, tokyo(1, 19), TOKYO)
    session.commit()


def flag_of(session, item) -> Flag:
    session.expire_all()
    return session.scalar(select(Flag).where(Flag.item_id == item.id))


def escalations(session) -> list[dict]:
    session.expire_all()
    return [{"item": e.item_id, **json.loads(e.data)}
            for e in session.scalars(select(Event).where(Event.action == "flag_escalated").order_by(Event.id))]


# --- levels and timing -------------------------------------------------------------------------------------------


def test_an_unacknowledged_flag_goes_to_the_manager_then_to_the_desk_lead(session, make_item, rule, team):
    rule(2)
    item = overdue(session, make_item, team["holder"])
    sweep_at_day_end(session)

    assert run(session, tokyo(1, 20, 59)).steps == []  # 1h59 after the flag: not yet
    first = run(session, tokyo(1, 21))
    assert [(s.flag.item_id, s.level, [u.email for u in s.told]) for s in first.steps] == [
        (item.id, 1, [team["manager"].email])]
    flag = flag_of(session, item)
    assert (flag.escalation_level, flag.escalated_at) == (1, tokyo(1, 21))

    assert run(session, tokyo(1, 22, 59)).steps == []  # two hours after the manager was told, not after the flag
    second = run(session, tokyo(1, 23))
    assert [(s.level, [u.email for u in s.told]) for s in second.steps] == [(2, [team["lead"].email])]
    assert flag_of(session, item).escalation_level == 2
    assert run(session, tokyo(2, 9)).steps == []  # the desk lead is the last step

    assert escalations(session) == [
        {"item": item.id, "flag_id": flag.id, "level": 1, "told": [team["manager"].email]},
        {"item": item.id, "flag_id": flag.id, "level": 2, "told": [team["lead"].email]}]


def test_the_hours_come_from_each_items_rule_and_no_hours_means_never(session, make_item, rule, team):
    rule(2)
    rule(1, Kind.usb, DataClass.my_number)
    laptop = overdue(session, make_item, team["holder"])
    usb = overdue(session, make_item, team["holder"], Kind.usb, DataClass.my_number)
    folder = overdue(session, make_item, team["holder"], Kind.folder)  # no rule saved: the defaults never escalate
    sweep_at_day_end(session)

    assert [s.flag.item_id for s in run(session, tokyo(1, 20)).steps] == [usb.id]
    assert sorted((s.flag.item_id, s.level) for s in run(session, tokyo(1, 21)).steps) == sorted(
        [(laptop.id, 1), (usb.id, 2)])  # the USB drive an hour after its manager was told
    assert [(flag_of(session, i).escalation_level) for i in (laptop, usb, folder)] == [1, 2, 0]
    assert run(session, tokyo(3, 9)).steps[0].flag.item_id == laptop.id
    assert flag_of(session, folder).escalation_level == 0


def test_a_holder_without_a_manager_goes_straight_to_the_desk_lead(session, make_item, rule, team, make_user,
                                                                     make_department):
    rule(2)
    boss = make_user(name="Only Boss")
    own = make_department("Own", managers=[boss])
    boss.department_id = own.id  # the manager holds it himself: there is nobody above him to tell
    session.commit()
    orphan = overdue(session, make_item, team["lonely"])  # a department without managers
    nobody = overdue(session, make_item, make_user(name="No Department"))
    self_managed = overdue(session, make_item, boss)
    sweep_at_day_end(session)

    result = run(session, tokyo(1, 21))
    assert sorted((s.flag.item_id, s.level, s.skipped_manager) for s in result.steps) == sorted(
        [(orphan.id, 2, True), (nobody.id, 2, True), (self_managed.id, 2, True)])
    assert all([u.email for u in s.told] == [team["lead"].email] for s in result.steps)
    assert {e["item"]: e.get("no_manager") for e in escalations(session)} == {
        orphan.id: True, nobody.id: True, self_managed.id: True}
    assert run(session, tokyo(2, 9)).steps == []


def test_a_holder_in_a_section_without_a_manager_escalates_to_the_manager_above(session, make_item, rule, team,
                                                                                 make_user, make_department):
    rule(2)
    sales = session.get(Department, team["holder"].department_id)
    section = make_department("Sales 1", parent=sales)
    item = overdue(session, make_item, make_user(name="Section Sato", department_id=section.id))
    sweep_at_day_end(session)
    (step,) = run(session, tokyo(1, 21)).steps
    assert (step.flag.item_id, step.level, [u.email for u in step.told]) == (item.id, 1, [team["manager"].email])


def test_an_item_a_stock_take_found_missing_goes_to_the_desk_lead_until_acknowledged(session, make_item, rule,
                                                                                      team, admin):
    """Nobody holds it, so there is no manager to tell: after the rule's hours the desk lead hears of it, once."""
    from tracker.stocktake.sessions import MISSING

    rule(2)
    item = make_item(kind=Kind.laptop, data_class=DataClass.personal)
    missing = Flag(item_id=item.id, reason=MISSING, created_at=tokyo(1, 19), status=FlagStatus.open)
    acknowledged = Flag(item_id=make_item(kind=Kind.laptop, data_class=DataClass.personal).id, reason=MISSING,
                        created_at=tokyo(1, 19), status=FlagStatus.open)
    session.add_all([missing, acknowledged])
    session.commit()
    flags.acknowledge(session, tokyo(1, 20), acknowledged, admin, "looking in the meeting rooms")
    session.commit()

    assert run(session, tokyo(1, 20, 59)).steps == []
    result = run(session, tokyo(1, 21))
    assert [(s.flag.item_id, s.level, s.holder, s.skipped_manager, [u.email for u in s.told])
            for s in result.steps] == [(item.id, 2, None, False, [team["lead"].email])]
    assert escalations(session) == [{"item": item.id, "flag_id": missing.id, "level": 2, "told": [team["lead"].email],
                                     "missing": True}]
    assert run(session, tokyo(2, 9)).steps == []


def test_acknowledging_stops_further_escalation(session, make_item, rule, team):
    rule(2)
    before, after = overdue(session, make_item, team["holder"]), overdue(session, make_item, team["holder"])
    sweep_at_day_end(session)
    flags.acknowledge(session, tokyo(1, 20), flag_of(session, before), team["lead"], "Called: back tomorrow 9:00")
    session.commit()
    assert [s.flag.item_id for s in run(session, tokyo(1, 21)).steps] == [after.id]
    flags.acknowledge(session, tokyo(1, 22), flag_of(session, after), team["lead"], "Manager called her")
    session.commit()
    assert run(session, tokyo(2, 9)).steps == []
    assert [flag_of(session, i).escalation_level for i in (before, after)] == [0, 1]


def test_a_returned_item_is_not_escalated(session, make_item, rule, team):
    rule(2)
    item = overdue(session, make_item, team["holder"])
    sweep_at_day_end(session)
    custody.return_item(session, tokyo(1, 20), item=item, actor=team["holder"])
    session.commit()
    assert run(session, tokyo(1, 21)).steps == []


def test_disabled_managers_and_desk_leads_are_not_told(session, make_item, rule, team, make_user):
    rule(2)
    make_user("admin", name="Former Lead", desk_lead=True, active=False)
    team["manager"].active = False
    session.commit()
    item = overdue(session, make_item, team["holder"])
    sweep_at_day_end(session)
    (step,) = run(session, tokyo(1, 21)).steps
    assert (step.flag.item_id, step.level, [u.email for u in step.told]) == (item.id, 2, [team["lead"].email])


# --- many flags, one set of statements ---------------------------------------------------------------------------


def test_many_flags_escalate_in_a_fixed_number_of_statements(app, session, make_item, make_user, rule, team):
    rule(2)
    holders = [team["holder"], team["lonely"], make_user()]
    items = [overdue(session, make_item, holders[n % 3]) for n in range(60)]
    sweep_at_day_end(session)
    with counting(app) as statements:
        result = run(session, tokyo(1, 21))
    assert len(result.steps) == len(items)
    # BEGIN, the rules, the flags, the departments' tree and their managers, the desk leads, an UPDATE per step
    # (two here), and the audit chain's head, the event webhooks, events and new head: the same for six flags or six
    # thousand (up to 1000 ids per UPDATE)
    assert len(statements) <= 12, statements
    with counting(app) as statements:
        assert len(run(session, tokyo(1, 23)).steps) == 20  # level 1 -> 2 for the holder with a manager
    assert len(statements) <= 9, statements  # one UPDATE, and no managers to look up


# --- two scheduler ticks at once ---------------------------------------------------------------------------------


def test_two_ticks_at_once_escalate_each_flag_once_per_level(app, session, make_item, rule, team):
    rule(2)
    items = [overdue(session, make_item, team["holder" if n % 2 else "lonely"]) for n in range(6)]
    sweep_at_day_end(session)

    def race(now) -> list[list[tuple[int, int]]]:
        def tick(s) -> list[tuple[int, int]]:
            return [(st.flag.item_id, st.level) for st in escalation.escalate(s, now, TOKYO).steps]

        results = at_once(app, tick, tick)
        assert all(isinstance(r, list) for r in results), results
        return results

    first = race(tokyo(1, 21))
    assert sorted(first[0] + first[1]) == sorted((i.id, 1 if n % 2 else 2) for n, i in enumerate(items))
    second = race(tokyo(1, 23))
    assert sorted(second[0] + second[1]) == sorted((i.id, 2) for n, i in enumerate(items) if n % 2)
    steps = [(e["flag_id"], e["level"]) for e in escalations(session)]
    assert len(steps) == len(set(steps)) == len(items) + 3  # one event per flag and level


def test_a_tick_during_another_skips_its_flags_and_one_after_it_finds_them_moved(app, session, make_item, rule,
                                                                                   team):
    """Interleaved by hand on PostgreSQL: while the first tick's transaction is open, a second one neither waits
    nor escalates the same flags (they are locked: skipped); the conditional UPDATE refuses a flag read at its
    old level after the first committed. SQLite runs one writing transaction at a time (the race above)."""
    if app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite runs one write transaction at a time: the race above covers it")
    rule(2)
    item = overdue(session, make_item, team["holder"])
    sweep_at_day_end(session)
    maker = app.extensions["tracker.sessionmaker"]
    first, second, late = maker(), maker(), maker()
    try:
        flag_id = session.scalar(select(Flag.id).where(Flag.item_id == item.id))
        assert len(escalation.escalate(first, tokyo(1, 21), TOKYO).steps) == 1
        assert escalation.escalate(second, tokyo(1, 21), TOKYO).steps == []  # at once, without waiting
        second.rollback()
        first.commit()
        assert escalation._move(late, tokyo(1, 21), [flag_id], 0, 1) == set()  # read at level 0 before the commit
        late.commit()
    finally:
        for s in (first, second, late):
            s.close()
    assert [e["level"] for e in escalations(session)] == [1]


# --- the messages ------------------------------------------------------------------------------------------------


def test_managers_and_desk_leads_get_mail_in_their_language_and_the_desk_a_webhook(new_app, smtp, hook):
    app = new_app(**smtp_config(smtp), WEBHOOK_URL=hook.url, DESK_EMAILS="desk@example.com")
    s = app.extensions["tracker.sessionmaker"]()
    try:
        def person(name, language, role="staff", **kw):
            u = users.create(s, NOW, email=f"{name.split()[0].lower()}@example.com", name=name, role=role,
                             password="correct-horse-battery", actor=None, language=language,
                             must_change_password=False, **kw)
            s.commit()
            return u

        boss = person("Mori Manager", "ja")
        sales = departments.create(s, NOW, name="Sales", parent_id=None, manager_ids=[boss.id], actor=None)
        admin = person("Admin Ada", "en", role="admin")
        lead = person("Lin Lead", "en", role="security", desk_lead=True)
        holder = person("Hana Holder", "en", department_id=sales.id, phone="090-1111-2222")
        rules.save(s, NOW, rules.Rule(kind="laptop", data_class="personal", handling_ack=True,
                                      escalate_after_hours=2), actor=admin)
        item = items_mod.create(s, NOW, items_mod.ItemData(kind=Kind.laptop, name="Sales laptop",
                                                           data_class=DataClass.personal), actor=None)
        custody.check_out(s, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=tokyo(1, 18))
        s.commit()
    finally:
        s.close()
    jobs.run_sweep(app, tokyo(1, 19))
    mails_before, posts_before = len(smtp.inbox.messages), len(hook.requests)

    assert len(jobs.run_escalation(app, tokyo(1, 21)).steps) == 1
    (ja,) = smtp.inbox.to(boss.email)
    body = ja.get_content()
    assert "未確認" in str(ja["Subject"]) and "返却期限" in body and "Due back" not in body
    assert item.asset_tag in body and "Hana Holder" in body and "090-1111-2222" in body
    assert smtp.inbox.to(lead.email) == []
    (post,) = hook.posts()[posts_before:]
    assert item.asset_tag in json.dumps(post) and "Mori Manager" in json.dumps(post)

    assert len(jobs.run_escalation(app, tokyo(1, 23)).steps) == 1
    (en,) = smtp.inbox.to(lead.email)
    assert "Escalated to you" in str(en["Subject"]) and item.asset_tag in en.get_content()
    assert "https://track.example.com/desk/" in en.get_content()
    assert len(smtp.inbox.messages) == mails_before + 2 and len(hook.requests) == posts_before + 2
    assert jobs.run_escalation(app, tokyo(2, 9)).steps == []
    assert len(smtp.inbox.messages) == mails_before + 2


def test_with_no_desk_lead_the_last_step_goes_to_the_desks_addresses(new_app, smtp):
    app = new_app(**smtp_config(smtp), DESK_EMAILS="desk@example.com, night-desk@example.com")
    s = app.extensions["tracker.sessionmaker"]()
    try:
        admin = users.create(s, NOW, email="ada@example.com", name="Admin Ada", role="admin",
                             password="correct-horse-battery", actor=None, language="en", must_change_password=False)
        holder = users.create(s, NOW, email="hana@example.com", name="Hana Holder", role="staff",
                              password="correct-horse-battery", actor=None, language="en", must_change_password=False)
        rules.save(s, NOW, rules.Rule(kind="laptop", data_class="personal", handling_ack=True,
                                      escalate_after_hours=2), actor=admin)
        item = items_mod.create(s, NOW, items_mod.ItemData(kind=Kind.laptop, name="Lonely laptop",
                                                           data_class=DataClass.personal), actor=None)
        custody.check_out(s, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=tokyo(1, 18))
        s.commit()
    finally:
        s.close()
    jobs.run_sweep(app, tokyo(1, 19))
    before = len(smtp.inbox.messages)
    (step,) = jobs.run_escalation(app, tokyo(1, 21)).steps  # no manager, no desk lead: straight to level 2
    assert step.level == 2 and step.told == []
    for address in ("desk@example.com", "night-desk@example.com"):
        mail = smtp.inbox.to(address)[-1]  # after the day end's overdue digest
        body = mail.get_content()  # in the site's language (Japanese by default), with no personal greeting
        assert "窓口責任者が設定されていない" in body and item.asset_tag in body and not body.startswith("Hello")
        assert "https://track.example.com/desk/" in body
    assert len(smtp.inbox.messages) == before + 2


def test_the_desk_lead_is_mailed_about_an_item_a_stock_take_found_missing(new_app, smtp, hook):
    from tracker.stocktake.sessions import MISSING

    app = new_app(**smtp_config(smtp), WEBHOOK_URL=hook.url)
    s = app.extensions["tracker.sessionmaker"]()
    try:
        admin = users.create(s, NOW, email="ada@example.com", name="Admin Ada", role="admin",
                             password="correct-horse-battery", actor=None, must_change_password=False)
        lead = users.create(s, NOW, email="lin@example.com", name="Lin Lead", role="security", desk_lead=True,
                            password="correct-horse-battery", actor=None, language="en", must_change_password=False)
        rules.save(s, NOW, rules.Rule(kind="usb", data_class="personal", escalate_after_hours=2), actor=admin)
        item = items_mod.create(s, NOW, items_mod.ItemData(kind=Kind.usb, name="Payroll USB",
                                                           data_class=DataClass.personal), actor=None)
        s.add(Flag(item_id=item.id, reason=MISSING, created_at=tokyo(1, 19), status=FlagStatus.open))
        s.commit()
    finally:
        s.close()
    assert len(jobs.run_escalation(app, tokyo(1, 21)).steps) == 1
    (mail,) = smtp.inbox.to(lead.email)
    body = mail.get_content()
    assert "Escalated to you" in str(mail["Subject"])
    assert f"- {item.asset_tag} (Payroll USB) Missing at a stock-take (flagged " in body
    (post,) = hook.posts()
    assert item.asset_tag in json.dumps(post) and "Lin Lead" in json.dumps(post)
