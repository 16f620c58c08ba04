"""The take-out rules page: admins only change rules (the desk reads them), bad input is refused on its field with
nothing saved, the recommended set is one POST, and every row says whether it is a default or which version."""

from __future__ import annotations

import html

import pytest
from sqlalchemy import func, select

from tests.helpers import client_for, events, flashes, post, reread
from tracker.models import Approval, DataClass, Kind, TakeoutRule

PAGE = "/admin/rules/"
ROW = "/admin/rules/usb/personal"
GOOD = {"approval": "nobody", "overnight": "allowed", "curfew": "18:00", "max_hours": "6",
        "erasure_on_return": "y", "handling_ack": "y"}


def saved(session) -> int:
    reread(session)
    return session.scalar(select(func.count()).select_from(TakeoutRule))


def test_staff_cannot_see_the_page_and_only_admins_change_rules(app, session, make_user):
    staff, desk = make_user("staff"), make_user("security")
    assert client_for(app, staff).get(PAGE).status_code == 403
    reader = client_for(app, desk)
    page = reader.get(PAGE).get_data(as_text=True)
    assert "Take-out rules" in page and ROW not in page and "Apply the recommended set" not in page
    assert f'href="{PAGE}"' in reader.get("/desk/").get_data(as_text=True)  # in the desk's menu
    assert reader.get(ROW).status_code == 403
    for who in (staff, desk):
        c = client_for(app, who)
        assert post(c, ROW, GOOD).status_code == 403
        assert post(c, "/admin/rules/recommended").status_code == 403
    assert saved(session) == 0 and events(session, "rule_changed") == []


def test_an_admin_saves_a_row_and_sees_its_version_and_who_changed_it(app, session, admin):
    c = client_for(app, admin)
    page = c.get(PAGE).get_data(as_text=True)
    assert page.count(">default<") == len(Kind) * len(DataClass)
    resp = post(c, ROW, GOOD, follow=True)
    assert ("success", "The take-out rule is saved.") in flashes(resp)
    row = resp.get_data(as_text=True).split('id="rule-usb-personal"')[1].split("</tr>")[0]
    assert "18:00" in row and "version 1" in row and admin.name in row
    post(c, ROW, {**GOOD, "max_hours": "4"})
    reread(session)
    rule = session.scalars(select(TakeoutRule)).one()
    assert (rule.version, rule.max_hours, rule.updated_by_id) == (2, 4, admin.id)
    assert len(events(session, "rule_changed")) == 2


def test_named_approvers_are_typed_saved_in_order_and_shown_by_name(app, session, admin, make_user):
    first, second = make_user("staff", name="Sato Manager"), make_user("staff", name="Suzuki Lead")
    make_user("staff", name="Someone Else")
    c = client_for(app, admin)
    form = c.get(ROW).get_data(as_text=True)
    assert "Someone Else" not in form and 'id="approver1" list="approver1-suggestions"' in form  # no list of everyone
    post(c, ROW, {**GOOD, "approval": "named", "approver1": f"Suzuki Lead <{second.email}>",
                  "approver2": "sato manager"})
    reread(session)
    rule = session.scalars(select(TakeoutRule)).one()
    assert (rule.approval, rule.approver1_id, rule.approver2_id) == (Approval.named, second.id, first.id)
    assert "Suzuki Lead → Sato Manager" in c.get(PAGE).get_data(as_text=True)
    again = html.unescape(c.get(ROW).get_data(as_text=True))  # the saved approvers, as choosing them writes them
    assert f'value="Suzuki Lead <{second.email}>"' in again and f'value="Sato Manager <{first.email}>"' in again


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"max_hours": "0"}, "max_hours", "Give a number of hours between 1 and 744."),
    ({"escalate_after_hours": "100000"}, "escalate_after_hours", "Give a number of hours between 1 and 744."),
    ({"approval": "named"}, "approver1", "Name at least one approver."),
    ({"max_hours": "many"}, "max_hours", "Not a valid integer value."),
    ({"curfew": "25:99"}, "curfew", "Not a valid time value."),
    ({"approval": "everyone"}, "approval", "Not a valid choice."),
])
def test_bad_input_is_said_on_its_field_and_saves_nothing(app, session, admin, change, field, message):
    resp = post(client_for(app, admin), ROW, {**GOOD, **change})
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert f'id="{field}-error"' in page and message in page
    assert saved(session) == 0 and events(session, "rule_changed") == []


@pytest.mark.parametrize("who", ["gone", "twin", "id", "nobody"])
def test_an_approver_who_is_no_one_or_two_is_refused_at_their_field(app, session, admin, make_user, who):
    gone = make_user("staff", name="Gone Away", active=False)
    make_user("staff", name="Ken Mori"), make_user("staff", name="Ken Mori")
    typed = {"gone": gone.email, "twin": "Ken Mori", "id": str(admin.id), "nobody": "Nobody Here"}[who]
    resp = post(client_for(app, admin), ROW, {**GOOD, "approval": "named", "approver1": "", "approver2": typed})
    assert resp.status_code == 400
    page = html.unescape(resp.get_data(as_text=True))
    error = page.split('id="approver2-error"')[1].split("</div>")[0]
    assert ("More than one person is called" if who == "twin" else "No one with an active account") in error
    assert saved(session) == 0 and events(session, "rule_changed") == []


def test_the_recommended_set_is_applied_once_and_shown_as_versions(app, session, admin):
    c = client_for(app, admin)
    resp = post(c, "/admin/rules/recommended", follow=True)
    everything = len(Kind) * len(DataClass)
    assert ("success", f"The recommended rules are applied: {everything} rule(s) changed.") in flashes(resp)
    page = resp.get_data(as_text=True)
    assert ">default<" not in page and page.count("version 1<br>") == everything
    usb = page.split('id="rule-usb-my_number"')[1].split("</tr>")[0]
    assert "The manager, then the security desk" in usb and "Forbidden" in usb and "18:00" in usb
    again = post(c, "/admin/rules/recommended", follow=True)
    assert ("success", "The recommended rules are applied: 0 rule(s) changed.") in flashes(again)
    assert len(events(session, "rule_changed")) == everything


def test_the_page_reads_in_japanese(app, make_user):
    c = client_for(app, make_user("admin", language="ja"))
    page = c.get(PAGE).get_data(as_text=True)
    assert "持ち出しルール" in page and "Take-out rules" not in page
    form = c.get(ROW).get_data(as_text=True)
    assert "門限" in form and "Curfew" not in form


# --- the rules as the phone's take-out page applies them ------------------------------------------------------------


def test_the_phone_page_offers_the_curfew_as_the_due_time_and_asks_erasure_by_rule(
        app, session, admin, make_user, make_item, frozen_clock):
    from tests.helpers import local_dt, open_checkout, tokyo

    staff = make_user("staff", language="en")
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.none)
    post(client_for(app, admin), "/admin/rules/recommended")
    post(client_for(app, admin), "/admin/rules/laptop/none", {**GOOD, "curfew": "", "max_hours": ""})
    frozen_clock["now"] = tokyo(1, 10)
    phone = client_for(app, staff)
    page = phone.get(f"/items/{usb.asset_tag}").get_data(as_text=True)
    assert f"<strong>{local_dt(tokyo(1, 18))}</strong>" in page
    post(phone, f"/items/{usb.asset_tag}/checkout", {"rules_ack": "y"}, page=f"/items/{usb.asset_tag}")
    co = open_checkout(session, usb)
    assert co.due_at == tokyo(1, 18) and co.strict_due
    late = post(phone, f"/items/{laptop.asset_tag}/checkout", {"rules_ack": "y"}, page=f"/items/{laptop.asset_tag}")
    assert late.status_code == 303 and open_checkout(session, laptop) is not None
    # The laptop's rule now asks for erasure at return, which the default did not.
    assert 'name="erasure"' in phone.get(f"/items/{laptop.asset_tag}").get_data(as_text=True)
    mine = phone.get("/my").get_data(as_text=True)
    assert f'action="/items/{laptop.asset_tag}/return"' not in mine


def test_a_take_out_past_the_curfew_is_refused_at_the_due_field_naming_the_rule(
        app, session, admin, make_user, make_item, frozen_clock):
    from tests.helpers import open_checkout, tokyo

    staff = make_user("staff", language="en")
    usb = make_item(kind=Kind.usb, data_class=DataClass.personal)
    post(client_for(app, admin), ROW, {**GOOD, "max_hours": ""})  # back by 18:00, overnight allowed
    frozen_clock["now"] = tokyo(1, 18, 30)
    phone = client_for(app, staff)
    resp = post(phone, f"/items/{usb.asset_tag}/checkout", {"rules_ack": "y"}, page=f"/items/{usb.asset_tag}")
    assert resp.status_code == 400
    error = resp.get_data(as_text=True).split('id="due-error"')[1].split("</div>")[0]
    assert "The take-out rule for USB drive (Personal data) has it back by 18:00 today" in error
    assert open_checkout(session, usb) is None


def test_a_save_over_a_change_made_since_the_page_opened_is_refused_and_shows_the_rule_as_it_is(app, session,
                                                                                                make_user):
    """Two admins open the same rule; the second to save is told who saved meanwhile, nothing of theirs is saved,
    and the form they get back shows the rule as it is now."""
    aiko, ben = make_user("admin", name="Aiko Admin", language="en"), make_user("admin", name="Ben Admin", language="en")
    a, b = client_for(app, aiko), client_for(app, ben)
    a_page, b_page = a.get(ROW).get_data(as_text=True), b.get(ROW).get_data(as_text=True)
    assert 'name="version" type="hidden" value="0"' in b_page
    assert post(a, ROW, {**GOOD, "version": "0"}, page=a_page).status_code == 302
    refused = post(b, ROW, {**GOOD, "max_hours": "2", "version": "0"}, page=b_page)
    assert refused.status_code == 303 and refused.headers["Location"] == ROW
    again = b.get(ROW)
    message = flashes(again)[0]
    assert message[0] == "error" and message[1].startswith("Aiko Admin saved this rule at ")
    shown = again.get_data(as_text=True)
    assert 'name="version" type="hidden" value="1"' in shown and 'name="max_hours" type="number" value="6"' in shown
    reread(session)
    assert session.scalar(select(TakeoutRule.max_hours)) == 6 and len(events(session, "rule_changed")) == 1
    # Made again on the rule as it is now, it is saved.
    assert post(b, ROW, {**GOOD, "max_hours": "2", "version": "1"}, page=shown).status_code == 302
    reread(session)
    assert session.scalar(select(TakeoutRule.max_hours)) == 2
