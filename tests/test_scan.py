"""The phone scan through HTTP: the one primary button per state, take out / return / take over, the handling
rules, long check-outs and the desk's approval, double taps, the found-item page, the desk's returns scanner
and "My items"."""

from __future__ import annotations

import html
import io
import re
from datetime import datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image
from sqlalchemy import select

from tests.helpers import (
    EN,
    NOW,
    TOKYO,
    client_for,
    count,
    csrf_from,
    flashes,
    label_token,
    later,
    local_dt,
    open_checkout,
    reread,
)
from tracker.custody import operations as custody
from tracker.items import register as items
from tracker.labels import design, layouts, qr, render
from tracker.models import Checkout, CheckoutRequest, DataClass, Event, FoundReport, Kind, RequestStatus

_BUTTON = re.compile(r'<button type="submit" class="([^"]*)"[^>]*>(.*?)</button>', re.S)

pytestmark = pytest.mark.usefixtures("english", "frozen_clock")


@pytest.fixture(autouse=True)
def company(app):
    app.config["COMPANY_NAME"] = "Example Media KK"
    app.config["FOUND_HOTLINE"] = "03-1234-5678"


def buttons(page) -> list[tuple[str, str]]:
    """The submit buttons of the action card (class, text)."""
    text = page.get_data(as_text=True)
    card = text.split('<div class="card action">', 1)[1].split("</div>\n\n<details", 1)[0]
    return [(c, html.unescape(t).strip()) for c, t in _BUTTON.findall(card)]


def primary(page) -> list[str]:
    return [t for c, t in buttons(page) if c == "primary"]


def take_out(client, url, tag, follow=True, **fields):
    """Open the scan page and press Take out, the way the phone does (the page's own CSRF token)."""
    page = client.get(url, headers=EN)
    data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "next": url}
    data.update(fields)
    return client.post(f"/items/{tag}/checkout", data=data, headers=EN, follow_redirects=follow)


def give_back(client, url, tag, follow=True):
    page = client.get(url, headers=EN)
    data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "next": url}
    return client.post(f"/items/{tag}/return", data=data, headers=EN, follow_redirects=follow)


def due_field(moment: datetime) -> str:
    return moment.astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")


DAY_END = datetime(2026, 6, 1, 19, 0, tzinfo=TOKYO)
TOMORROW = datetime(2026, 6, 2, 12, 0, tzinfo=TOKYO)


@pytest.fixture
def staff(make_user):
    return make_user(name="Hanako Yamada", language="en")


@pytest.fixture
def colleague(make_user):
    return make_user(name="Taro Suzuki", language="en")


@pytest.fixture
def desk_user(make_user):
    return make_user("security", name="Desk Officer", language="en")


# --- the scan page -----------------------------------------------------------------------------------------


def test_scan_in_item_offers_take_out(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    token = label_token(session, item)
    c = client_for(app, staff)
    for url in (f"/S/{token}", f"/s/{token.lower()}"):
        page = c.get(url, headers=EN)
        assert page.status_code == 200
        text = page.get_data(as_text=True)
        assert item.asset_tag in text and "In the office" in text
        assert primary(page) == ["Take out"]
        assert [t for _, t in buttons(page)] == ["Take out"]


def test_scan_shows_return_and_a_hand_over_offer_to_the_holder_and_nothing_to_take_to_a_colleague(
        app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    page = client_for(app, staff).get(url, headers=EN)
    assert [t for _, t in buttons(page)] == ["Return"]
    assert primary(page) == ["Return"]
    assert f'href="/items/{item.asset_tag}/handover?next=' in page.get_data(as_text=True)  # whom to: its own page
    page = client_for(app, colleague).get(url, headers=EN)
    assert buttons(page) == []  # a hand-over starts with the holder's offer
    text = html.unescape(page.get_data(as_text=True))
    assert "Out with Hanako Yamada since" in text
    assert "To take it over, ask Hanako Yamada to offer it to you." in text


def test_security_also_sees_receive_return(app, session, staff, desk_user, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    page = client_for(app, desk_user).get(url, headers=EN)
    labels = [t for _, t in buttons(page)]
    assert "Receive return" in labels
    assert primary(page) == ["Receive return"]


def test_take_out_is_prefilled_from_the_last_checkout_and_shows_the_day_end(app, session, staff, make_item):
    earlier, item = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    custody.check_out(session, NOW - timedelta(days=3), item=earlier, holder=staff, actor=staff,
                      due_at=NOW - timedelta(days=3) + timedelta(hours=4), purpose="Client demo",
                      destination="Osaka branch")
    custody.return_item(session, NOW - timedelta(days=3) + timedelta(hours=3), item=earlier, actor=staff)
    session.commit()
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=EN)
    text = page.get_data(as_text=True)
    assert re.search(r'name="purpose"[^>]*value="Client demo"', text)
    assert re.search(r'name="destination"[^>]*value="Osaka branch"', text)
    assert re.search(r'name="due"[^>]*value="2026-06-01T19:00"', text)
    assert f"<strong>{local_dt(DAY_END)}</strong>" in text


def test_take_out_in_one_tap_with_the_prefilled_form(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    page = take_out(app_client := client_for(app, staff), url, item.asset_tag)
    assert ("success", f"{item.asset_tag} is checked out to Hanako Yamada.") in flashes(page)
    assert page.request.path == url
    co = open_checkout(session, item)
    assert co.holder_id == staff.id and co.due_at == DAY_END and co.out_at == NOW
    assert primary(app_client.get(url, headers=EN)) == ["Return"]


def test_get_changes_nothing(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    before = count(session, Event)
    c = client_for(app, staff)
    c.get(url, headers=EN)
    c.get(f"/items/{item.asset_tag}/checkout", headers=EN)
    assert open_checkout(session, item) is None
    assert count(session, Checkout) == 0
    assert count(session, Event, Event.action.in_(["checkout", "return", "handover"])) == 0
    assert count(session, Event) >= before


def test_post_without_csrf_is_refused(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    c = client_for(app, staff)
    resp = c.post(f"/items/{item.asset_tag}/checkout", data={}, headers=EN)
    assert resp.status_code == 400
    assert open_checkout(session, item) is None


# --- handling rules --------------------------------------------------------------------------------------


def test_first_checkout_of_the_day_asks_for_the_handling_rules(app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.personal)
    url = f"/S/{label_token(session, item)}"
    c = client_for(app, staff)
    page = c.get(url, headers=EN)
    text = page.get_data(as_text=True)
    assert "Handling rules for personal data" in text
    assert "luggage rack" in text and 'name="rules_ack"' in text
    page = take_out(c, url, item.asset_tag)
    assert ("error", "Please confirm that you have read the handling rules for personal data.") in flashes(page)
    assert open_checkout(session, item) is None
    assert count(session, Checkout) == 0
    page = take_out(c, url, item.asset_tag, rules_ack="1")
    assert flashes(page)[0][0] == "success"
    assert open_checkout(session, item).holder_id == staff.id
    give_back(c, url, item.asset_tag)
    # The second check-out of the day does not ask again.
    other = client_for(app, colleague)
    page = other.get(url, headers=EN)
    assert 'name="rules_ack"' not in page.get_data(as_text=True)
    page = take_out(other, url, item.asset_tag)
    assert flashes(page)[0][0] == "success"
    assert open_checkout(session, item).holder_id == colleague.id


def test_items_without_personal_data_do_not_ask(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=EN)
    assert 'name="rules_ack"' not in page.get_data(as_text=True)


# --- long check-outs -------------------------------------------------------------------------------------


def test_long_checkout_needs_a_reason(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    c = client_for(app, staff)
    page = take_out(c, url, item.asset_tag, due=due_field(TOMORROW))
    assert ("error", "Overnight or longer check-outs need a reason and a due time.") in flashes(page)
    assert open_checkout(session, item) is None
    assert count(session, Event, Event.action == "checkout") == 0
    page = take_out(c, url, item.asset_tag, due=due_field(TOMORROW), reason="Trade fair in Osaka")
    assert flashes(page)[0][0] == "success"
    co = open_checkout(session, item)
    assert co.due_at == TOMORROW and co.reason == "Trade fair in Osaka"


def test_due_time_in_the_past_is_refused(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    page = take_out(client_for(app, staff), url, item.asset_tag, due=due_field(NOW - timedelta(hours=1)))
    assert flashes(page)[0] == ("error", "The due time must be in the future.")
    assert open_checkout(session, item) is None


@pytest.fixture
def approval(app):
    app.config["APPROVAL_REQUIRED"] = True


def _request_long(app, session, staff, item):
    url = f"/S/{label_token(session, item)}"
    c = client_for(app, staff)
    page = take_out(c, url, item.asset_tag, due=due_field(TOMORROW), reason="Overnight at the client",
                    purpose="Audit", destination="Nagoya")
    return c, url, page


def test_long_checkout_waits_for_the_desk(app, session, staff, desk_user, make_item, approval):
    item = make_item(data_class=DataClass.none)
    c, url, page = _request_long(app, session, staff, item)
    assert flashes(page)[0][0] == "info"
    assert "security desk" in flashes(page)[0][1]
    text = page.get_data(as_text=True)
    assert "Waiting for the security desk" in text
    # The requester waits on the request's page, which fetches its state again by itself (live.js).
    assert "data-live-src=" in text and "live.js" in text
    assert "Take out" not in text
    assert open_checkout(session, item) is None
    req = session.scalar(select(CheckoutRequest).where(CheckoutRequest.item_id == item.id))
    assert req.status == RequestStatus.pending and req.requester_id == staff.id and req.due_at == TOMORROW
    # The item's page shows the wait too, and checks again by itself.
    text = c.get(url, headers=EN).get_data(as_text=True)
    assert "Waiting for the security desk" in text and '<meta http-equiv="refresh"' in text
    assert "Take out" not in [t for _, t in buttons(c.get(url, headers=EN))]
    # A resubmission does not make a second request.
    take_out(c, url, item.asset_tag, due=due_field(TOMORROW), reason="Overnight at the client")
    assert count(session, CheckoutRequest) == 1
    # The desk sees it and approves it.
    d = client_for(app, desk_user)
    board = d.get("/desk/", headers=EN)
    text = board.get_data(as_text=True)
    assert "Waiting for approval" in text and item.asset_tag in text and "Hanako Yamada" in text
    assert "Overnight at the client" in text
    resp = d.post(f"/desk/requests/{req.id}", data={"csrf_token": csrf_from(text), "decision": "approve"},
                  headers=EN, follow_redirects=True)
    assert resp.status_code == 200
    assert flashes(resp)[0] == ("success", f"{item.asset_tag}: approved, now out with Hanako Yamada.")
    co = open_checkout(session, item)
    assert co.holder_id == staff.id and co.due_at == TOMORROW and co.reason == "Overnight at the client"
    assert co.purpose == "Audit" and co.destination == "Nagoya"
    page = c.get(url, headers=EN)
    assert "Waiting for the security desk" not in page.get_data(as_text=True)
    assert primary(page) == ["Return"]


def test_denied_request_leaves_the_item_in(app, session, staff, desk_user, make_item, approval):
    item = make_item(data_class=DataClass.none)
    c, url, _ = _request_long(app, session, staff, item)
    reread(session)
    req = session.scalar(select(CheckoutRequest).where(CheckoutRequest.item_id == item.id))
    d = client_for(app, desk_user)
    token = csrf_from(d.get("/desk/", headers=EN).get_data(as_text=True))
    resp = d.post(f"/desk/requests/{req.id}", data={"csrf_token": token, "decision": "deny"}, headers=EN,
                  follow_redirects=True)
    assert flashes(resp)[0] == ("success", f"{item.asset_tag}: denied.")
    assert open_checkout(session, item) is None
    assert count(session, CheckoutRequest, CheckoutRequest.status == RequestStatus.pending) == 0
    assert primary(c.get(url, headers=EN)) == ["Take out"]


def test_staff_cannot_decide_on_the_desk(app, session, staff, colleague, make_item, approval):
    item = make_item(data_class=DataClass.none)
    _request_long(app, session, staff, item)
    reread(session)
    req = session.scalar(select(CheckoutRequest))
    c = client_for(app, colleague)
    token = csrf_from(c.get("/account", headers=EN).get_data(as_text=True))
    assert c.post(f"/desk/requests/{req.id}", data={"csrf_token": token, "decision": "approve"}).status_code == 403
    assert open_checkout(session, item) is None


# --- double taps and races ------------------------------------------------------------------------------


def test_double_tap_gives_one_checkout(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    c = client_for(app, staff)
    page = c.get(url, headers=EN)
    data = {"csrf_token": csrf_from(page.get_data(as_text=True)), "next": url, "purpose": "Visit"}
    first = c.post(f"/items/{item.asset_tag}/checkout", data=data, headers=EN, follow_redirects=True)
    second = c.post(f"/items/{item.asset_tag}/checkout", data=data, headers=EN, follow_redirects=True)
    assert flashes(first) == [("success", f"{item.asset_tag} is checked out to Hanako Yamada.")]
    assert flashes(second) == [("info", f"{item.asset_tag} is already checked out to you.")]
    assert second.status_code == 200
    assert count(session, Checkout, Checkout.item_id == item.id) == 1
    assert count(session, Event, Event.action == "checkout") == 1


def test_second_person_is_told_who_has_it(app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    mine, theirs = client_for(app, staff), client_for(app, colleague)
    # Both phones opened the page while the item was in.
    forms = {}
    for who, c in (("staff", mine), ("colleague", theirs)):
        forms[who] = {"csrf_token": csrf_from(c.get(url, headers=EN).get_data(as_text=True)), "next": url}
    assert flashes(mine.post(f"/items/{item.asset_tag}/checkout", data=forms["staff"], headers=EN,
                             follow_redirects=True))[0][0] == "success"
    late = theirs.post(f"/items/{item.asset_tag}/checkout", data=forms["colleague"], headers=EN,
                       follow_redirects=True)
    assert flashes(late) == [("error", f"Already out: Hanako Yamada since {local_dt(NOW)}.")]
    co = open_checkout(session, item)
    assert co.holder_id == staff.id
    assert count(session, Checkout) == 1
    assert count(session, Event, Event.action.in_(["checkout", "handover"])) == 1


def test_double_return_is_one_return(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    c = client_for(app, staff)
    data = {"csrf_token": csrf_from(c.get(url, headers=EN).get_data(as_text=True)), "next": url}
    first = c.post(f"/items/{item.asset_tag}/return", data=data, headers=EN, follow_redirects=True)
    second = c.post(f"/items/{item.asset_tag}/return", data=data, headers=EN, follow_redirects=True)
    assert flashes(first) == [("success", f"{item.asset_tag} is returned.")]
    assert flashes(second) == [("info", f"{item.asset_tag} is returned.")]
    assert open_checkout(session, item) is None
    assert count(session, Event, Event.action == "return") == 1


def test_stale_return_after_someone_else_took_it_changes_nothing(app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    c = client_for(app, staff)
    data = {"csrf_token": csrf_from(c.get(url, headers=EN).get_data(as_text=True)), "next": url}
    c.post(f"/items/{item.asset_tag}/return", data=data, headers=EN, follow_redirects=True)
    take_out(client_for(app, colleague), url, item.asset_tag)
    stale = c.post(f"/items/{item.asset_tag}/return", data=data, headers=EN, follow_redirects=True)
    assert flashes(stale) == [("error", "You are not permitted to do that.")]
    assert open_checkout(session, item).holder_id == colleague.id


def test_hand_over_to_a_colleague_who_accepts_it(app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    giver = client_for(app, staff)
    data = {"csrf_token": csrf_from(giver.get(url, headers=EN).get_data(as_text=True)), "next": url,
            "to": colleague.email, "checkout": str(open_checkout(session, item).id)}
    offered = giver.post(f"/items/{item.asset_tag}/handover", data=data, headers=EN, follow_redirects=True)
    assert flashes(offered) == [("success", f"Offered to Taro Suzuki. {item.asset_tag} stays yours until they accept.")]
    assert open_checkout(session, item).holder_id == staff.id
    c = client_for(app, colleague)
    mine = c.get("/my", headers=EN).get_data(as_text=True)
    offer_url = re.search(r'href="(/handovers/\d+)"', mine).group(1)
    data = {"csrf_token": csrf_from(c.get(offer_url, headers=EN).get_data(as_text=True))}
    first = c.post(f"{offer_url}/accept", data=data, headers=EN, follow_redirects=True)
    again = c.post(f"{offer_url}/accept", data=data, headers=EN, follow_redirects=True)
    assert flashes(first) == [("success", f"{item.asset_tag} is now yours.")]
    assert flashes(again)[0][0] == "info"
    co = open_checkout(session, item)
    assert co.holder_id == colleague.id and co.due_at == later(hours=8)
    assert count(session, Event, Event.action == "handover") == 1


# --- not signed in: the found-item page -------------------------------------------------------------------


@pytest.fixture
def lost(session, staff, make_item):
    """A personal-data item out with a member of staff, as a finder would pick it up."""
    item = make_item(name="Sales laptop of Yamada", data_class=DataClass.sensitive, department="Sales dept")
    custody.check_out(session, NOW - timedelta(hours=2), item=item, holder=staff, actor=staff,
                      due_at=later(hours=8), destination="Shinagawa client")
    session.commit()
    return item


def _assert_nothing_about(text: str, item) -> None:
    for secret in (item.asset_tag, item.name, "Sales dept", "Hanako Yamada", "Shinagawa", "Sensitive",
                   item.serial or "\x00"):
        assert secret not in text, secret


def test_found_page_for_a_stranger(app, session, client, lost):
    token = label_token(session, lost)
    page = client.get(f"/S/{token}", headers=EN)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Example Media KK" in text and "03-1234-5678" in text
    assert 'name="message"' in text and 'name="contact"' in text
    _assert_nothing_about(text, lost)
    # Recorded at once, without waiting for a message.
    reread(session)
    reports = list(session.scalars(select(FoundReport)))
    assert len(reports) == 1 and reports[0].item_id == lost.id and reports[0].message is None
    scans = list(session.scalars(select(Event).where(Event.action == "found_scan")))
    assert len(scans) == 1 and scans[0].item_id == lost.id and scans[0].actor_id is None


def test_finder_leaves_a_message(app, session, client, lost, desk_user):
    token = label_token(session, lost)
    page = client.get(f"/s/{token.lower()}", headers=EN)
    csrf = csrf_from(page.get_data(as_text=True))
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": "Left on the Yamanote line",
                                                  "contact": "finder@example.net"}, headers=EN)
    assert resp.status_code == 200
    text = resp.get_data(as_text=True)
    assert "Your message was sent to our security desk" in text
    _assert_nothing_about(text, lost)
    reread(session)
    msg = session.scalar(select(FoundReport).where(FoundReport.message.is_not(None)))
    assert msg.message == "Left on the Yamanote line" and msg.contact == "finder@example.net"
    assert msg.item_id == lost.id
    assert count(session, Event, Event.action == "found_message") == 1
    # The desk sees the message (which stands for the scan too), and marks it handled.
    d = client_for(app, desk_user)
    board = d.get("/desk/", headers=EN).get_data(as_text=True)
    assert "Found-item scans" in board
    assert "Left on the Yamanote line" in board and "finder@example.net" in board
    assert "Scanned, no message" not in board  # one entry per label: the finder's scan is listed by the message
    resp = d.post(f"/desk/found/{msg.id}", data={"csrf_token": csrf_from(board)}, headers=EN)
    assert resp.status_code == 303
    reread(session)
    handled = session.get(FoundReport, msg.id)
    assert handled.handled_at == NOW and handled.handled_by_id == desk_user.id
    assert count(session, Event, Event.action == "found_handled") == 2  # the message and the label's scan
    assert "Found-item scans" not in d.get("/desk/", headers=EN).get_data(as_text=True)


def test_finder_message_without_contact(app, session, client, lost):
    token = label_token(session, lost)
    csrf = csrf_from(client.get(f"/S/{token}", headers=EN).get_data(as_text=True))
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": "At Shibuya station"}, headers=EN)
    assert resp.status_code == 200
    reread(session)
    msg = session.scalar(select(FoundReport).where(FoundReport.message.is_not(None)))
    assert msg.contact is None


@pytest.mark.parametrize("message, expected", [("", "Please write a short message."),
                                               ("   ", "Please write a short message."),
                                               ("x" * 2001, "Message is too long (at most 2000 characters).")])
def test_finder_message_errors(app, session, client, lost, message, expected):
    token = label_token(session, lost)
    csrf = csrf_from(client.get(f"/S/{token}", headers=EN).get_data(as_text=True))
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": message}, headers=EN)
    assert resp.status_code == 400
    assert ("error", expected) in flashes(resp)
    _assert_nothing_about(resp.get_data(as_text=True), lost)
    assert count(session, FoundReport, FoundReport.message.is_not(None)) == 0


def test_finder_message_of_2000_characters_is_accepted(app, session, client, lost):
    token = label_token(session, lost)
    csrf = csrf_from(client.get(f"/S/{token}", headers=EN).get_data(as_text=True))
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": "y" * 2000}, headers=EN)
    assert resp.status_code == 200
    assert count(session, FoundReport, FoundReport.message.is_not(None)) == 1


def test_finder_messages_are_limited_per_address(app, session, client, lost, frozen_clock):
    token = label_token(session, lost)
    csrf = csrf_from(client.get(f"/S/{token}", headers=EN).get_data(as_text=True))
    for n in range(10):
        frozen_clock["now"] = NOW + timedelta(minutes=n)
        resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": f"note {n}"}, headers=EN)
        assert resp.status_code == 200, n
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": "note 11"}, headers=EN)
    assert resp.status_code in (400, 429)
    assert flashes(resp)[0][0] == "error"
    assert "Too many messages" in flashes(resp)[0][1]
    assert count(session, FoundReport, FoundReport.message.is_not(None)) == 10
    # An hour later the address may write again.
    frozen_clock["now"] = NOW + timedelta(hours=1, minutes=10)
    resp = client.post(f"/S/{token}/found", data={"csrf_token": csrf, "message": "later"}, headers=EN)
    assert resp.status_code == 200


def test_replaced_label_still_gets_the_found_page(app, session, client, lost, desk_user):
    old = label_token(session, lost)
    items.issue_label(session, NOW, lost, desk_user)
    session.commit()
    page = client.get(f"/S/{old}", headers=EN)
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "Example Media KK" in text and 'name="message"' in text
    _assert_nothing_about(text, lost)
    assert count(session, FoundReport, FoundReport.item_id == lost.id) == 1


@pytest.mark.parametrize("token", ["A" * 26, "not-a-token", "x"])
def test_unknown_token_is_not_a_valid_label(app, client, token):
    page = client.get(f"/S/{token}", headers=EN)
    assert page.status_code == 404
    assert "Not a valid label" in page.get_data(as_text=True)


def test_unknown_token_records_nothing(app, session, client):
    client.get("/S/" + "B" * 26, headers=EN)
    assert count(session, FoundReport) == 0


def test_sign_in_from_the_found_page_lands_back_on_the_scan(app, session, client, staff, make_item):
    item = make_item(data_class=DataClass.none)
    token = label_token(session, item)
    page = client.get(f"/S/{token}", headers=EN).get_data(as_text=True)
    link = html.unescape(re.search(r'<a href="(/login\?next=[^"]+)"', page).group(1))
    parts = urlsplit(link)
    assert parts.path == "/login" and parse_qs(parts.query) == {"next": [f"/S/{token}"]}
    login = client.get(link, headers=EN).get_data(as_text=True)
    action = html.unescape(re.search(r'<form method="post" action="([^"]+)"', login).group(1))
    assert "next=" in action
    resp = client.post(action, data={"csrf_token": csrf_from(login), "email": staff.email,
                                     "password": "correct-horse-battery"}, headers=EN)
    assert resp.status_code == 302
    assert resp.headers["Location"].endswith(f"/S/{token}")
    page = client.get(resp.headers["Location"], headers=EN)
    assert page.status_code == 200
    assert primary(page) == ["Take out"]
    assert item.asset_tag in page.get_data(as_text=True)


# --- the desk's returns scanner ------------------------------------------------------------------------


def _scanner(app, user):
    c = client_for(app, user)
    token = csrf_from(c.get("/desk/scanner", headers=EN).get_data(as_text=True))
    return c, token


def _out(session, item, holder, **kw):
    custody.check_out(session, NOW - timedelta(hours=1), item=item, holder=holder, actor=holder,
                      due_at=kw.pop("due_at", later(hours=8)), **kw)
    session.commit()


def _base(app) -> str:
    return app.config["BASE_URL"]


@pytest.mark.parametrize("form", ["label", "lower", "slash", "tag"])
def test_scanner_receives_a_return(app, session, staff, desk_user, make_item, form):
    item = make_item(data_class=DataClass.none)
    _out(session, item, staff)
    url = qr.label_url(_base(app), label_token(session, item))
    code = {"label": url, "lower": url.lower(), "slash": url + "/", "tag": item.asset_tag}[form]
    c, csrf = _scanner(app, desk_user)
    resp = c.post("/desk/scanner", data={"csrf_token": csrf, "code": code}, headers=EN)
    assert resp.status_code == 303
    page = c.get("/desk/scanner", headers=EN).get_data(as_text=True)
    assert f"{item.asset_tag} returned (from Hanako Yamada)." in html.unescape(page)
    assert open_checkout(session, item) is None
    reread(session)
    ev = session.scalars(select(Event).where(Event.action == "return")).one()
    assert ev.actor_id == desk_user.id and ev.subject_user_id == staff.id


def test_scanner_json_and_running_list(app, session, staff, desk_user, make_item):
    things = [make_item(data_class=DataClass.none) for _ in range(3)]
    for it in things:
        _out(session, it, staff)
    c, csrf = _scanner(app, desk_user)
    for it in things:
        url = qr.label_url(_base(app), label_token(session, it))
        resp = c.post("/desk/scanner", data={"csrf_token": csrf, "code": url, "js": "1"}, headers=EN)
        assert resp.status_code == 200 and resp.is_json
        assert resp.get_json() == {"ok": True, "tag": it.asset_tag,
                                   "message": f"{it.asset_tag} returned (from Hanako Yamada)."}
    page = html.unescape(c.get("/desk/scanner", headers=EN).get_data(as_text=True))
    positions = [page.index(f"{it.asset_tag} returned") for it in things]
    assert positions == sorted(positions, reverse=True)  # newest first
    assert all(open_checkout(session, it) is None for it in things)


def test_scanner_unknown_code(app, desk_user):
    c, csrf = _scanner(app, desk_user)
    for code in ("https://track.example.com/S/" + "C" * 26, "NO-SUCH-TAG", "https://evil.example/x", ""):
        data = c.post("/desk/scanner", data={"csrf_token": csrf, "code": code, "js": "1"}, headers=EN).get_json()
        assert data["ok"] is False
        assert data["message"] == "That is not a label of this system.", code


def test_scanner_item_not_out(app, session, desk_user, make_item):
    item = make_item(data_class=DataClass.none)
    c, csrf = _scanner(app, desk_user)
    data = c.post("/desk/scanner", data={"csrf_token": csrf, "code": item.asset_tag, "js": "1"},
                  headers=EN).get_json()
    assert data["ok"] is False and data["message"] == f"{item.asset_tag} is not checked out."


def test_scanner_replaced_label(app, session, staff, desk_user, make_item):
    item = make_item(data_class=DataClass.none)
    _out(session, item, staff)
    old = label_token(session, item)
    items.issue_label(session, NOW, item, desk_user)
    session.commit()
    c, csrf = _scanner(app, desk_user)
    data = c.post("/desk/scanner", data={"csrf_token": csrf, "code": qr.label_url(_base(app), old), "js": "1"},
                  headers=EN).get_json()
    assert data["ok"] is False
    assert "replaced" in data["message"] and item.asset_tag in data["message"]
    assert open_checkout(session, item) is not None


def test_scanner_sends_bags_to_their_page(app, session, staff, desk_user, make_item):
    bag = make_item(kind=Kind.bag, data_class=DataClass.none)
    usb = make_item(kind=Kind.usb, bag=bag, data_class=DataClass.none)
    _out(session, bag, staff)
    c, csrf = _scanner(app, desk_user)
    url = qr.label_url(_base(app), label_token(session, bag))
    data = c.post("/desk/scanner", data={"csrf_token": csrf, "code": url, "js": "1"}, headers=EN).get_json()
    assert data["ok"] is False and data["tag"] == bag.asset_tag
    assert "bag" in data["message"] and "open it" in data["message"]
    assert open_checkout(session, bag) is not None and open_checkout(session, usb) is not None
    assert count(session, Event, Event.action == "return") == 0


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def test_scanner_reads_a_photo_of_the_label(app, session, staff, desk_user, make_item):
    item = make_item(data_class=DataClass.none)
    _out(session, item, staff)
    layout = layouts.get(layouts.DEFAULT_LAYOUT)
    data = design.LabelData(url=qr.label_url(_base(app), label_token(session, item)), asset_tag=item.asset_tag)
    image = render.render_png(data, layout.label_w, layout.label_h)
    c, csrf = _scanner(app, desk_user)
    resp = c.post("/desk/scanner", data={"csrf_token": csrf, "js": "1",
                                         "photo": (io.BytesIO(_png(image)), "label.png", "image/png")},
                  content_type="multipart/form-data", headers=EN)
    assert resp.get_json() == {"ok": True, "tag": item.asset_tag,
                               "message": f"{item.asset_tag} returned (from Hanako Yamada)."}
    assert open_checkout(session, item) is None


@pytest.mark.parametrize("payload, message", [
    ("blank", "No QR code could be read in the photo."),
    ("garbage", "Send a photo as JPEG, PNG, WebP or HEIC."),  # not an image: refused before decoding
    ("gif", "Send a photo as JPEG, PNG, WebP or HEIC."),  # an image, but not a photo format phones send
    ("huge", "The photo is too large (at most 24 megapixels)."),  # a PNG: refused from its header, never decoded
])
def test_scanner_photo_without_a_code(app, desk_user, payload, message):
    if payload == "blank":
        body = _png(Image.new("L", (400, 300), 255))
    elif payload == "gif":
        buf = io.BytesIO()
        Image.new("L", (40, 30), 255).save(buf, "GIF")
        body = buf.getvalue()
    elif payload == "huge":  # 10,000 × 6,000 pixels: a small file that would need 240 MB once decoded as colour
        buf = io.BytesIO()
        Image.new("1", (10_000, 6_000), 1).save(buf, "PNG")
        body = buf.getvalue()
    else:
        body = b"not an image at all"
    c, csrf = _scanner(app, desk_user)
    resp = c.post("/desk/scanner", data={"csrf_token": csrf, "js": "1",
                                         "photo": (io.BytesIO(body), "photo.jpg", "image/jpeg")},
                  content_type="multipart/form-data", headers=EN)
    assert resp.status_code == 200
    assert resp.get_json() == {"ok": False, "tag": "", "message": message}


def test_staff_cannot_use_the_scanner(app, session, staff, colleague, make_item):
    item = make_item(data_class=DataClass.none)
    _out(session, item, colleague)
    c = client_for(app, staff)
    assert c.get("/desk/scanner", headers=EN).status_code == 403
    token = csrf_from(c.get("/account", headers=EN).get_data(as_text=True))
    resp = c.post("/desk/scanner", data={"csrf_token": token, "code": item.asset_tag, "js": "1"}, headers=EN)
    assert resp.status_code == 403
    assert open_checkout(session, item) is not None


# --- My items --------------------------------------------------------------------------------------------


def test_my_items_lists_due_times_overdue_and_returns(app, session, staff, colleague, make_item):
    due_later, overdue, someone_elses = (make_item(data_class=DataClass.none) for _ in range(3))
    custody.check_out(session, NOW - timedelta(hours=5), item=overdue, holder=staff, actor=staff,
                      due_at=NOW - timedelta(hours=1))
    custody.check_out(session, NOW, item=due_later, holder=staff, actor=staff, due_at=later(hours=9))
    custody.check_out(session, NOW, item=someone_elses, holder=colleague, actor=colleague, due_at=later(hours=9))
    session.commit()
    c = client_for(app, staff)
    page = c.get("/my", headers=EN)
    text = html.unescape(page.get_data(as_text=True))
    assert due_later.asset_tag in text and overdue.asset_tag in text
    assert someone_elses.asset_tag not in text
    rows = {tag: row for row in re.findall(r'<li class="card[^"]*">(.*?)</li>', text, re.S)
            for tag in (due_later.asset_tag, overdue.asset_tag) if tag in row}
    assert "Overdue" in rows[overdue.asset_tag] and local_dt(NOW - timedelta(hours=1)) in rows[overdue.asset_tag]
    assert "Overdue" not in rows[due_later.asset_tag] and local_dt(later(hours=9)) in rows[due_later.asset_tag]
    for row in rows.values():
        assert ">Return</button>" in row
    # Press Return on the overdue one.
    form = re.search(rf'<form method="post" action="(/items/{overdue.asset_tag}/return)".*?</form>', text, re.S)
    resp = c.post(form.group(1), data={"csrf_token": csrf_from(form.group(0))}, headers=EN, follow_redirects=True)
    assert ("success", f"{overdue.asset_tag} is returned.") in flashes(resp)
    assert open_checkout(session, overdue) is None
    assert open_checkout(session, due_later).holder_id == staff.id
    text = c.get("/my", headers=EN).get_data(as_text=True)
    assert overdue.asset_tag not in text and due_later.asset_tag in text


def test_my_items_shows_pending_requests(app, session, staff, make_item, approval):
    item = make_item(data_class=DataClass.none)
    c, _, _ = _request_long(app, session, staff, item)
    text = c.get("/my", headers=EN).get_data(as_text=True)
    assert item.asset_tag in text and "waiting for approval" in text
    assert "You hold no items." in text


def test_scan_page_needs_no_javascript(app, session, staff, make_item):
    """The scan page works without JavaScript: the forms are plain HTML posts."""
    item = make_item(data_class=DataClass.none)
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=EN).get_data(as_text=True)
    assert f'action="/items/{item.asset_tag}/checkout"' in page
    assert "<script" not in page


def test_scanner_takes_many_returns_in_a_row(app, session, make_user, make_item):
    """A desk works through a pile of returns: every result is kept in the running list, none is lost."""
    desk = make_user("security", name="受付 警備担当", language="ja")
    holders = [make_user(name=f"営業第{n}部 長谷川 美奈子{n}") for n in range(5)]
    things = [make_item(kind=Kind.usb, data_class=DataClass.none) for _ in range(30)]
    for n, it in enumerate(things):
        _out(session, it, holders[n % len(holders)])
    c = client_for(app, desk)
    csrf = csrf_from(c.get("/desk/scanner").get_data(as_text=True))
    for it in things:
        url = qr.label_url(_base(app), label_token(session, it))
        resp = c.post("/desk/scanner", data={"csrf_token": csrf, "code": url, "js": "1"})
        assert resp.status_code == 200 and resp.get_json()["ok"] is True, it.asset_tag
    page = c.get("/desk/scanner")
    assert page.status_code == 200
    assert page.get_data(as_text=True).count('<li class="ok">') >= 20
    assert all(open_checkout(session, it) is None for it in things)


def test_after_the_day_end_the_default_due_is_midnight(app, session, staff, make_item, frozen_clock):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    frozen_clock["now"] = datetime(2026, 6, 1, 20, 30, tzinfo=TOKYO)
    c = client_for(app, staff)
    text = c.get(url, headers=EN).get_data(as_text=True)
    midnight = datetime(2026, 6, 2, 0, 0, tzinfo=TOKYO)
    assert re.search(r'name="due"[^>]*value="2026-06-02T00:00"', text)
    assert f"<strong>{local_dt(midnight)}</strong>" in text
    page = take_out(c, url, item.asset_tag)  # the prefilled due needs no reason
    assert flashes(page)[0][0] == "success"
    assert open_checkout(session, item).due_at == midnight


def test_take_out_while_a_colleague_waits_for_approval_is_refused(app, session, staff, colleague, desk_user,
                                                                  make_item, approval):
    """The scan page tells others that someone is waiting and offers no Take out; the server must agree,
    or the approval later fails and the new holder's scan page hides their Return button."""
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    other = client_for(app, colleague)
    stale = {"csrf_token": csrf_from(other.get(url, headers=EN).get_data(as_text=True)), "next": url}
    _request_long(app, session, staff, item)  # Hanako asks for an overnight check-out
    page = other.get(url, headers=EN)
    assert "Hanako Yamada is waiting for approval to take it out." in page.get_data(as_text=True)
    assert "Take out" not in [t for _, t in buttons(page)]
    resp = other.post(f"/items/{item.asset_tag}/checkout", data=stale, headers=EN, follow_redirects=True)
    assert flashes(resp)[0][0] == "error"
    assert "Hanako Yamada" in flashes(resp)[0][1]
    assert open_checkout(session, item) is None
