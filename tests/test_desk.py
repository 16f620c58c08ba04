"""The security desk through HTTP: the board, a flag's life, incidents, history, exports, charts and roles."""

from __future__ import annotations

import csv
import gc
import html
import io
import os
import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import func, select

from tests.helpers import (
    EN,
    NOW,
    TOKYO,
    client_for,
    counting,
    csrf_token,
    events,
    flashes,
    handed_over,
    label_token,
    later,
    local_dt,
    pdf_text,
    post,
    reread,
    tokyo,
)
from tracker.custody import approvals
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import appi, flags
from tracker.desk.sweep import sweep
from tracker.items import register as items_mod
from tracker.models import (
    Checkout,
    CheckoutRequest,
    DataClass,
    Event,
    Flag,
    FlagStatus,
    FoundReport,
    Incident,
    IncidentAction,
    Kind,
)

_ROW = re.compile(r'<tr class="([^"]*)">(.*?)</tr>', re.S)
_TAG = re.compile(r'<a class="tag" href="[^"]*">([^<]+)</a>')


pytestmark = pytest.mark.usefixtures("english", "frozen_clock")


# --- helpers ------------------------------------------------------------------------------------------------


def text_of(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def board_table(page: str) -> str:
    """The 'out now' table of the board (not the found-item or approval tables above it)."""
    assert '<table class="board">' in page, "no board table"
    return page.split('<table class="board">', 1)[1].split("</table>", 1)[0]


def board_tags(page: str) -> list[str]:
    return _TAG.findall(board_table(page))


def board_rows(page: str) -> dict[str, tuple[str, str]]:
    """Asset tag -> (row classes, row HTML) for every row of the board table."""
    rows = {}
    for classes, body in _ROW.findall(board_table(page)):
        tag = _TAG.search(body).group(1)
        rows[tag] = (classes, body)
    return rows


def out(session, item, holder, out_at=None, due_at=None, **kw):
    """Check `item` out to `holder` through the rules, at `out_at`, and commit."""
    out_at = out_at or NOW - timedelta(hours=3)
    co = custody.check_out(session, out_at, item=item, holder=holder, actor=holder,
                           due_at=due_at or out_at + timedelta(hours=8), **kw)
    session.commit()
    return co


def run_sweep(session, at=NOW):
    result = sweep(session, at, Policy())
    session.commit()
    return result


@pytest.fixture
def desk(make_user):
    return make_user("security", name="Desk Officer", language="en")


@pytest.fixture
def staff(make_user):
    return make_user(name="Hanako Yamada", language="en", phone="090-1234-5678", email="hanako@example.com")


@pytest.fixture
def dc(app, desk):
    """A browser signed in as the security desk, in English."""
    return client_for(app, desk)


# --- 1. the board -------------------------------------------------------------------------------------------


@pytest.mark.postgres  # the board query: order by due time
def test_board_orders_overdue_then_due_soon_then_the_rest(session, dc, staff, make_item):
    # Created in the opposite order, so id order would give the wrong answer.
    rest = make_item(name="Rest laptop")
    late_rest = make_item(name="Later rest laptop")
    soon = make_item(name="Soon laptop")
    overdue_a = make_item(name="Overdue a")
    overdue_b = make_item(name="Overdue b")
    out(session, late_rest, staff, due_at=later(hours=6))
    out(session, rest, staff, due_at=later(hours=3))
    out(session, soon, staff, due_at=later(minutes=30))
    out(session, overdue_a, staff, due_at=later(hours=-1))
    out(session, overdue_b, staff, due_at=later(hours=-2))
    page = dc.get("/desk/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert board_tags(text) == [overdue_b.asset_tag, overdue_a.asset_tag, soon.asset_tag, rest.asset_tag,
                                late_rest.asset_tag]
    rows = board_rows(text)
    assert "row-overdue" in rows[overdue_a.asset_tag][0] and "row-overdue" in rows[overdue_b.asset_tag][0]
    assert "row-soon" in rows[soon.asset_tag][0] and "row-overdue" not in rows[soon.asset_tag][0]
    assert "row-overdue" not in rows[rest.asset_tag][0] and "row-soon" not in rows[rest.asset_tag][0]
    assert "2 overdue" in html.unescape(text) and "5 out" in html.unescape(text)


def test_board_row_shows_what_the_desk_needs(session, dc, staff, make_item, make_user):
    sensitive = make_item(Kind.usb, name="Patient list", data_class=DataClass.sensitive, encrypted=True)
    plain = make_item(Kind.folder, name="Brochures", data_class=DataClass.none)
    no_phone = make_user(name="Taro Suzuki", language="en", email="taro@example.com")
    out_at, due_at = NOW - timedelta(hours=2), later(hours=4)
    out(session, sensitive, staff, out_at=out_at, due_at=due_at, destination="Shinagawa client office")
    out(session, plain, no_phone, due_at=later(hours=5), destination="Osaka branch")
    rows = board_rows(dc.get("/desk/").get_data(as_text=True))
    classes, body = rows[sensitive.asset_tag]
    body = html.unescape(body)
    assert "row-sensitive" in classes.split()
    assert "USB drive" in body
    assert "Sensitive personal data" in body
    assert "Hanako Yamada" in body and 'href="tel:090-1234-5678"' in body and "hanako@example.com" in body
    assert local_dt(out_at) in body and local_dt(due_at) in body
    assert "Shinagawa client office" in body
    classes, body = rows[plain.asset_tag]
    body = html.unescape(body)
    assert "row-sensitive" not in classes
    assert "Document folder" in body and "No personal data" in body
    assert "Taro Suzuki" in body and "taro@example.com" in body and "tel:" not in body
    assert "Osaka branch" in body


@pytest.mark.postgres  # the board query's filters
def test_board_filters(session, dc, staff, make_item):
    overdue = make_item(Kind.laptop, data_class=DataClass.personal, department="Sales")
    soon = make_item(Kind.usb, data_class=DataClass.sensitive, department="Sales")
    rest = make_item(Kind.folder, data_class=DataClass.none, department="Legal")
    out(session, overdue, staff, due_at=later(minutes=-10))
    out(session, soon, staff, due_at=later(minutes=59))
    out(session, rest, staff, due_at=later(hours=2))

    def tags(query):
        resp = dc.get("/desk/?" + query)
        assert resp.status_code == 200
        text = resp.get_data(as_text=True)
        return board_tags(text) if '<table class="board">' in text else []

    assert tags("") == [overdue.asset_tag, soon.asset_tag, rest.asset_tag]
    assert tags("state=overdue") == [overdue.asset_tag]
    assert tags("state=soon") == [soon.asset_tag]
    assert tags("kind=usb") == [soon.asset_tag]
    assert tags("kind=folder") == [rest.asset_tag]
    assert tags("data_class=sensitive") == [soon.asset_tag]
    assert tags("data_class=none") == [rest.asset_tag]
    assert tags("department=Sales") == [overdue.asset_tag, soon.asset_tag]
    assert tags("department=Legal&kind=laptop") == []
    assert tags("kind=nonsense") == [overdue.asset_tag, soon.asset_tag, rest.asset_tag]
    # The filter form offers the departments and keeps the chosen ones.
    page = dc.get("/desk/?department=Legal").get_data(as_text=True)
    assert '<option value="Legal" selected>' in page and '<option value="Sales" >' in page


@pytest.mark.postgres  # counting and paging in SQL
def test_board_pages_by_100(session, dc, staff, desk):
    made = []
    for n in range(105):
        item = items_mod.create(session, NOW, items_mod.ItemData(kind=Kind.usb, name=f"Stick {n}",
                                                                 data_class=DataClass.personal), actor=None)
        made.append(item)
        custody.check_out(session, NOW - timedelta(hours=1), item=item, holder=staff, actor=desk,
                          due_at=later(hours=1, minutes=n))
    session.commit()
    first = dc.get("/desk/").get_data(as_text=True)
    second = dc.get("/desk/?page=2").get_data(as_text=True)
    one, two = board_tags(first), board_tags(second)
    assert len(one) == 100 and len(two) == 5
    assert one + two == [i.asset_tag for i in made]  # by due time, which is creation order here
    assert "105 out" in html.unescape(first)
    assert "Page 1 of 2" in first and "Page 2 of 2" in second
    assert "page=2" in first
    # Filters survive paging: the next-page link keeps them.
    filtered = dc.get("/desk/?kind=usb").get_data(as_text=True)
    assert re.search(r'href="/desk/\?[^"]*page=2[^"]*kind=usb|href="/desk/\?[^"]*kind=usb[^"]*page=2', filtered)
    # Past the end: the last page, not an error.
    assert board_tags(dc.get("/desk/?page=9").get_data(as_text=True)) == two


def test_fragment_for_self_refresh_and_wall_mode(session, dc, staff, make_item):
    item = make_item()
    out(session, item, staff, due_at=later(hours=-1))
    full = dc.get("/desk/").get_data(as_text=True)
    assert "<html" in full and 'id="board-rows"' in full
    src = html.unescape(re.search(r'id="board-rows" data-src="([^"]+)"', full).group(1))
    assert "fragment=1" in src
    assert 'src="/static/board.js"' in full
    fragment = dc.get(src)
    assert fragment.status_code == 200
    part = fragment.get_data(as_text=True)
    assert "<html" not in part and "<body" not in part and "<form method=\"get\"" not in part
    assert 'class="board-summary"' in part and board_tags(part) == [item.asset_tag]
    # The refresh runs well within 15 seconds.
    with open(os.path.join(dc.application.static_folder, "board.js"), encoding="utf-8") as fh:
        js = fh.read()
    delays = [int(d) for d in re.findall(r"setTimeout\(refresh,\s*(\d+)\)", js)]
    assert delays and max(delays) <= 15000
    wall = dc.get("/desk/?wall=1").get_data(as_text=True)
    assert re.search(r'<body class="[^"]*\bwall\b', wall)
    assert board_tags(wall) == [item.asset_tag]
    assert not re.search(r'<body class="[^"]*\bwall\b', full)
    wall_src = html.unescape(re.search(r'id="board-rows" data-src="([^"]+)"', wall).group(1))
    assert "fragment=1" in wall_src and "wall=1" in wall_src


@pytest.mark.postgres  # NOT EXISTS on the open bag
def test_bag_contents_are_not_rows_while_the_bag_is_out(session, dc, staff, make_item):
    bag = make_item(Kind.bag, name="Sales bag")
    laptop, usb = make_item(Kind.laptop, bag=bag), make_item(Kind.usb, bag=bag)
    out(session, bag, staff, due_at=later(hours=-1))
    page = dc.get("/desk/").get_data(as_text=True)
    assert board_tags(page) == [bag.asset_tag]
    # Back without the USB stick: the stick becomes a row of its own.
    custody.return_item(session, NOW, item=bag, actor=staff, present={laptop.id})
    session.commit()
    assert board_tags(dc.get("/desk/").get_data(as_text=True)) == [usb.asset_tag]


@pytest.mark.postgres  # the overdue count's SQL
def test_overdue_count_counts_a_bag_once(session, dc, staff, make_item):
    """The summary counts what the board lists: one overdue bag, not the bag and each thing in it."""
    bag = make_item(Kind.bag, name="Sales bag")
    make_item(Kind.laptop, bag=bag), make_item(Kind.usb, bag=bag)
    out(session, bag, staff, due_at=later(hours=-1))
    page = dc.get("/desk/").get_data(as_text=True)
    summary = html.unescape(page.split('class="board-summary"', 1)[1].split("</p>", 1)[0])
    assert "1 out" in summary
    assert "1 overdue" in summary, summary


def test_found_item_scans_appear_on_the_board_at_once(app, session, dc, staff, make_item):
    item = make_item(name="Lost laptop")
    out(session, item, staff)
    reread(session)
    token = label_token(session, item)
    before = dc.get("/desk/").get_data(as_text=True)
    assert "Found-item scans" not in before
    stranger = app.test_client()
    assert stranger.get(f"/S/{token}", headers=EN).status_code == 200
    page = dc.get("/desk/")
    text = text_of(page)
    assert "Found-item scans" in text
    found_part = text.split("Found-item scans", 1)[1].split("Out now", 1)[0]
    assert item.asset_tag in found_part and "Scanned, no message" in found_part
    # Handled: it leaves the board and the handling is recorded.
    reread(session)
    report = session.scalars(select(FoundReport)).one()
    resp = post(dc, f"/desk/found/{report.id}", page="/desk/")
    assert resp.status_code == 303
    assert "Found-item scans" not in dc.get("/desk/").get_data(as_text=True)
    handled = events(session, "found_handled")
    assert len(handled) == 1 and handled[0].item_id == item.id


# --- 3. a flag's life ---------------------------------------------------------------------------------------


@pytest.fixture
def flagged(session, staff, make_item):
    """An overdue, swept item: its check-out and its open flag."""
    item = make_item(name="Client laptop", data_class=DataClass.sensitive, encrypted=True, people_count=1500,
                     department="Sales")
    co = out(session, item, staff, out_at=NOW - timedelta(hours=6), due_at=NOW - timedelta(hours=1),
             destination="Yokohama client", purpose="Demo")
    result = run_sweep(session)
    assert len(result.flags) == 1
    return SimpleNamespace(item=item, co=co, flag=result.flags[0])


def flag_now(session, flag_id) -> Flag:
    reread(session)
    return session.get(Flag, flag_id)


def test_board_row_links_to_the_flag(dc, flagged):
    rows = board_rows(dc.get("/desk/").get_data(as_text=True))
    assert f'href="/desk/flags/{flagged.flag.id}"' in rows[flagged.item.asset_tag][1]
    page = dc.get(f"/desk/flags/{flagged.flag.id}")
    assert page.status_code == 200
    text = text_of(page)
    for part in (flagged.item.asset_tag, "Hanako Yamada", "Yokohama client", "Acknowledge", "Resolve", "Mark lost"):
        assert part in text


def test_acknowledge_with_note_and_new_due(session, dc, flagged, desk):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/acknowledge", {"note": "Called: bringing it back tomorrow 9:00",
                                                       "new_due": "2026-06-02T09:00"}, page=f"/desk/flags/{fid}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/desk/")
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.acknowledged
    assert flag.note == "Called: bringing it back tomorrow 9:00"
    assert flag.acknowledged_by_id == desk.id and flag.acknowledged_at == NOW
    assert flag.checkout.due_at == datetime(2026, 6, 2, 9, 0, tzinfo=TOKYO)
    assert flag.checkout.returned_at is None
    ev = events(session, "flag_acknowledged")
    assert len(ev) == 1 and ev[0].actor_id == desk.id and ev[0].item_id == flagged.item.id
    assert "bringing it back" in ev[0].data
    # The board shows it acknowledged and no longer overdue.
    page = dc.get("/desk/").get_data(as_text=True)
    classes, body = board_rows(page)[flagged.item.asset_tag]
    assert "row-overdue" not in classes and "Acknowledged" in body


def test_acknowledge_without_new_due_keeps_due(session, dc, flagged):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/acknowledge", {"note": "Left a voicemail"}, page=f"/desk/flags/{fid}")
    assert resp.status_code == 303
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.acknowledged and flag.checkout.due_at == NOW - timedelta(hours=1)


@pytest.mark.parametrize("data, message", [
    ({"note": "", "new_due": "2026-06-02T09:00"}, "Note is required."),
    ({"note": "   "}, "Note is required."),
    ({"note": "called", "new_due": "tomorrow"}, "The new due time is not a valid date and time."),
    ({"note": "called", "new_due": "2026-06-01T09:00"}, "The due time must be in the future."),
    ({"note": "x" * 2001}, "Note is too long (at most 2000 characters)."),
])
def test_acknowledge_errors_change_nothing(session, dc, flagged, data, message):
    fid = flagged.flag.id
    before = len(events(session))
    resp = post(dc, f"/desk/flags/{fid}/acknowledge", data, page=f"/desk/flags/{fid}", follow=True)
    assert ("error", message) in flashes(resp)
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.open and flag.note is None and flag.acknowledged_at is None
    assert flag.checkout.due_at == NOW - timedelta(hours=1)
    assert len(events(session)) == before


def test_resolve_returned_records_the_return(session, dc, flagged, desk):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/resolve", {"how": "returned", "note": "At the desk"},
                page=f"/desk/flags/{fid}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/desk/")
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.resolved and flag.resolution == "returned"
    assert flag.closed_by_id == desk.id and flag.closed_at == NOW
    co = session.get(Checkout, flagged.co.id)
    assert co.returned_at == NOW and co.returned_by_id == desk.id
    assert [e.action for e in events(session, item=flagged.item)][-2:] == ["return", "flag_resolved"]
    assert events(session, "flag_resolved")[0].actor_id == desk.id
    assert flagged.item.asset_tag not in dc.get("/desk/").get_data(as_text=True).split("Out now", 1)[1]


def test_resolve_confirmed_safe_needs_who_confirmed(session, dc, flagged, desk):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/resolve", {"how": "confirmed_safe", "confirmed_by": " "},
                page=f"/desk/flags/{fid}", follow=True)
    assert ("error", "Say who confirmed that the item is safe.") in flashes(resp)
    assert flag_now(session, fid).status == FlagStatus.open
    assert events(session, "flag_resolved") == []
    resp = post(dc, f"/desk/flags/{fid}/resolve", {"how": "confirmed_safe",
                                                   "confirmed_by": "Manager Sato, by phone"},
                page=f"/desk/flags/{fid}")
    assert resp.status_code == 303
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.resolved and flag.resolution == "confirmed_safe"
    assert flag.confirmed_by == "Manager Sato, by phone" and flag.closed_by_id == desk.id
    assert session.get(Checkout, flagged.co.id).returned_at is None  # still out
    ev = events(session, "flag_resolved")
    assert len(ev) == 1 and "Manager Sato" in ev[0].data and ev[0].actor_id == desk.id


def test_resolve_needs_a_way(session, dc, flagged):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/resolve", {"how": "vanished"}, page=f"/desk/flags/{fid}", follow=True)
    assert ("error", "Choose how the flag was resolved.") in flashes(resp)
    assert flag_now(session, fid).status == FlagStatus.open


def test_mark_lost_opens_an_incident(session, dc, flagged, desk, staff):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/lost", {"note": "Left on the Tokaido line"}, page=f"/desk/flags/{fid}")
    assert resp.status_code == 303
    flag = flag_now(session, fid)
    assert flag.status == FlagStatus.lost and flag.closed_by_id == desk.id
    incident = session.scalars(select(Incident)).one()
    assert resp.headers["Location"].endswith(f"/desk/incidents/{incident.id}")
    assert incident.item_id == flagged.item.id and incident.flag_id == fid
    assert incident.data_class == DataClass.sensitive and incident.encrypted is True
    assert incident.people_count == 1500
    assert incident.holder_id == staff.id
    assert incident.last_known_at == NOW - timedelta(hours=6)
    assert incident.last_known_place == "Yokohama client"
    assert incident.opened_by_id == desk.id and incident.known_at == NOW
    ev = events(session, "item_lost")
    assert len(ev) == 1 and ev[0].actor_id == desk.id and ev[0].item_id == flagged.item.id
    page = text_of(dc.get(resp.headers["Location"]))
    assert "Left on the Tokaido line" in page
    # The item is still out: the board marks it lost and links its row to the incident.
    board = dc.get("/desk/?fragment=1").get_data(as_text=True)
    row = board.split(flagged.item.asset_tag, 1)[1].split("</tr>", 1)[0]
    assert ">Lost</span>" in row and f'href="/desk/incidents/by-flag/{fid}"' in row
    assert "Left on the Tokaido line" in text_of(dc.get(f"/desk/incidents/by-flag/{fid}"))


@pytest.mark.parametrize("first", ["resolve", "lost"])
def test_closed_flags_refuse_further_actions(session, dc, flagged, first):
    fid = flagged.flag.id
    first_data = {"how": "confirmed_safe", "confirmed_by": "Sato"} if first == "resolve" else {"note": "gone"}
    assert post(dc, f"/desk/flags/{fid}/{first}", first_data, page=f"/desk/flags/{fid}").status_code == 303
    status = flag_now(session, fid).status
    page = text_of(dc.get(f"/desk/flags/{fid}"))
    assert "This flag is closed." in page and 'action="/desk/flags/' not in page
    before = len(events(session))
    incidents = session.scalar(select(func.count(Incident.id)))
    for action, data in (("acknowledge", {"note": "called"}), ("resolve", {"how": "returned"}),
                         ("resolve", {"how": "confirmed_safe", "confirmed_by": "X"}), ("lost", {"note": "x"})):
        resp = dc.post(f"/desk/flags/{fid}/{action}", data={**data, "csrf_token": csrf_token(dc, "/desk/")},
                       follow_redirects=True)
        assert ("error", "This flag is already closed.") in flashes(resp), action
    assert flag_now(session, fid).status == status
    assert session.get(Checkout, flagged.co.id).returned_at is None
    assert len(events(session)) == before
    assert session.scalar(select(func.count(Incident.id))) == incidents


def test_unknown_flag_is_404(dc):
    assert dc.get("/desk/flags/999999").status_code == 404


# --- 4. incidents -------------------------------------------------------------------------------------------


@pytest.fixture
def incident(session, dc, flagged, desk):
    fid = flagged.flag.id
    resp = post(dc, f"/desk/flags/{fid}/lost", {"note": "Lost on the train"}, page=f"/desk/flags/{fid}")
    assert resp.status_code == 303
    reread(session)
    inc = session.scalars(select(Incident)).one()
    return SimpleNamespace(id=inc.id, url=f"/desk/incidents/{inc.id}", item=flagged.item)


def test_an_incident_after_hand_overs_knows_the_place_from_before_them(session, dc, make_user, make_item, staff):
    """A hand-over starts with no destination; the incident says where the item was last said to be going."""
    second, third = make_user(name="Second"), make_user(name="Third")
    usb = make_item(Kind.usb, name="Client USB", data_class=DataClass.personal)
    out(session, usb, staff, out_at=tokyo(1, 9), due_at=tokyo(1, 11), destination="Osaka office")
    handed_over(session, tokyo(1, 10), usb, staff, second)
    handed_over(session, tokyo(1, 10, 30), usb, second, third)
    session.commit()
    run_sweep(session, at=tokyo(1, 20))
    flag = session.scalars(select(Flag).where(Flag.item_id == usb.id)).one()
    assert post(dc, f"/desk/flags/{flag.id}/lost", {"note": "gone"}, page=f"/desk/flags/{flag.id}").status_code == 303
    reread(session)
    incident = session.scalars(select(Incident)).one()
    assert incident.holder_id == third.id and incident.last_known_place == "Osaka office"


def test_incident_page_shows_what_it_held_and_who_had_it(dc, incident, staff):
    page = dc.get(incident.url)
    assert page.status_code == 200
    text = text_of(page)
    for part in (incident.item.asset_tag, "Client laptop", "Sensitive personal data", "1500", "Hanako Yamada",
                 "hanako@example.com", "090-1234-5678", "Yokohama client", local_dt(NOW - timedelta(hours=6)),
                 "Desk Officer", "Lost on the train", "Save as PDF", "Add an action", "Close the incident"):
        assert part in text, part
    # The timeline runs from the check-out: check-out, flagged, marked lost.
    timeline = text.rsplit("Timeline", 1)[1]
    positions = [timeline.index(label) for label in ("Checked out", "Flagged overdue", "Marked lost")]
    assert positions == sorted(positions)
    listed = dc.get("/desk/incidents/").get_data(as_text=True)
    assert f'href="/desk/incidents/{incident.id}"' in listed


def test_add_action_appends_to_the_record(session, dc, incident, desk):
    for text in ("Called the railway lost-and-found", "Informed the client"):
        resp = post(dc, f"{incident.url}/action", {"text": text}, page=incident.url)
        assert resp.status_code == 303
    page = text_of(dc.get(incident.url))
    actions = page.split("Actions taken", 1)[1].split("Timeline", 1)[0]
    order = [actions.index(t) for t in ("Lost on the train", "Called the railway lost-and-found",
                                        "Informed the client")]
    assert order == sorted(order)
    reread(session)
    assert session.scalar(select(func.count(IncidentAction.id))) == 3
    assert len(events(session, "incident_action")) == 2
    assert page.rsplit("Timeline", 1)[1].count("Incident action") == 2
    resp = post(dc, f"{incident.url}/action", {"text": "  "}, page=incident.url, follow=True)
    assert ("error", "Note is required.") in flashes(resp)
    assert session.scalar(select(func.count(IncidentAction.id))) == 3


def test_assessment_is_saved(session, dc, incident):
    resp = post(dc, f"{incident.url}/assess", {"financial_harm": "1", "wrongful_purpose": "1"}, page=incident.url)
    assert resp.status_code == 303
    reread(session)
    inc = session.get(Incident, incident.id)
    assert inc.financial_harm and inc.wrongful_purpose and not inc.properly_encrypted
    page = dc.get(incident.url).get_data(as_text=True)
    assert re.search(r'name="financial_harm" value="1" checked', page)
    assert re.search(r'name="wrongful_purpose" value="1" checked', page)
    assert not re.search(r'name="properly_encrypted" value="1" checked', page)
    assert "Final report: by 2026-07-31 (60 days from 2026-06-01)" in text_of(dc.get(incident.url))
    # Unticked boxes are saved as no.
    post(dc, f"{incident.url}/assess", {"properly_encrypted": "1"}, page=incident.url)
    reread(session)
    inc = session.get(Incident, incident.id)
    assert not inc.financial_harm and not inc.wrongful_purpose and inc.properly_encrypted
    assert len(events(session, "incident_assessed")) == 2


def _incident(**kw) -> Incident:
    values = dict(data_class=DataClass.personal, people_count=10, financial_harm=False, wrongful_purpose=False,
                  properly_encrypted=False, known_at=NOW)
    values.update(kw)
    return Incident(**values)


@pytest.mark.parametrize("kw, required, exempt", [
    ({}, False, False),
    ({"data_class": DataClass.sensitive}, True, False),
    ({"people_count": 1000}, False, False),
    ({"people_count": 1001}, True, False),
    ({"people_count": None}, False, False),
    ({"financial_harm": True}, True, False),
    ({"wrongful_purpose": True}, True, False),
    ({"data_class": DataClass.sensitive, "properly_encrypted": True}, False, True),
    ({"people_count": 5000, "properly_encrypted": True}, False, True),
    ({"financial_harm": True, "properly_encrypted": True}, False, True),
    ({"wrongful_purpose": True, "properly_encrypted": True}, True, False),
    ({"properly_encrypted": True}, False, False),
])
def test_report_duty_triggers(kw, required, exempt):
    duty = appi.report_duty(_incident(**kw), Policy())
    assert duty.required is required
    assert duty.exempt_by_encryption is exempt


@pytest.mark.parametrize("known_at, known_on, preliminary, final, final_wrongful", [
    (datetime(2026, 6, 1, 1, 0, tzinfo=UTC), date(2026, 6, 1), date(2026, 6, 6), date(2026, 7, 1),
     date(2026, 7, 31)),
    # 23:30 on 31 May in UTC is already 1 June in Tokyo.
    (datetime(2026, 5, 31, 15, 30, tzinfo=UTC), date(2026, 6, 1), date(2026, 6, 6), date(2026, 7, 1),
     date(2026, 7, 31)),
    # 14:59 UTC is 23:59 on 31 May in Tokyo.
    (datetime(2026, 5, 31, 14, 59, tzinfo=UTC), date(2026, 5, 31), date(2026, 6, 5), date(2026, 6, 30),
     date(2026, 7, 30)),
])
def test_report_duty_deadlines(known_at, known_on, preliminary, final, final_wrongful):
    duty = appi.report_duty(_incident(data_class=DataClass.sensitive, known_at=known_at), Policy())
    assert (duty.known_on, duty.preliminary_by, duty.final_by) == (known_on, preliminary, final)
    duty = appi.report_duty(_incident(wrongful_purpose=True, known_at=known_at), Policy())
    assert (duty.known_on, duty.preliminary_by, duty.final_by) == (known_on, preliminary, final_wrongful)


def test_incident_page_shows_the_deadlines(session, dc, incident):
    # The item is encrypted, but exemption is never assumed: the desk must confirm it.
    text = text_of(dc.get(incident.url))
    assert "Encrypted properly: a report may not be required." not in text
    post(dc, f"{incident.url}/assess", {}, page=incident.url)
    # Sensitive data, 1500 people: a report is required; known on 1 June in Tokyo.
    text = text_of(dc.get(incident.url))
    assert "A report is required." in text
    assert "Preliminary report: promptly, by 2026-06-06 at the latest." in text
    assert "Final report: by 2026-07-01 (30 days from 2026-06-01)." in text
    # Properly encrypted: exempt.
    post(dc, f"{incident.url}/assess", {"properly_encrypted": "1"}, page=incident.url)
    text = text_of(dc.get(incident.url))
    assert "A report is required." not in text
    assert "Encrypted properly: a report may not be required." in text


def test_incident_pdf(session, dc, staff, make_item, desk, tmp_path):
    item = make_item(name="<b>Bold</b> {{ 7*7 }}", data_class=DataClass.sensitive)
    out(session, item, staff, out_at=NOW - timedelta(hours=5), due_at=NOW - timedelta(hours=1),
        destination="<i>Osaka</i> & Co")
    flag = run_sweep(session).flags[0]
    resp = post(dc, f"/desk/flags/{flag.id}/lost", {"note": "<script>alert(1)</script>"}, page="/desk/")
    incident_url = resp.headers["Location"]
    pdf = dc.get(incident_url.split("?")[0].rstrip("/") + ".pdf")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF")
    assert item.asset_tag in pdf.headers["Content-Disposition"]
    (tmp_path / "incident.pdf").write_bytes(pdf.data)
    text = pdf_text(tmp_path / "incident.pdf")
    assert item.asset_tag in text
    assert "<b>Bold</b> {{ 7*7 }}" in text and "49" not in text.split("Bold", 1)[1].split("\n", 1)[0]
    assert "<i>Osaka</i> & Co" in text
    assert "<script>alert(1)</script>" in text
    assert "Hanako Yamada" in text
    assert f"Out since: {local_dt(NOW - timedelta(hours=5), seconds=False)}" in text  # 2026-06-01 05:00, year first
    assert "Times are in Asia/Tokyo." in text  # the reader's (here the main office's) zone, named
    # The web page escapes the same markup.
    page = dc.get(incident_url).get_data(as_text=True)
    assert "<b>Bold</b>" not in page and "&lt;b&gt;Bold&lt;/b&gt;" in page


def test_one_date_format_per_language_on_pages_and_pdfs(session, app, staff, make_item, make_user, tmp_path):
    """Japanese readers see 2026/06/01 19:00 everywhere, English readers 2026-06-01 19:00: never 6/1/26."""
    officer = make_user("security", name="警備 太郎", language="ja")
    item = make_item(name="顧客名簿PC", data_class=DataClass.sensitive, people_count=1500)
    out(session, item, staff, out_at=tokyo(1, 5), due_at=tokyo(1, 9))
    client = client_for(app, officer)
    board = text_of(client.get("/desk/"))
    assert "2026/06/01 09:00" in board and "6/1/26" not in board and "2026-06-01" not in board
    flag = run_sweep(session).flags[0]
    resp = post(client, f"/desk/flags/{flag.id}/lost", {"note": "紛失"}, page="/desk/")
    incident_url = resp.headers["Location"].split("?")[0].rstrip("/")
    post(client, f"{incident_url}/assess", {}, page=incident_url)
    page = text_of(client.get(incident_url))
    assert "2026/06/06" in page and "2026/07/01" in page and "2026-06" not in page
    (tmp_path / "incident.pdf").write_bytes(client.get(incident_url + ".pdf").data)
    text = pdf_text(tmp_path / "incident.pdf")
    assert "2026/06/01 05:00" in text and "2026/06/06" in text and "2026-06" not in text


# --- 5. an item's history -----------------------------------------------------------------------------------


def test_item_history_newest_first(session, dc, staff, desk, make_item):
    item = make_item(name="History laptop")
    other = make_item(name="Other laptop")
    out(session, item, staff, out_at=NOW - timedelta(hours=5), due_at=NOW - timedelta(hours=4))
    custody.return_item(session, NOW - timedelta(hours=3), item=item, actor=staff)
    session.commit()
    out(session, other, staff, out_at=NOW - timedelta(hours=2))
    out(session, item, staff, out_at=NOW - timedelta(hours=2), due_at=NOW - timedelta(hours=1))
    run_sweep(session)
    page = dc.get(f"/desk/records/items/{item.asset_tag.lower()}")
    assert page.status_code == 200
    text = text_of(page)
    body = text.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>", body)
    expected = events(session, item=item)[::-1]
    assert len(rows) == len(expected) >= 6
    labels = [r[1] for r in rows]
    assert labels[:4] == ["Flagged overdue", "Checked out", "Returned", "Checked out"]
    assert "Registered" in labels
    assert rows[1][0] == local_dt(NOW - timedelta(hours=2)) and rows[1][2] == "Hanako Yamada"
    assert dc.get("/desk/records/items/NO-SUCH-TAG").status_code == 404


# --- 6. exports ---------------------------------------------------------------------------------------------


def body_of(resp) -> bytes:
    """The whole body of a streamed response; a failure while streaming fails the test here and now.

    The failure's traceback would otherwise keep the request's database cursor alive into the next test,
    whose cleaning of the database would have to end it, and blur which test failed.
    """
    error = None
    try:
        data = resp.data
    except Exception as exc:  # reported below, without the traceback that holds the cursor
        error = f"the response failed while streaming: {exc!r}"
        data = b""
    finally:
        resp.close()
    if error:
        gc.collect()
        pytest.fail(error, pytrace=False)
    return data


def _csv_rows(resp) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body_of(resp).decode("utf-8-sig"))))


@pytest.mark.postgres  # a local-date range, streamed from a server-side cursor
def test_checkouts_csv(session, dc, make_user, make_item, desk):
    yamada = make_user(name="山田 花子", language="ja", email="yamada@example.jp")
    names = ["顧客名簿フォルダ", "-2", "@SUM(A1)", "before", "after", "late"]
    things = {n: make_item(Kind.folder, name=n) for n in names}
    out(session, things["顧客名簿フォルダ"], yamada, out_at=tokyo(1, 0, 30), purpose="訪問", destination="大阪支社")
    out(session, things["-2"], yamada, out_at=tokyo(1, 9), purpose='=HYPERLINK("http://x")', destination="+1")
    out(session, things["@SUM(A1)"], yamada, out_at=tokyo(2, 23, 59), purpose="@SUM(A1)", destination="-2")
    out(session, things["before"], yamada, out_at=tokyo(31, 23, 59, month=5))
    out(session, things["after"], yamada, out_at=tokyo(3, 0, 0))
    resp = dc.get("/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-02")
    assert resp.status_code == 200
    assert resp.mimetype == "text/csv" and "attachment" in resp.headers["Content-Disposition"]
    rows = _csv_rows(resp)
    assert resp.data.startswith(b"\xef\xbb\xbf")
    assert rows[0][:3] == ["Asset tag", "Kind", "Name"] and "Purpose" in rows[0] and "Destination" in rows[0]
    body = rows[1:]
    tags = [r[0] for r in body]
    assert tags == [things[n].asset_tag for n in ("顧客名簿フォルダ", "-2", "@SUM(A1)")]
    col = {h: i for i, h in enumerate(rows[0])}
    first, second, third = body
    assert first[col["Name"]] == "顧客名簿フォルダ" and first[col["Held by"]] == "山田 花子"
    assert first[col["Destination"]] == "大阪支社" and first[col["Purpose"]] == "訪問"
    assert first[col["Out since"]] == "2026-06-01 00:30"
    assert second[col["Purpose"]] == "'=HYPERLINK(\"http://x\")"
    assert second[col["Destination"]] == "'+1"
    assert second[col["Name"]] == "'-2"
    assert third[col["Name"]] == "'@SUM(A1)" and third[col["Purpose"]] == "'@SUM(A1)"
    assert third[col["Destination"]] == "'-2"
    for row in body:
        for value in row:
            assert not value.startswith(("=", "+", "-", "@")), value


def test_csv_values_speak_the_readers_language_and_tell_lost_and_handed_over(session, app, make_user, make_item,
                                                                             staff):
    """A Japanese desk officer's exports say ノートPC, 個人情報, 持ち出し中, 紛失 and 引継ぎ, not laptop/personal/out."""
    officer = make_user("security", name="警備 太郎", language="ja")
    suzuki = make_user(name="鈴木 一郎", language="ja")
    kept = make_item(Kind.laptop, name="営業PC", data_class=DataClass.personal, encrypted=True)
    lost = make_item(Kind.usb, name="顧客USB", data_class=DataClass.sensitive)
    passed = make_item(Kind.folder, name="契約書フォルダ", data_class=DataClass.none)
    out(session, kept, staff, out_at=tokyo(1, 9), due_at=tokyo(1, 20))
    lost_co = out(session, lost, staff, out_at=tokyo(1, 9), due_at=tokyo(1, 11))
    out(session, passed, staff, out_at=tokyo(1, 9), due_at=tokyo(1, 19))
    handed_over(session, tokyo(1, 10), passed, staff, suzuki)
    session.commit()
    run_sweep(session, at=tokyo(1, 12))
    flag = session.scalars(select(Flag).where(Flag.checkout_id == lost_co.id)).one()
    flags.mark_lost(session, tokyo(1, 12), flag, officer, "電車に置き忘れ")
    session.commit()
    client = client_for(app, officer)

    rows = _csv_rows(client.get("/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-01"))
    col = {h: i for i, h in enumerate(rows[0])}
    assert {"種別", "名前", "個人情報", "所持者", "状態", "返却日時", "引き継ぎ先"} <= set(col), rows[0]
    rows_by_tag: dict[str, list[list[str]]] = {}
    for r in rows[1:]:
        rows_by_tag.setdefault(r[0], []).append(r)
    (k,) = rows_by_tag[kept.asset_tag]
    assert (k[col["種別"]], k[col["個人情報"]], k[col["状態"]]) == ("ノートPC", "個人情報", "持ち出し中")
    assert k[col["持ち出し日時"]] == "2026/06/01 09:00" and k[col["返却期限"]] == "2026/06/01 20:00"
    (gone,) = rows_by_tag[lost.asset_tag]
    assert (gone[col["種別"]], gone[col["個人情報"]], gone[col["状態"]]) == ("USBメモリ", "要配慮個人情報", "紛失")
    first, second = sorted(rows_by_tag[passed.asset_tag], key=lambda r: r[col["持ち出し日時"]])
    assert first[col["状態"]] == "引き継ぎ" and first[col["引き継ぎ先"]] == "鈴木 一郎"
    assert first[col["返却日時"]] == "2026/06/01 10:00" and first[col["返却処理者"]] == ""
    assert second[col["状態"]] == "持ち出し中" and second[col["所持者"]] == "鈴木 一郎"

    rows = _csv_rows(client.get("/desk/records/register.csv"))
    col = {h: i for i, h in enumerate(rows[0])}
    by_tag = {r[0]: r for r in rows[1:]}
    assert by_tag[kept.asset_tag][col["状態"]] == "持ち出し中" and by_tag[kept.asset_tag][col["暗号化済み"]] == "はい"
    assert by_tag[lost.asset_tag][col["状態"]] == "紛失" and by_tag[lost.asset_tag][col["暗号化済み"]] == "いいえ"
    assert by_tag[passed.asset_tag][col["所持者"]] == "鈴木 一郎"
    home = make_item(Kind.bag, name="予備バッグ")
    late = make_item(Kind.usb, name="期限切れUSB")
    out(session, late, staff, out_at=tokyo(1, 8), due_at=tokyo(1, 9))
    rows = _csv_rows(client.get("/desk/records/register.csv"))
    by_tag = {r[0]: r for r in rows[1:]}
    assert by_tag[home.asset_tag][col["状態"]] == "社内で保管中" and by_tag[home.asset_tag][col["種別"]] == "バッグ"
    assert by_tag[late.asset_tag][col["状態"]] == "期限超過"


@pytest.mark.parametrize("query", ["from=2026-06-10&to=2026-06-01", "from=2025-01-01&to=2026-06-01",
                                   "from=garbage&to=2026-06-01", "from=2026-06-01&to=", "",
                                   "from=2026-02-30&to=2026-03-01"])
def test_checkouts_csv_bad_range(dc, query):
    resp = dc.get("/desk/records/checkouts.csv?" + query)
    assert resp.status_code in (302, 303)
    assert "text/csv" not in resp.headers.get("Content-Type", "")
    page = dc.get(resp.headers["Location"])
    errors = [m for c, m in flashes(page) if c == "error"]
    assert errors and errors[0] in ("Give the first and last day as dates.",
                                    "The last day must be on or after the first, within a year.")


@pytest.mark.postgres  # streamed from a server-side cursor
def test_media_register_csv(session, dc, staff, desk, make_item, make_user):
    from tracker.items.register import retire

    held = make_item(Kind.laptop, name="Held laptop", department="Sales", data_class=DataClass.sensitive,
                     encrypted=True, people_count=300)
    home = make_item(Kind.usb, name="Home stick")
    gone = make_item(Kind.usb, name="Retired stick")
    bag = make_item(Kind.bag, name="Bag")
    inside = make_item(Kind.folder, name="Inside folder", bag=bag)
    retire(session, NOW, gone, make_user("admin"))
    session.commit()
    out(session, held, staff, out_at=NOW - timedelta(hours=1), due_at=later(hours=5))
    out(session, bag, staff, out_at=NOW - timedelta(hours=1), due_at=later(hours=5))
    resp = dc.get("/desk/records/register.csv")
    assert resp.status_code == 200
    rows = _csv_rows(resp)
    assert resp.data.startswith(b"\xef\xbb\xbf")
    col = {h: i for i, h in enumerate(rows[0])}
    by_tag = {r[0]: r for r in rows[1:]}
    assert set(by_tag) == {held.asset_tag, home.asset_tag, bag.asset_tag, inside.asset_tag}
    row = by_tag[held.asset_tag]
    assert row[col["Held by"]] == "Hanako Yamada" and row[col["E-mail"]] == "hanako@example.com"
    assert row[col["Due back"]] == "2026-06-01 15:00" and row[col["Out since"]] == "2026-06-01 09:00"
    assert row[col["Number of people"]] == "300"
    assert by_tag[inside.asset_tag][col["Held by"]] == "Hanako Yamada"
    assert by_tag[home.asset_tag][col["Held by"]] == "" and by_tag[home.asset_tag][col["Due back"]] == ""


# --- 7. charts ----------------------------------------------------------------------------------------------


@pytest.mark.postgres  # the per-day and per-department queries
def test_records_charts_per_day_and_department(session, dc, staff, make_item):
    sales1 = make_item(department="Sales")
    sales2 = make_item(department="Sales")
    legal = make_item(department="Legal")
    may = make_item(department="Legal")
    bag = make_item(Kind.bag, department="Sales")
    make_item(Kind.usb, bag=bag, department="Sales")
    # 1 June (Tokyo): three check-outs, one just after local midnight; the bag counts once.
    out(session, sales1, staff, out_at=tokyo(1, 0, 30), due_at=tokyo(1, 8))
    out(session, legal, staff, out_at=tokyo(1, 8), due_at=tokyo(1, 18))
    out(session, bag, staff, out_at=tokyo(1, 9), due_at=tokyo(1, 18))
    # 31 May 23:50 in Tokyo: May, not June.
    out(session, may, staff, out_at=tokyo(31, 23, 50, month=5), due_at=tokyo(1, 9, 30))
    run_sweep(session, at=NOW)  # 10:00 on 1 June: sales1 and may are overdue
    custody.return_item(session, NOW, item=sales1, actor=staff)
    session.commit()
    out(session, sales1, staff, out_at=tokyo(3, 10), due_at=tokyo(3, 18))
    out(session, sales2, staff, out_at=tokyo(3, 11), due_at=tokyo(3, 18))
    page = dc.get("/desk/records/?month=2026-06")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "2026-06" in text and "<svg" in text
    per_day = text.split("The numbers per day", 1)[1]
    days = {int(d): (int(o), int(f)) for d, o, f in
            re.findall(r"<tr><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", per_day)}
    assert len(days) == 30
    assert days[1] == (3, 2)
    assert days[2] == (0, 0)
    assert days[3] == (2, 0)
    assert sum(o for o, _ in days.values()) == 5
    dept = text.split("By department", 1)[1].split("</table>", 1)[0]
    found_rows = dict((d, (int(o), int(f))) for d, o, f in
                      re.findall(r"<tr><td>(?:<a [^>]*>)?([^<]+)(?:</a>)?</td><td>(\d+)</td><td>(\d+)</td></tr>", dept))
    assert found_rows == {"Legal": (1, 1), "Sales": (4, 1)}
    may_page = dc.get("/desk/records/?month=2026-05").get_data(as_text=True)
    may_days = {int(d): (int(o), int(f)) for d, o, f in re.findall(
        r"<tr><td>(\d+)</td><td>(\d+)</td><td>(\d+)</td></tr>", may_page.split("The numbers per day", 1)[1])}
    assert len(may_days) == 31 and may_days[31] == (1, 0)
    assert dc.get("/desk/records/?month=garbage").status_code == 200


# --- 8. roles -----------------------------------------------------------------------------------------------


@pytest.fixture
def world(app, session, make_user, make_item):
    """Something behind every desk route: a flag, an incident, a request, a finder's scan."""
    staff = make_user(name="Alice", language="en")
    security = make_user("security", name="Desk", language="en")
    admin = make_user("admin", name="Admin", language="en")
    overdue, lost_item, waiting, scanned = (make_item(), make_item(), make_item(Kind.usb),
                                            make_item(data_class=DataClass.none))
    out(session, overdue, staff, out_at=NOW - timedelta(hours=5), due_at=NOW - timedelta(hours=1))
    out(session, lost_item, staff, out_at=NOW - timedelta(hours=5), due_at=NOW - timedelta(hours=2))
    out(session, scanned, staff, out_at=NOW - timedelta(hours=1), due_at=later(hours=2))
    result = run_sweep(session)
    flag = next(f for f in result.flags if f.item_id == overdue.id)
    lost_flag = next(f for f in result.flags if f.item_id == lost_item.id)
    incident = flags.mark_lost(session, NOW, lost_flag, security, "gone")
    req = approvals.request_checkout(session, NOW, item=waiting, holder=staff, due_at=later(days=3), purpose="trip",
                                   destination="Fukuoka", reason="overnight", policy=Policy(approval_required=True),
                                   handling_ack=True)
    report = FoundReport(item_id=scanned.id, at=NOW, source="203.0.113.9")
    session.add(report)
    session.commit()
    return SimpleNamespace(users={"staff": staff, "security": security, "admin": admin}, flag=flag,
                           incident=incident, request=req, report=report, overdue=overdue, scanned=scanned)


ROUTES = {
    "board": ("GET", "/desk/", {}),
    "fragment": ("GET", "/desk/?fragment=1", {}),
    "wall": ("GET", "/desk/?wall=1", {}),
    "flag": ("GET", "/desk/flags/{flag}", {}),
    "acknowledge": ("POST", "/desk/flags/{flag}/acknowledge", {"note": "called"}),
    "resolve": ("POST", "/desk/flags/{flag}/resolve", {"how": "returned"}),
    "lost": ("POST", "/desk/flags/{flag}/lost", {"note": "gone"}),
    "incidents": ("GET", "/desk/incidents/", {}),
    "incident": ("GET", "/desk/incidents/{incident}", {}),
    "incident_action": ("POST", "/desk/incidents/{incident}/action", {"text": "called the police"}),
    "incident_assess": ("POST", "/desk/incidents/{incident}/assess", {"financial_harm": "1"}),
    "incident_close": ("POST", "/desk/incidents/{incident}/close", {}),
    "incident_pdf": ("GET", "/desk/incidents/{incident}.pdf", {}),
    "incident_by_flag": ("GET", "/desk/incidents/by-flag/{incident_flag}", {}),
    "records": ("GET", "/desk/records/", {}),
    "checkouts_csv": ("GET", "/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-30", {}),
    "register_csv": ("GET", "/desk/records/register.csv", {}),
    "ledger": ("GET", "/desk/records/ledger.{fmt}?month=2026-06", {}),
    "media_register": ("GET", "/desk/records/media-register.{fmt}", {}),
    "history": ("GET", "/desk/records/items/{tag}", {}),
    "scanner": ("GET", "/desk/scanner", {}),
    "scanner_post": ("POST", "/desk/scanner", {"code": "{scanned_tag}"}),
    "decide": ("POST", "/desk/requests/{request}", {"decision": "approve"}),
    "found": ("POST", "/desk/found/{report}", {}),
    "found_many": ("POST", "/desk/found", {"report": "{report}"}),
    "counts_due": ("GET", "/desk/counts-due/", {}),
}


def _url(w, template: str) -> str:
    return template.format(flag=w.flag.id, incident=w.incident.id, incident_flag=w.incident.flag_id,
                           tag=w.overdue.asset_tag, fmt="xlsx",
                           request=w.request.id, report=w.report.id, scanned_tag=w.scanned.asset_tag)


def _send(c, w, name):
    method, url, data = ROUTES[name]
    url = _url(w, url)
    if method == "GET":
        return c.get(url)
    return c.post(url, data={**{k: _url(w, v) for k, v in data.items()}, "csrf_token": csrf_token(c)})


def _state(session) -> tuple:
    reread(session)
    return (session.scalar(select(func.count(Event.id)).where(Event.action != "refused")),
            sorted(session.execute(select(Checkout.id, Checkout.returned_at, Checkout.due_at)).all()),
            sorted(session.execute(select(Flag.id, Flag.status, Flag.note)).all()),
            sorted(session.execute(select(Incident.id, Incident.closed_at, Incident.financial_harm)).all()),
            session.scalar(select(func.count(IncidentAction.id))),
            sorted(session.execute(select(CheckoutRequest.id, CheckoutRequest.status)).all()),
            sorted(session.execute(select(FoundReport.id, FoundReport.handled_at)).all()))


def test_every_desk_route_is_in_the_role_table(app):
    desk_rules = {(r.rule, m) for r in app.url_map.iter_rules() if r.rule.startswith("/desk")
                  for m in r.methods - {"HEAD", "OPTIONS"}}
    covered = {(re.sub(r"\{\w+\}", "x", u.split("?")[0]), m) for m, u, _ in ROUTES.values()}
    normalised = {(re.sub(r"<[^>]+>", "x", rule), m) for rule, m in desk_rules}
    assert normalised <= covered, normalised - covered


@pytest.mark.parametrize("name", list(ROUTES))
def test_anonymous_and_staff_are_kept_out(app, session, world, name):
    staff = client_for(app, world.users["staff"])
    before = _state(session)
    anon = app.test_client()
    resp = _send(anon, world, name)
    assert resp.status_code == 302, (name, resp.status_code)
    assert resp.headers["Location"].split("?")[0].endswith("/login")
    resp = _send(staff, world, name)
    assert resp.status_code == 403, (name, resp.status_code)
    assert _state(session) == before


EXPECTED = {
    "board": 200, "fragment": 200, "wall": 200, "flag": 200, "acknowledge": ("/desk/", "flag_acknowledged"),
    "resolve": ("/desk/", "flag_resolved"), "lost": ("/desk/incidents/", "item_lost"), "incidents": 200,
    "incident": 200, "incident_action": ("/desk/incidents/", "incident_action"),
    "incident_assess": ("/desk/incidents/", "incident_assessed"),
    "incident_close": ("/desk/incidents/", "incident_closed"), "incident_pdf": 200, "incident_by_flag": 200,
    "records": 200,
    "checkouts_csv": 200, "register_csv": 200, "ledger": 200, "media_register": 200, "history": 200, "scanner": 200,
    "scanner_post": ("/desk/scanner", "return"), "decide": ("/desk/", "checkout_approved"),
    "found": ("/desk/", "found_handled"),
    "found_many": ("/desk/", "found_handled"), "counts_due": 200,
}


EXPORTS = {"checkouts_csv", "register_csv", "ledger", "media_register", "incident_pdf"}


@pytest.mark.parametrize("role", ["security", "admin"])
@pytest.mark.parametrize("name", list(ROUTES))
def test_security_and_admin_reach_everything(app, session, world, name, role):
    user = world.users[role]
    c = client_for(app, user)
    before = len(events(session))
    resp = _send(c, world, name)
    expected = EXPECTED[name]
    if expected == 200:
        assert resp.status_code == 200, (name, resp.status_code)
        assert body_of(resp)  # read the whole body: CSV and PDF are made while it is sent
        new = events(session)[before:]
        # Reading changes nothing; a download of personal-data records is itself recorded, by whom.
        assert [e.action for e in new] == (["export"] if name in EXPORTS else []), (name, new)
        assert all(e.actor_id == user.id for e in new)
        return
    path, action = expected
    assert resp.status_code in (302, 303), (name, resp.status_code)
    assert path in resp.headers["Location"]
    page = c.get(resp.headers["Location"])
    assert not [m for cat, m in flashes(page) if cat == "error" and "marked lost" not in m], (name, flashes(page))
    new = events(session)[before:]
    assert action in [e.action for e in new], (name, [e.action for e in new])
    assert all(e.actor_id == user.id for e in new if e.action == action)


def test_csv_exports_read_departments_with_the_rows_not_one_query_each(app, session, dc, make_user, make_item):
    """Twenty items in twenty departments cost the same statements as two items in two."""
    holder = make_user()

    def statements(n: int) -> tuple[int, int, list[list[str]]]:
        for i in range(n):
            item = make_item(Kind.folder, department=f"部署{n}-{i}")
            out(session, item, holder, out_at=tokyo(1, 9))
        with counting(app) as seen:
            body = _csv_rows(dc.get("/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-01"))
        checkouts = len(seen)
        with counting(app) as seen:
            register = _csv_rows(dc.get("/desk/records/register.csv"))
        return checkouts, len(seen), body + register

    few_checkouts, few_register, _ = statements(2)
    many_checkouts, many_register, rows = statements(20)
    assert many_checkouts == few_checkouts and many_register == few_register
    assert sum(1 for r in rows if "部署20-19" in r) == 2  # the department is in both files
