"""A stock-take in a real browser at phone size (390x844), in English and Japanese: a desk member scans an item's
label and counts it in one tap; the session's page counts a typed tag from its scanner input and shows another
counter's work without being reloaded."""

from __future__ import annotations

import itertools

import pytest

from tests.browser import TIMEOUT_MS, _assert_fits_phone, _now, _screenshot, tap_and_wait
from tests.browser import sync_api as playwright
from tests.helpers import PASSWORD
from tracker.models import Item, StockTake, User
from tracker.stocktake import sessions

pytestmark = pytest.mark.browser

expect = playwright.expect
LANGUAGES = {
    "en": {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en"}},
    "ja": {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}},
}
COUNT_IT = {"en": "Count it in stock-take {n}", "ja": "棚卸 {n} で確認済みにする"}
COUNTED = {"en": "{tag} counted.", "ja": "{tag} を確認しました。"}
PROGRESS = {"en": "{done} of {n} expected items accounted for", "ja": "対象 {n} 件のうち {done} 件の所在を確認しました"}
REFRESH_MS = 11_000  # a little more than the page's 10-second refresh
_seq = itertools.count(1)


def _open_session(live_server, desk: User) -> int:
    with live_server.session() as s:
        st = sessions.open_stocktake(s, _now(), s.get(User, desk.id), "all")
        s.commit()
        return st.id


def _count(live_server, stocktake_id: int, item: Item, who: User) -> None:
    with live_server.session() as s:
        sessions.count(s, _now(), s.get(StockTake, stocktake_id), s.get(Item, item.id), s.get(User, who.id), "phone")
        s.commit()


@pytest.fixture
def desk_phone(browser, live_server):
    contexts = []

    def open_page(language: str):
        context = browser.new_context(base_url=live_server.url, viewport={"width": 390, "height": 844},
                                      is_mobile=True, has_touch=True, **LANGUAGES[language])
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        desk = live_server.make_user("security", name=f"Desk {next(_seq)}")
        page.goto("/login")
        page.locator("input[name=email]").fill(desk.email)
        page.locator("input[name=password]").fill(PASSWORD)
        tap_and_wait(page, page.locator("main form button[type=submit]"))
        return page, desk

    yield open_page
    for context in contexts:
        context.close()


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_scan_page_counts_the_item_in_one_tap(desk_phone, live_server, language, tmp_path):
    page, desk = desk_phone(language)
    item = live_server.make_item(name=f"Cabinet laptop {language}")
    st = _open_session(live_server, desk)
    page.goto(live_server.scan_url(item))
    button = page.get_by_role("button", name=COUNT_IT[language].format(n=st))
    expect(button).to_be_visible()
    _assert_fits_phone(page, "the scan page with count it")
    _screenshot(page, f"stocktake-scan-{language}.png", tmp_path)
    tap_and_wait(page, button)
    expect(page.locator(".flash")).to_contain_text(COUNTED[language].format(tag=item.asset_tag))
    assert page.url == live_server.scan_url(item)  # back on the item's page, ready for the next label


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_session_page_counts_typed_tags_and_shows_other_counters_live(desk_phone, live_server, language,
                                                                         tmp_path):
    page, desk = desk_phone(language)
    typed, elsewhere = live_server.make_item(), live_server.make_item()
    other = live_server.make_user("security")
    st = _open_session(live_server, desk)
    page.clock.install()
    page.goto(f"/stocktakes/{st}")
    page.evaluate("() => { window.stillTheSamePage = true; }")
    _assert_fits_phone(page, "the stock-take page")
    expected = int(page.locator("dd[data-total=expected]").inner_text())

    code = page.locator("#code")
    expect(code).to_be_focused()  # a USB scanner types straight into it
    code.fill(typed.asset_tag)
    code.press("Enter")
    expect(page.locator("#results li.ok")).to_contain_text(COUNTED[language].format(tag=typed.asset_tag))
    expect(code).to_have_value("")

    _count(live_server, st, elsewhere, other)  # a colleague counts with their phone meanwhile
    page.clock.run_for(REFRESH_MS)
    counted = page.locator("dd[data-total=counted]")
    expect(counted).to_have_text("2")
    expect(page.locator("[data-part=progress] .waiting")).to_contain_text(
        PROGRESS[language].format(done=2, n=expected))
    expect(page.locator("[data-part=lists] tr", has_text=elsewhere.asset_tag)).to_contain_text(other.name)
    assert page.evaluate("() => window.stillTheSamePage") is True
    _screenshot(page, f"stocktake-session-{language}.png", tmp_path)
