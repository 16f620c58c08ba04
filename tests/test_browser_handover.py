"""Hand-over offers on two phones (issue 14, item 5): the giver offers on the item page, the receiver finds the offer
on "my items", ticks the handling rules and accepts in one tap, and only then is the item theirs; the giver's page
says whom it waits for and lets them cancel. In English and, for the receiver, in Japanese; every page fits 390 px."""

from __future__ import annotations

import json

import pytest

from tests.browser import (
    _assert_fits_phone,
    _flash_text,
    sign_in,
    sync_api,
    tap_and_wait,
)
from tests.helpers import PASSWORD
from tracker.models import DataClass, Kind

pytestmark = pytest.mark.browser

expect = sync_api.expect
JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


def _offer(page, live_server, item, to) -> None:
    """The giver, on the item's page: open the hand-over page, type the start of the colleague's name, choose their
    suggestion (write what choosing it writes into the field: a datalist's choices are the browser's own), offer."""
    page.goto(live_server.scan_url(item))
    tap_and_wait(page, page.get_by_role("link", name="Hand over to a colleague"))
    field = page.get_by_label("Offer it to")
    field.press_sequentially(to.name[:3])  # key by key, as on a phone
    chosen = f"{to.name} <{to.email}>"
    expect(page.locator(f"#offer-to-suggestions option[value={json.dumps(chosen, ensure_ascii=False)}]")).to_have_count(1)
    field.fill(chosen)
    tap_and_wait(page, page.get_by_role("button", name="Offer the hand-over"))


def test_the_giver_offers_and_the_receiver_accepts_on_their_phone(phone, live_server):
    alice = live_server.make_user("staff", name="Alice Aoki")
    bob = live_server.make_user("staff", name="Bob Baba")
    usb = live_server.make_item(Kind.usb, name="Client list USB", data_class=DataClass.personal)
    live_server.check_out(alice, usb)
    giver, receiver = phone(), phone()
    sign_in(giver, alice.email)
    sign_in(receiver, bob.email)

    _offer(giver, live_server, usb, bob)
    assert f"Offered to Bob Baba. {usb.asset_tag} stays yours until they accept." in _flash_text(giver)
    expect(giver.locator(".card.action")).to_contain_text("Waiting for Bob Baba to accept the hand-over.")
    expect(giver.locator("p.where")).to_contain_text("Out with Alice Aoki")
    _assert_fits_phone(giver, "the giver's page while the offer waits")
    assert live_server.open_checkout(usb).holder_id == alice.id

    receiver.goto("/my")
    card = receiver.locator(".offers .card")
    expect(card).to_contain_text("Alice Aoki offers to hand it over to you.")
    tap_and_wait(receiver, card.get_by_role("link", name="Open the offer"))
    expect(receiver.locator("main")).to_contain_text("Client list USB")
    _assert_fits_phone(receiver, "the receiver's offer page")
    tap_and_wait(receiver, receiver.get_by_role("button", name="Accept"))  # without the tick: refused, at the box
    expect(receiver.locator("#rules_ack-error")).to_contain_text("handling rules")
    assert live_server.open_checkout(usb).holder_id == alice.id
    receiver.get_by_label("I have read the rules and will follow them.").check()
    tap_and_wait(receiver, receiver.get_by_role("button", name="Accept"))
    assert f"{usb.asset_tag} is now yours." in _flash_text(receiver)
    expect(receiver.locator("p.where")).to_contain_text("Out with Bob Baba")
    assert live_server.open_checkout(usb).holder_id == bob.id

    giver.reload()
    expect(giver.locator("p.where")).to_contain_text("Out with Bob Baba")
    expect(giver.locator(".card.action")).not_to_contain_text("Waiting for")


def test_the_giver_cancels_and_the_receiver_finds_the_offer_gone(phone, live_server):
    alice = live_server.make_user("staff", name="Alice Arai")
    bob = live_server.make_user("staff", name="Bob Bando")
    laptop = live_server.make_item(Kind.laptop, data_class=DataClass.none)
    live_server.check_out(alice, laptop)
    giver, receiver = phone(), phone()
    sign_in(giver, alice.email)
    sign_in(receiver, bob.email)
    _offer(giver, live_server, laptop, bob)
    receiver.goto("/my")
    tap_and_wait(receiver, receiver.get_by_role("link", name="Open the offer"))

    tap_and_wait(giver, giver.get_by_role("button", name="Cancel the offer"))
    assert f"The offer to Bob Bando is cancelled; {laptop.asset_tag} stays with Alice Arai." in _flash_text(giver)
    tap_and_wait(receiver, receiver.get_by_role("button", name="Accept"))  # the page they still had open
    assert f"The hand-over of {laptop.asset_tag} to Bob Bando was cancelled." in _flash_text(receiver)
    assert live_server.open_checkout(laptop).holder_id == alice.id


def test_a_japanese_receiver_declines_in_japanese(phone, live_server):
    alice = live_server.make_user("staff", name="Alice Abe")
    kenji = live_server.make_user("staff", name="佐藤 健二", language="ja")
    folder = live_server.make_item(Kind.folder, data_class=DataClass.none)
    live_server.check_out(alice, folder)
    giver, receiver = phone(), phone(**JA)
    sign_in(giver, alice.email)
    _offer(giver, live_server, folder, kenji)

    receiver.goto("/login")
    receiver.locator("input[name=email]").fill(kenji.email)
    receiver.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(receiver, receiver.locator("main form button[type=submit]"))
    receiver.goto(live_server.scan_url(folder))
    expect(receiver.locator(".card.action")).to_contain_text("Alice Abe さんからあなたへの引き継ぎの申し出があります。")
    tap_and_wait(receiver, receiver.get_by_role("link", name="申し出を開く"))
    expect(receiver.get_by_role("button", name="受け入れる")).to_be_visible()
    _assert_fits_phone(receiver, "the offer page in Japanese")
    tap_and_wait(receiver, receiver.get_by_role("button", name="断る"))
    assert f"{folder.asset_tag} の引き継ぎを断りました。" in _flash_text(receiver)
    assert live_server.open_checkout(folder).holder_id == alice.id
