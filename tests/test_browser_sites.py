"""The sites page in a real browser on a 390x844 phone, in English and Japanese: an admin adds a site, a storage
place there, renames and stops using it; a wrong time zone is said at its field and nothing is added."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.browser import _assert_fits_phone, _flash_text, _screenshot, sign_in, tap_and_wait
from tests.helpers import PASSWORD
from tracker.models import Site, StoragePlace

pytestmark = pytest.mark.browser

JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


def _places(live_server, site_name: str) -> list[tuple[str, bool]]:
    with live_server.session() as s:
        return [(p.name, p.retired_at is not None) for p in s.scalars(
            select(StoragePlace).join(Site, Site.id == StoragePlace.site_id).where(Site.name == site_name)
            .order_by(StoragePlace.id))]


def test_an_admin_adds_a_site_and_a_place_on_a_phone(page, live_server, tmp_path):
    admin = live_server.make_user("admin")
    sign_in(page, admin.email)
    page.goto("/admin/sites/")
    assert page.locator("#site-main h2").inner_text() == "Main office"
    _assert_fits_phone(page, "the sites page")
    tap_and_wait(page, page.get_by_role("link", name="Add a site"))
    page.get_by_label("Name").fill("Singapore")
    page.get_by_label("Time zone").fill("Asia/Singapur")
    page.get_by_label("Day end").fill("18:30")
    tap_and_wait(page, page.get_by_role("button", name="Save"))
    assert "Asia/Singapur is not a time zone" in page.locator("#timezone-error").inner_text()
    assert page.get_by_label("Time zone").get_attribute("aria-invalid") == "true"
    _assert_fits_phone(page, "the refused site form")
    with live_server.session() as s:
        assert s.scalar(select(Site).where(Site.name == "Singapore")) is None

    page.get_by_label("Time zone").fill("Asia/Singapore")
    page.get_by_label("Desk e-mail addresses").fill("sg-desk@example.com")
    tap_and_wait(page, page.get_by_role("button", name="Save"))
    assert "The site Singapore is added." in _flash_text(page)
    card = page.locator("section.site", has=page.locator("h2", has_text="Singapore"))
    assert "Asia/Singapore" in card.inner_text() and "sg-desk@example.com" in card.inner_text()

    card.get_by_label("New storage place").fill("Server room safe")
    tap_and_wait(page, card.get_by_role("button", name="Add the place"))
    assert "The storage place Server room safe is added." in _flash_text(page)
    assert _places(live_server, "Singapore") == [("Server room safe", False)]
    _assert_fits_phone(page, "the sites page with a place")
    _screenshot(page, "sites-phone.png", tmp_path)

    card = page.locator("section.site", has=page.locator("h2", has_text="Singapore"))
    card.get_by_label("Name of the storage place").fill("Safe 1")
    tap_and_wait(page, card.get_by_role("button", name="Rename"))
    assert "The storage place is now called Safe 1." in _flash_text(page)
    card = page.locator("section.site", has=page.locator("h2", has_text="Singapore"))
    page.once("dialog", lambda dialog: dialog.accept())
    tap_and_wait(page, card.get_by_role("button", name="Stop using"))
    assert "The storage place Safe 1 is retired; it takes no new items." in _flash_text(page)
    assert _places(live_server, "Singapore") == [("Safe 1", True)]


def test_the_sites_page_in_japanese_on_a_phone(phone, live_server):
    page = phone(**JA)
    admin = live_server.make_user("admin")
    page.goto("/login")
    page.locator("input[name=email]").fill(admin.email)
    page.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(page, page.locator("main form button[type=submit]"))
    page.goto("/admin/sites/")
    assert page.locator("h1").inner_text() == "拠点と保管場所"
    main = page.locator("#site-main")
    main.get_by_label("新しい保管場所").fill("キャビネットB-2")
    tap_and_wait(page, main.get_by_role("button", name="保管場所を追加"))
    assert "保管場所「キャビネットB-2」を追加しました。" in _flash_text(page)
    _assert_fits_phone(page, "the sites page in Japanese")
