"""The pages around escalation: a user's deputy and desk lead on the admin form, the escalation level on the desk's
board and flag page, and the late-returns tables on the records page (both languages)."""

from __future__ import annotations

import html
import json
import re

import pytest
from sqlalchemy import select, update

from tests.helpers import client_for, counting, events, flashes, handed_over, post, reread, tokyo
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import flags as flag_rules
from tracker.desk import sweep
from tracker.models import Flag, User

JA = {"Accept-Language": "ja"}


def _fields(user: User, **changes) -> dict:
    fields = {"name": user.name, "role": user.role.value, "language": "", "phone": "",
              "department": str(user.department_id or ""), "deputy": "", "desk_lead": ""}
    fields.update(changes)
    return {k: v for k, v in fields.items() if v is not None}


def _text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


# --- the user form -----------------------------------------------------------------------------------------------


def test_admin_names_a_deputy_and_a_desk_lead_and_the_list_shows_them(app, session, admin, make_user):
    guard = make_user("security", name="Guard Goto")
    deputy = make_user(name="Deputy Doi")
    make_user(name="Gone Gotoh", active=False)
    c = client_for(app, admin)
    url = f"/admin/users/{guard.id}/edit"
    page = _text(c.get(url))
    assert 'id="deputy" list="deputy-suggestions"' in page and "Deputy Doi" not in page  # typed: no list of everyone

    resp = post(c, url, _fields(guard, deputy=f"Deputy Doi <{deputy.email}>", desk_lead="y"), page=url)
    assert resp.status_code == 302
    reread(session)
    saved = session.get(User, guard.id)
    assert (saved.deputy_id, saved.desk_lead) == (deputy.id, True)
    (event,) = events(session, "user_updated")
    assert json.loads(event.data)["before"]["desk_lead"] is False
    listed = _text(c.get("/admin/users/?q=Guard"))
    row = listed.split(">Guard Goto</a>")[1].split("</tr>")[0]
    assert "Desk lead" in row and "Deputy Doi" in row
    again = _text(c.get(url))
    assert re.search(rf'id="deputy"[^>]*value="Deputy Doi <{deputy.email}>"', again)
    assert re.search(r'<input[^>]*\bchecked\b[^>]*id="desk_lead"|<input[^>]*id="desk_lead"[^>]*\bchecked', again)

    assert post(c, url, _fields(guard), page=url).status_code == 302  # cleared again
    reread(session)
    assert (session.get(User, guard.id).deputy_id, session.get(User, guard.id).desk_lead) == (None, False)


@pytest.mark.parametrize(("language", "headers", "messages"), [
    ("en", {}, ["A user cannot be their own deputy.",
                "No one with an active account is called {}. Type their name or e-mail address, or choose one of "
                "the suggestions.",
                "Only security desk staff and administrators can be the desk lead."]),
    ("ja", JA, ["本人を代理人にすることはできません。",
                "「{}」に該当する有効なアカウントはありません。氏名またはメールアドレスを入力するか、候補から選んでください。",
                "窓口責任者に指定できるのは、セキュリティ窓口の担当者と管理者だけです。"]),
])
def test_a_bad_deputy_or_desk_lead_is_refused_in_the_readers_language_and_nothing_changes(
        app, session, make_user, language, headers, messages):
    boss = make_user("admin", language=language)
    staff = make_user(name="Staff Sato")
    gone = make_user(name="Gone", active=False)
    c = client_for(app, boss)
    c.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    url = f"/admin/users/{staff.id}/edit"
    own, no_one, staff_lead = messages
    for changes, message in ((dict(deputy=staff.email), own), (dict(deputy=gone.email), no_one.format(gone.email)),
                             (dict(deputy=str(staff.id)), no_one.format(staff.id)),  # a number is no one
                             (dict(deputy="12abc"), no_one.format("12abc")), (dict(desk_lead="y"), staff_lead)):
        resp = post(c, url, _fields(staff, name="Renamed", **changes), page=url)
        assert resp.status_code == 400, changes
        assert ("error", message) in flashes(resp)
        assert f'<p class="error">{message}</p>' in _text(resp)  # beside its field too
        reread(session)
        assert (session.get(User, staff.id).name, session.get(User, staff.id).deputy_id) == ("Staff Sato", None)
        assert session.get(User, staff.id).desk_lead is False


def test_a_new_user_can_have_a_deputy_and_be_desk_lead(app, session, admin, make_user):
    deputy = make_user(name="Deputy Doi")
    c = client_for(app, admin)
    resp = post(c, "/admin/users/new", {"email": "lead@example.com", "name": "New Lead", "role": "security",
                                         "language": "", "phone": "", "department": "", "deputy": deputy.email,
                                         "desk_lead": "y"}, page="/admin/users/new")
    assert resp.status_code == 200
    reread(session)
    made = session.scalar(select(User).where(User.email == "lead@example.com"))
    assert (made.deputy_id, made.desk_lead) == (deputy.id, True)


def test_demoting_a_desk_lead_to_staff_asks_to_untick_desk_lead_first(app, session, admin, make_user):
    lead = make_user("security", desk_lead=True)
    c = client_for(app, admin)
    url = f"/admin/users/{lead.id}/edit"
    resp = post(c, url, _fields(lead, role="staff", desk_lead="y"), page=url)
    assert resp.status_code == 400
    reread(session)
    assert session.get(User, lead.id).role.value == "security"
    assert post(c, url, _fields(lead, role="staff"), page=url).status_code == 302


# --- the board and the flag page ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("headers", "manager", "desk_lead"), [
    ({}, "Escalated to the manager", "Escalated to the desk lead"),
    (JA, "上長に連絡済み", "窓口責任者に連絡済み"),
])
def test_the_board_and_the_flag_page_show_how_far_a_flag_was_escalated(app, session, make_user, make_item,
                                                                        headers, manager, desk_lead):
    holder = make_user()
    desk = make_user("security")
    items = [make_item() for _ in range(3)]
    for item in items:
        custody.check_out(session, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=tokyo(1, 18))
    session.commit()
    sweep.sweep(session, tokyo(1, 19), Policy())
    session.commit()
    for item, level in zip(items, (0, 1, 2), strict=True):
        session.execute(update(Flag).where(Flag.item_id == item.id).values(escalation_level=level,
                                                                           escalated_at=tokyo(1, 21)))
    session.commit()
    c = client_for(app, desk)
    c.environ_base.update({f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()})
    board = _text(c.get("/desk/"))
    rows = {i.asset_tag: board.split(f">{i.asset_tag}</a>")[1].split("</tr>")[0] for i in items}
    assert manager not in rows[items[0].asset_tag] and desk_lead not in rows[items[0].asset_tag]
    assert manager in rows[items[1].asset_tag]
    assert desk_lead in rows[items[2].asset_tag]
    flag = session.scalar(select(Flag).where(Flag.item_id == items[2].id))
    assert desk_lead in _text(c.get(f"/desk/flags/{flag.id}"))
    flag_rules.acknowledge(session, tokyo(1, 22), flag, desk, "Called")
    session.commit()
    assert desk_lead in _text(c.get("/desk/")).split(f">{items[2].asset_tag}</a>")[1].split("</tr>")[0]


# --- late returns on the records page ----------------------------------------------------------------------------


@pytest.fixture
def late_world(session, make_user, make_item, make_department):
    """June 2026: Sato returns late three times and is flagged once; Ito once late; Kato on time; a late
    hand-over is not a return."""
    sales, hr = make_department("Sales"), make_department("HR")
    sato = make_user(name="Sato Repeat", department_id=sales.id)
    ito = make_user(name="Ito Once", department_id=hr.id)
    kato = make_user(name="Kato OnTime", department_id=sales.id)
    taker = make_user(name="Taker Tanaka", department_id=hr.id)

    def trip(holder, day, back_hour, item=None):
        item = item or make_item()
        custody.check_out(session, tokyo(day, 9), item=item, holder=holder, actor=holder, due_at=tokyo(day, 18))
        custody.return_item(session, tokyo(day, back_hour), item=item, actor=holder)
        session.commit()

    for day in (2, 3, 4):
        trip(sato, day, 20)
    trip(ito, 5, 19)
    trip(kato, 5, 17)
    late_handed = make_item()
    custody.check_out(session, tokyo(8, 9), item=late_handed, holder=kato, actor=kato, due_at=tokyo(8, 18))
    handed_over(session, tokyo(8, 20), late_handed, kato, taker)
    custody.return_item(session, tokyo(8, 21), item=late_handed, actor=taker)  # Tanaka did return it late
    session.commit()
    flagged = make_item()
    custody.check_out(session, tokyo(10, 9), item=flagged, holder=sato, actor=sato, due_at=tokyo(10, 18))
    session.commit()
    sweep.sweep(session, tokyo(10, 19), Policy())
    session.commit()
    # July: outside the month shown by default
    july = make_item()
    custody.check_out(session, tokyo(1, 9, month=7), item=july, holder=ito, actor=ito, due_at=tokyo(1, 18, month=7))
    custody.return_item(session, tokyo(1, 20, month=7), item=july, actor=ito)
    session.commit()
    return {"sato": sato, "ito": ito, "kato": kato, "taker": taker}


def _table(page: str, table_id: str) -> list[list[str]]:
    body = page.split(f'id="{table_id}"')[1].split("</table>")[0].split("<tbody>")[1]
    return [[" ".join(re.sub(r"<[^>]+>", " ", cell).split()) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr[^>]*>(.*?)</tr>", body, re.S)]


def test_late_returns_per_person_and_department_repeat_offenders_first(app, late_world, make_user):
    c = client_for(app, make_user("security"))
    page = _text(c.get("/desk/records/?month=2026-06"))
    people = _table(page, "late-people")
    sato, ito, taker = late_world["sato"], late_world["ito"], late_world["taker"]
    assert people == [
        [f"Sato Repeat Repeat {sato.email}", "Sales", "3", "1", "4"],
        [f"Ito Once {ito.email}", "HR", "1", "0", "1"],
        [f"Taker Tanaka {taker.email}", "HR", "1", "0", "1"]]  # ties by name
    assert "Kato" not in page.split('id="late-people"')[1].split("</table>")[0]  # on time, and a hand-over
    assert _table(page, "late-departments") == [["Sales", "1", "3", "1", "4"], ["HR", "2", "2", "0", "2"]]

    july = _table(_text(c.get("/desk/records/?month=2026-06&late_from=2026-07-01&late_to=2026-07-31")),
                  "late-people")
    assert july == [[f"Ito Once {ito.email}", "HR", "1", "0", "1"]]
    ja = c.get("/desk/records/?month=2026-06", headers=JA)
    assert "返却遅れ" in _text(ja) and "常習" in _text(ja)


@pytest.mark.parametrize(("query", "message"), [
    ("late_from=2026-06-30&late_to=2026-06-01", "The last day must be on or after the first, within a year."),
    ("late_from=yesterday&late_to=2026-06-01", "Give the first and last day as dates."),
    ("late_from=0999-01-01&late_to=2026-06-01", "0999-01-01 is outside the dates this system can use."),
])
def test_a_bad_period_says_so_and_shows_the_month(app, late_world, make_user, query, message):
    c = client_for(app, make_user("security"))
    resp = c.get(f"/desk/records/?month=2026-06&{query}")
    assert resp.status_code == 200
    assert ("error", message) in flashes(resp)
    assert len(_table(_text(resp), "late-people")) == 3  # the month shown instead


def test_the_late_tables_cost_the_same_statements_for_three_people_or_thirty(app, session, late_world, make_user,
                                                                             make_item):
    c = client_for(app, make_user("security"))
    with counting(app) as few:
        c.get("/desk/records/?month=2026-06")
    for n in range(27):
        holder, item = make_user(), make_item()
        custody.check_out(session, tokyo(12, 9), item=item, holder=holder, actor=holder, due_at=tokyo(12, 18))
        custody.return_item(session, tokyo(12, 19 + n % 3), item=item, actor=holder)
    session.commit()
    with counting(app) as many:
        page = _text(c.get("/desk/records/?month=2026-06"))
    assert len(_table(page, "late-people")) == 30
    assert len(many) == len(few)


def test_staff_cannot_see_the_late_returns(app, late_world, make_user):
    resp = client_for(app, make_user()).get("/desk/records/")
    assert resp.status_code == 403
