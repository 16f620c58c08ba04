"""The phone's take-out form in a real browser (issue 11, items 8-9), on a 390x844 phone, in English and Japanese:
a refusal for a missing piece keeps what was entered, keeps the fields open and puts the message at the field;
the purpose and destination carried over from the person's own last take-out are shown plainly on the card,
and a hand-over never carries the previous holder's."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from tests.browser import (
    _assert_fits_phone,
    _badge,
    _flash_text,
    _now,
    open_details,
    sign_in,
    sync_api,
    tap_and_wait,
)
from tests.helpers import PASSWORD
from tracker import clock
from tracker.custody import handover
from tracker.custody import operations as custody
from tracker.models import DataClass, Item, Kind, User

pytestmark = pytest.mark.browser

expect = sync_api.expect
JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


def _tomorrow_noon(live_server) -> str:
    """Tomorrow 12:00 in the site's zone, as a datetime-local field takes it: overnight, so a reason is needed."""
    local = clock.local(_now(), live_server.app.config["TIMEZONE"]) + timedelta(days=1)
    return local.replace(hour=12, minute=0).strftime("%Y-%m-%dT%H:%M")


def _sign_in_any_language(page, email: str) -> None:
    """Sign in by the fields' names, whatever language the page is in."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(page, page.locator("main form button[type=submit]"))
    assert not page.url.endswith("/login")


def _earlier_take_out(live_server, user: User, purpose: str, destination: str) -> None:
    """A take-out of the person's own three days ago, returned since: what their next take-out offers again."""
    item = live_server.make_item(Kind.usb, data_class=DataClass.none)
    out = _now() - timedelta(days=3)
    with live_server.session() as s:
        who = s.get(User, user.id)
        custody.check_out(s, out, item=s.get(Item, item.id), holder=who, actor=who, due_at=out + timedelta(hours=4),
                          purpose=purpose, destination=destination)
        custody.return_item(s, out + timedelta(hours=3), item=s.get(Item, item.id), actor=who)
        s.commit()


def _form_details(page):
    return page.locator(".card.action form details")


# --- item 8: a refusal keeps what was entered ------------------------------------------------------------------


def test_an_overnight_take_out_without_a_reason_keeps_what_was_entered(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.laptop, data_class=DataClass.personal)
    sign_in(page, staff.email)
    url = live_server.scan_url(item)
    page.goto(url)
    due = _tomorrow_noon(live_server)

    open_details(page, "Purpose, destination, due time")
    page.get_by_label("Purpose").fill("Trade fair")
    page.get_by_label("Destination").fill("Intex Osaka, hall 6")
    page.get_by_label("Due back").fill(due)
    page.locator("input[name=rules_ack]").check()
    tap_and_wait(page, page.get_by_role("button", name="Take out"))  # no reason given

    reason = page.get_by_label("Reason for keeping it overnight or longer")
    message = "Overnight or longer check-outs need a reason and a due time."
    expect(_form_details(page)).to_have_attribute("open", "")
    expect(reason).to_be_visible()
    expect(reason).to_have_attribute("aria-invalid", "true")
    expect(reason).to_have_accessible_description(re.compile(re.escape(message)))
    field = page.locator(".field", has=page.locator("input[name=reason]"))
    expect(field.locator(".error")).to_have_text(message)
    below = field.locator(".error").bounding_box()
    box = reason.bounding_box()
    assert 0 <= below["y"] - (box["y"] + box["height"]) < 80, "the message is right under the reason field"
    expect(page.get_by_label("Purpose")).to_have_value("Trade fair")
    expect(page.get_by_label("Destination")).to_have_value("Intex Osaka, hall 6")
    expect(page.get_by_label("Due back")).to_have_value(due)
    expect(page.locator("input[name=rules_ack]")).to_be_checked()
    assert _badge(page) == "In"
    _assert_fits_phone(page, "the take-out form refused for a missing reason")
    assert live_server.checkouts(item) == []

    reason.fill("Set up the stand the day before")
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    page.wait_for_url(url)
    assert f"{item.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    assert _badge(page) == "Out"
    co = live_server.open_checkout(item)
    assert co is not None and co.holder_id == staff.id
    assert (co.purpose, co.destination, co.reason) == ("Trade fair", "Intex Osaka, hall 6",
                                                       "Set up the stand the day before")
    assert clock.local(co.due_at, live_server.app.config["TIMEZONE"]).strftime("%Y-%m-%dT%H:%M") == due


def test_a_take_out_without_the_rules_tick_keeps_what_was_entered_in_japanese_without_javascript(phone, live_server):
    staff = live_server.make_user("staff")  # no language of their own: the phone's (Japanese) decides
    item = live_server.make_item(Kind.folder, data_class=DataClass.sensitive)
    page = phone(java_script_enabled=False, **JA)
    _sign_in_any_language(page, staff.email)
    url = live_server.scan_url(item)
    page.goto(url)
    assert page.locator("html").get_attribute("lang") == "ja"

    open_details(page, "持ち出し目的・持ち出し先・返却期限")
    page.get_by_label("持ち出し先").fill("株式会社ABC 大阪支店")
    page.get_by_label("持ち出し目的").fill("契約書の回収")
    tap_and_wait(page, page.get_by_role("button", name="持ち出す"))  # the rules were not ticked

    tick = page.locator("input[name=rules_ack]")
    message = "個人情報の取り扱いルールを読んだことを確認してください。"
    expect(tick).to_have_attribute("aria-invalid", "true")
    expect(tick).to_have_accessible_description(message)
    expect(page.locator(".rules .error")).to_have_text(message)
    expect(tick).not_to_be_checked()
    expect(_form_details(page)).to_have_attribute("open", "")
    expect(page.get_by_label("持ち出し先")).to_have_value("株式会社ABC 大阪支店")
    expect(page.get_by_label("持ち出し目的")).to_have_value("契約書の回収")
    assert live_server.checkouts(item) == []

    tick.check()
    tap_and_wait(page, page.get_by_role("button", name="持ち出す"))
    page.wait_for_url(url)
    co = live_server.open_checkout(item)
    assert co is not None and co.holder_id == staff.id
    assert (co.purpose, co.destination) == ("契約書の回収", "株式会社ABC 大阪支店")


# --- item 9: what is carried over is shown; a hand-over carries nothing -------------------------------------------


def test_the_carried_over_destination_is_shown_on_the_card_and_can_be_changed(phone, live_server):
    staff = live_server.make_user("staff")
    _earlier_take_out(live_server, staff, "商談", "株式会社ABC 大阪支店")
    item = live_server.make_item(Kind.laptop, data_class=DataClass.personal)
    page = phone(**JA)
    _sign_in_any_language(page, staff.email)
    page.goto(live_server.scan_url(item))

    card = page.locator(".card.action")
    summary = card.locator("summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("持ち出し先: 株式会社ABC 大阪支店 — 変更")
    expect(summary).to_contain_text("持ち出し目的: 商談")
    expect(page.get_by_label("持ち出し先")).to_be_hidden()  # shown plainly, without opening anything
    _assert_fits_phone(page, "the take-out card with a carried-over destination")

    summary.get_by_text("変更").tap()
    expect(page.get_by_label("持ち出し先")).to_have_value("株式会社ABC 大阪支店")
    page.get_by_label("持ち出し先").fill("株式会社XYZ 名古屋支店")
    page.locator("input[name=rules_ack]").check()
    tap_and_wait(page, page.get_by_role("button", name="持ち出す"))
    co = live_server.open_checkout(item)
    assert co is not None and (co.purpose, co.destination) == ("商談", "株式会社XYZ 名古屋支店")


def test_a_hand_over_never_carries_the_previous_holders_destination(page, live_server):
    alice = live_server.make_user("staff", name="Alice Aoki")
    bob = live_server.make_user("staff", name="Bob Baba")
    _earlier_take_out(live_server, bob, "Training", "Shinagawa office")
    laptop = live_server.make_item(Kind.laptop, data_class=DataClass.none)
    usb = live_server.make_item(Kind.usb, data_class=DataClass.none)
    with live_server.session() as s:
        who = s.get(User, alice.id)
        custody.check_out(s, _now(), item=s.get(Item, laptop.id), holder=who, actor=who,
                          due_at=live_server.policy().default_due(_now()), purpose="Sales pitch",
                          destination="Alice's client in Kobe")
        s.commit()
        handover.offer(s, _now(), item=s.get(Item, laptop.id), to=s.get(User, bob.id), actor=who)
        s.commit()
    sign_in(page, bob.email)

    page.goto(live_server.scan_url(laptop))
    expect(page.locator("p.where")).to_contain_text("Alice's client in Kobe")
    tap_and_wait(page, page.get_by_role("link", name="Open the offer"))
    tap_and_wait(page, page.get_by_role("button", name="Accept"))
    expect(page.locator("p.where")).to_contain_text("Out with Bob Baba")
    expect(page.locator("main")).not_to_contain_text("Alice's client in Kobe")
    taken = live_server.open_checkout(laptop)
    assert taken.holder_id == bob.id and (taken.purpose, taken.destination) == ("", "")

    # Bob's next take-out offers his own last destination, never Alice's.
    page.goto(live_server.scan_url(usb))
    summary = page.locator(".card.action summary")
    expect(summary).to_contain_text("Destination: Shinagawa office — change")
    expect(page.locator("main")).not_to_contain_text("Kobe")
    tap_and_wait(page, page.get_by_role("button", name="Take out"))  # one tap, with what the card showed
    co = live_server.open_checkout(usb)
    assert co is not None and (co.purpose, co.destination) == ("Training", "Shinagawa office")
