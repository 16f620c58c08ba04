"""The take-out form on the phone through HTTP (issue 11, items 8-9): a refusal for a missing piece keeps what
the person entered, with the message next to the field, and saves nothing; the purpose and destination carried
over from the person's own last take-out are shown plainly, and a hand-over never carries the previous
holder's."""

from __future__ import annotations

import html
import re
from datetime import datetime, timedelta

import pytest

from tests.helpers import NOW, TOKYO, client_for, count, csrf_from, handed_over, label_token, open_checkout
from tracker.custody import handover
from tracker.custody import operations as custody
from tracker.models import Checkout, CheckoutRequest, DataClass, Event

pytestmark = pytest.mark.usefixtures("frozen_clock")

EN = {"Accept-Language": "en"}
JA = {"Accept-Language": "ja"}
TOMORROW = "2026-06-02T12:00"  # overnight: after today's day end (19:00 in Tokyo)


@pytest.fixture
def staff(make_user):
    return make_user(name="Hanako Yamada")  # no language of her own: the browser's decides


def _send(client, url, tag, headers, **fields):
    """Open the scan page and press Take out with `fields`, as the phone does; the response is not followed."""
    page = client.get(url, headers=headers).get_data(as_text=True)
    data = {"csrf_token": csrf_from(page), "next": url, **fields}
    return client.post(f"/items/{tag}/checkout", data=data, headers=headers)


def _input(page: str, name: str) -> str:
    """The <input> tag named `name` on the page."""
    match = re.search(rf'<input[^>]*\bname="{name}"[^>]*>', page)
    assert match, f"no input named {name}"
    return match.group(0)


def _attr(tag: str, attr: str) -> str | None:
    match = re.search(rf'\b{attr}="([^"]*)"', tag)
    return html.unescape(match.group(1)) if match else None


def _message_for(page: str, name: str) -> str:
    """The message the field named `name` points to with aria-describedby, and checks it is marked invalid."""
    tag = _input(page, name)
    assert _attr(tag, "aria-invalid") == "true", tag
    ids = (_attr(tag, "aria-describedby") or "").split()
    error_ids = [i for i in ids if i.endswith("-error")]
    assert error_ids, f"{name} points to no message: {tag}"
    match = re.search(rf'<div id="{error_ids[0]}">(.*?)</div>', page, re.S)
    assert match, f"no element {error_ids[0]}"
    return html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).strip()


def _field_block(page: str, name: str) -> str:
    """The .field box that holds the input named `name` (what a person sees next to it)."""
    match = re.search(rf'<div class="field[^"]*">(?:(?!<div class="field).)*?\bname="{name}".*?(?=<div class="field|</details>)',
                      page, re.S)
    assert match, f"no field box for {name}"
    return match.group(0)


def _details_open(page: str) -> bool:
    card = page.split('<div class="card action">', 1)[1]
    return bool(re.search(r"<details open>", card.split("</form>", 1)[0]))


def _summary(page: str) -> str:
    card = page.split('<div class="card action">', 1)[1].split("</form>", 1)[0]
    match = re.search(r"<summary[^>]*>(.*?)</summary>", card, re.S)
    assert match
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", match.group(1)))).strip()


def _nothing_saved(session, item) -> None:
    assert open_checkout(session, item) is None
    assert count(session, Checkout) == 0
    assert count(session, CheckoutRequest) == 0
    assert count(session, Event, Event.action.in_(["checkout", "checkout_requested"])) == 0


# --- item 8: a refusal keeps what was entered --------------------------------------------------------------------


@pytest.mark.parametrize("headers, message", [
    (EN, "Overnight or longer check-outs need a reason and a due time."),
    (JA, "日をまたぐ持ち出しには、理由と返却期限が必要です。"),
], ids=["en", "ja"])
def test_an_overnight_take_out_without_a_reason_keeps_everything_and_says_so_at_the_reason(
        app, session, staff, make_item, headers, message):
    item = make_item(data_class=DataClass.personal)
    url = f"/S/{label_token(session, item)}"
    c = client_for(app, staff)
    resp = _send(c, url, item.asset_tag, headers, purpose="商談", destination="株式会社ABC 大阪支店", due=TOMORROW,
                 rules_ack="1")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert _attr(_input(page, "purpose"), "value") == "商談"
    assert _attr(_input(page, "destination"), "value") == "株式会社ABC 大阪支店"
    assert _attr(_input(page, "due"), "value") == TOMORROW
    assert " checked" in _input(page, "rules_ack"), "the rules tick is kept"
    assert _details_open(page), "the fields stay open"
    assert _message_for(page, "reason") == message
    assert message in _field_block(page, "reason")
    assert 'name="next" value="' + url + '"' in page, "the next take-out still lands back on the scan"
    _nothing_saved(session, item)

    # Adding the reason is enough: the rest went along as entered.
    data = {"csrf_token": csrf_from(page), "next": url, "purpose": "商談", "destination": "株式会社ABC 大阪支店",
            "due": TOMORROW, "rules_ack": "1", "reason": "展示会の準備"}
    resp = c.post(f"/items/{item.asset_tag}/checkout", data=data, headers=headers)
    assert resp.status_code == 303 and resp.headers["Location"] == url
    co = open_checkout(session, item)
    assert (co.purpose, co.destination, co.reason) == ("商談", "株式会社ABC 大阪支店", "展示会の準備")
    assert co.due_at == datetime(2026, 6, 2, 12, 0, tzinfo=TOKYO)


@pytest.mark.parametrize("headers, message", [
    (EN, "Please confirm that you have read the handling rules for personal data."),
    (JA, "個人情報の取り扱いルールを読んだことを確認してください。"),
], ids=["en", "ja"])
def test_a_take_out_without_the_rules_tick_keeps_everything_and_says_so_at_the_tick(
        app, session, staff, make_item, headers, message):
    item = make_item(data_class=DataClass.sensitive)
    url = f"/S/{label_token(session, item)}"
    resp = _send(client_for(app, staff), url, item.asset_tag, headers, purpose="Audit", destination="Nagoya",
                 due=TOMORROW, reason="Two-day audit")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert _message_for(page, "rules_ack") == message
    assert " checked" not in _input(page, "rules_ack")
    assert _attr(_input(page, "reason"), "value") == "Two-day audit"
    assert _attr(_input(page, "purpose"), "value") == "Audit"
    assert _attr(_input(page, "destination"), "value") == "Nagoya"
    assert _attr(_input(page, "due"), "value") == TOMORROW
    assert _details_open(page)
    _nothing_saved(session, item)


@pytest.mark.parametrize("approval", [False, True], ids=["plain", "approval"])
def test_a_missing_reason_and_a_missing_tick_are_both_said_at_once(app, session, staff, make_item, approval):
    """Both pieces missing: each message at its own field in one go, so the person fixes both at once."""
    app.config["APPROVAL_REQUIRED"] = approval
    item = make_item(data_class=DataClass.personal)
    url = f"/S/{label_token(session, item)}"
    resp = _send(client_for(app, staff), url, item.asset_tag, JA, destination="株式会社ABC 大阪支店", due=TOMORROW)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert _message_for(page, "reason") == "日をまたぐ持ち出しには、理由と返却期限が必要です。"
    assert _message_for(page, "rules_ack") == "個人情報の取り扱いルールを読んだことを確認してください。"
    assert _attr(_input(page, "destination"), "value") == "株式会社ABC 大阪支店"
    _nothing_saved(session, item)


def test_a_refused_request_for_approval_keeps_everything_too(app, session, staff, make_item):
    """Where the desk approves overnight take-outs, a missing tick is refused the same way, and nothing waits."""
    app.config["APPROVAL_REQUIRED"] = True
    item = make_item(data_class=DataClass.personal)
    url = f"/S/{label_token(session, item)}"
    resp = _send(client_for(app, staff), url, item.asset_tag, EN, purpose="Audit", destination="Nagoya",
                 due=TOMORROW, reason="Two-day audit")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert _message_for(page, "rules_ack") == "Please confirm that you have read the handling rules for personal data."
    assert _attr(_input(page, "reason"), "value") == "Two-day audit"
    _nothing_saved(session, item)


def test_a_due_time_in_the_past_is_refused_at_the_due_field(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    past = (NOW - timedelta(hours=1)).astimezone(TOKYO).strftime("%Y-%m-%dT%H:%M")
    resp = _send(client_for(app, staff), url, item.asset_tag, EN, purpose="Visit", due=past)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert _message_for(page, "due") == "The due time must be in the future."
    assert _attr(_input(page, "due"), "value") == past
    assert _attr(_input(page, "purpose"), "value") == "Visit"
    _nothing_saved(session, item)


def test_a_due_date_the_system_cannot_use_is_refused_at_the_due_field(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    resp = _send(client_for(app, staff), url, item.asset_tag, EN, destination="Kobe", due="0001-01-01T00:00")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "outside the dates this system can use" in _message_for(page, "due")
    assert _attr(_input(page, "destination"), "value") == "Kobe"
    _nothing_saved(session, item)


def test_a_reason_too_long_is_refused_at_the_reason(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    resp = _send(client_for(app, staff), url, item.asset_tag, EN, destination="Kobe", due=TOMORROW, reason="r" * 201)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "200" in _message_for(page, "reason")
    assert _attr(_input(page, "destination"), "value") == "Kobe"
    _nothing_saved(session, item)


def test_a_fields_message_is_not_shown_when_nothing_is_wrong(app, session, staff, make_item):
    item = make_item(data_class=DataClass.personal)
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=EN).get_data(as_text=True)
    for name in ("purpose", "destination", "due", "reason", "rules_ack"):
        assert _attr(_input(page, name), "aria-invalid") is None
    assert not _details_open(page)


# --- item 9: what is carried over is shown; a hand-over carries nothing --------------------------------------------


def _own_take_out(session, item, holder, purpose, destination, days_ago=3):
    """A take-out of the person's own some days ago, returned since."""
    out = NOW - timedelta(days=days_ago)
    custody.check_out(session, out, item=item, holder=holder, actor=holder, due_at=out + timedelta(hours=4),
                      purpose=purpose, destination=destination)
    custody.return_item(session, out + timedelta(hours=3), item=item, actor=holder)
    session.commit()


@pytest.mark.parametrize("headers, expected", [
    (EN, "Purpose: Client demo Destination: ABC Co. Osaka branch — change"),
    (JA, "持ち出し目的: 商談 持ち出し先: 株式会社ABC 大阪支店 — 変更"),
], ids=["en", "ja"])
def test_the_carried_over_purpose_and_destination_are_shown_on_the_card(app, session, staff, make_item, headers,
                                                                         expected):
    earlier, item = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    if headers is JA:
        _own_take_out(session, earlier, staff, "商談", "株式会社ABC 大阪支店")
    else:
        _own_take_out(session, earlier, staff, "Client demo", "ABC Co. Osaka branch")
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=headers).get_data(as_text=True)
    assert _summary(page) == expected
    assert not _details_open(page), "shown without opening anything"


def test_nothing_carried_over_shows_the_plain_box(app, session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    page = client_for(app, staff).get(f"/S/{label_token(session, item)}", headers=EN).get_data(as_text=True)
    assert _summary(page) == "Purpose, destination, due time"


def test_a_hand_over_never_carries_the_previous_holders_destination(app, session, staff, make_user, make_item):
    alice = make_user(name="Alice Aoki")
    laptop, usb, own = (make_item(data_class=DataClass.none) for _ in range(3))
    _own_take_out(session, own, staff, "Training", "Shinagawa office", days_ago=5)
    custody.check_out(session, NOW - timedelta(hours=1), item=laptop, holder=alice, actor=alice,
                      due_at=NOW + timedelta(hours=6), purpose="Sales pitch", destination="Alice's client in Kobe")
    offer = handover.offer(session, NOW, item=laptop, to=staff, actor=alice)
    session.commit()
    c = client_for(app, staff)
    laptop_url = f"/S/{label_token(session, laptop)}"
    page = c.get(f"/handovers/{offer.id}", headers=EN).get_data(as_text=True)
    resp = c.post(f"/handovers/{offer.id}/accept", headers=EN, data={"csrf_token": csrf_from(page)})
    assert resp.status_code == 303
    taken = open_checkout(session, laptop)
    assert taken.holder_id == staff.id
    assert (taken.purpose, taken.destination) == ("", ""), "the hand-over copied Alice's purpose and destination"
    after = c.get(laptop_url, headers=EN).get_data(as_text=True)
    assert "Alice&#39;s client in Kobe" not in after and "Alice's client in Kobe" not in after

    # Her next take-out offers her own last destination, not Alice's.
    page = c.get(f"/S/{label_token(session, usb)}", headers=EN).get_data(as_text=True)
    assert _attr(_input(page, "destination"), "value") == "Shinagawa office"
    assert _attr(_input(page, "purpose"), "value") == "Training"
    assert "Kobe" not in page and "Sales pitch" not in page


def test_a_hand_over_recorded_with_the_previous_holders_destination_is_not_offered(app, session, staff, make_user,
                                                                                      make_item):
    """Hand-overs recorded before the fix carry the previous holder's purpose and destination: never offered."""
    alice = make_user(name="Alice Aoki")
    laptop, usb = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    custody.check_out(session, NOW - timedelta(hours=2), item=laptop, holder=alice, actor=alice,
                      due_at=NOW + timedelta(hours=6), purpose="Sales pitch", destination="Kobe")
    new = handed_over(session, NOW - timedelta(hours=1), laptop, alice, staff)
    new.purpose, new.destination = "Sales pitch", "Kobe"  # as the hand-over used to copy them
    session.commit()
    page = client_for(app, staff).get(f"/S/{label_token(session, usb)}", headers=EN).get_data(as_text=True)
    assert _attr(_input(page, "destination"), "value") in (None, "")
    assert _attr(_input(page, "purpose"), "value") in (None, "")
    assert _summary(page) == "Purpose, destination, due time"


# --- the rule behind it ------------------------------------------------------------------------------------------


def test_the_rule_names_every_missing_piece_and_the_field_of_each(session, make_user, make_item):
    from tracker.custody.policy import Policy
    from tracker.errors import HandlingAckRequired, Incomplete, InvalidInput, ReasonRequired

    alice, item = make_user(), make_item(data_class=DataClass.personal)
    overnight = datetime(2026, 6, 2, 12, 0, tzinfo=TOKYO)
    with pytest.raises(Incomplete) as refused:
        custody.check_out(session, NOW, item=item, holder=alice, actor=alice, due_at=overnight, policy=Policy())
    assert [type(e) for e in refused.value.errors] == [ReasonRequired, HandlingAckRequired]
    assert [e.about for e in refused.value.errors] == ["reason", "handling_ack"]
    with pytest.raises(InvalidInput) as past:
        custody.check_out(session, NOW, item=item, holder=alice, actor=alice, due_at=NOW - timedelta(minutes=1))
    assert past.value.about == "due_at"
    with pytest.raises(InvalidInput) as long_text:
        custody.check_out(session, NOW, item=item, holder=alice, actor=alice, due_at=overnight, destination="d" * 201)
    assert long_text.value.about == "destination"
    session.rollback()
    assert custody.open_checkout(session, item) is None
