""""I still have it" on a phone (issue 15, item 5): the holder of a long take-out scans the item's label, taps the
one button and sees it recorded; a colleague scanning the same label gets no button; the e-mail's link explains
how. In English and Japanese; every page fits 390 px."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.browser import _assert_fits_phone, _flash_text, _now, sign_in, sync_api, tap_and_wait
from tests.helpers import PASSWORD
from tracker.custody import operations as custody
from tracker.custody import rules
from tracker.models import Checkout, DataClass, Item, Kind, User

pytestmark = pytest.mark.browser

expect = sync_api.expect
JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


@pytest.fixture(scope="module")
def asking(live_server):
    """USB drives with personal data: holders confirm custody every 2 days."""
    with live_server.session() as s:
        admin = live_server.make_user("admin")
        start = rules.default("usb", "personal", live_server.policy())
        rules.save(s, _now(), replace(start, confirm_every_days=2), actor=s.get(User, admin.id))
        s.commit()


def out_for_days(live_server, holder, item, days: int) -> None:
    """`item` out with `holder` since `days` days ago, due in a week (a long take-out)."""
    with live_server.session() as s:
        custody.check_out(s, _now() - timedelta(days=days), item=s.get(Item, item.id), holder=s.get(User, holder.id),
                          actor=s.get(User, holder.id), due_at=_now() + timedelta(days=7), reason="Client audit",
                          policy=None)
        s.commit()


def confirmed_at(live_server, item):
    with live_server.session() as s:
        return s.scalar(select(Checkout.custody_confirmed_at).where(Checkout.item_id == item.id,
                                                                    Checkout.returned_at.is_(None)))


def sign_in_ja(page, email: str) -> None:
    """Sign in through the form whatever its language (the labels are Japanese here)."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(page, page.locator("main form button[type=submit]"))
    assert not page.url.endswith("/login")


def test_the_holder_scans_and_confirms_in_one_tap_and_a_colleague_cannot(phone, live_server, asking):
    alice = live_server.make_user("staff", name="Alice Aoki")
    bob = live_server.make_user("staff", name="Bob Baba")
    usb = live_server.make_item(Kind.usb, name="Audit USB", data_class=DataClass.personal)
    out_for_days(live_server, alice, usb, 3)

    colleague = phone()
    sign_in(colleague, bob.email)
    colleague.goto(live_server.scan_url(usb))
    expect(colleague.locator("p.where")).to_contain_text("Out with Alice Aoki")
    expect(colleague.get_by_role("button", name="I still have it")).to_have_count(0)

    holder = phone()
    sign_in(holder, alice.email)
    holder.goto("/still-have-it")  # where the e-mail's link leads
    expect(holder.locator("main")).to_contain_text("Scan the QR label on the item with your phone's camera.")
    expect(holder.locator("main")).to_contain_text(usb.asset_tag)
    _assert_fits_phone(holder, "how to confirm")
    holder.goto(live_server.scan_url(usb))
    _assert_fits_phone(holder, "the scan page with the confirmation")
    tap_and_wait(holder, holder.get_by_role("button", name="I still have it"))
    assert f"Thank you: you confirmed you still have {usb.asset_tag}." in _flash_text(holder)
    expect(holder.locator(".still-have-it")).to_contain_text("You last confirmed you have it on")
    _assert_fits_phone(holder, "the scan page after confirming")
    assert confirmed_at(live_server, usb) is not None


def test_in_japanese(phone, live_server, asking):
    kenji = live_server.make_user("staff", name="佐藤 健二")
    usb = live_server.make_item(Kind.usb, name="監査用USB", data_class=DataClass.personal)
    out_for_days(live_server, kenji, usb, 2)
    page = phone(**JA)
    sign_in_ja(page, kenji.email)
    page.goto(live_server.scan_url(usb))
    tap_and_wait(page, page.get_by_role("button", name="手元にあります"))
    assert f"ありがとうございます。{usb.asset_tag}がお手元にあることを確認しました。" in _flash_text(page)
    _assert_fits_phone(page, "the scan page in Japanese")
    assert confirmed_at(live_server, usb) is not None

