"""The security desk's board in a real browser: overdue first on a desk screen and a wall, and a refresh that
brings everything on the board (overdue rows, finders' messages, approvals) without a reload."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from tests.browser import ENGLISH, PHONE, TIMEOUT_MS, _assert_fits_phone, _now, _seq, sign_in, sync_api
from tracker.custody import approvals, found
from tracker.desk import sweep
from tracker.models import Checkout, DataClass, Flag, Item, Kind, LabelToken, User

pytestmark = pytest.mark.browser


JAPANESE = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}
DESK = {"width": 1440, "height": 900}
WALL = {"width": 1920, "height": 1080}
REFRESH_MS = 11_000  # a little more than the board's 10-second refresh


def _label(s, item: Item) -> LabelToken:
    return s.scalar(select(LabelToken).where(LabelToken.item_id == item.id, LabelToken.replaced_at.is_(None)))


def _finders_message(live_server, item: Item, message: str, source: str) -> None:
    """What a stranger's phone leaves through the found-item page (each from its own address, as on a street)."""
    with live_server.session() as s:
        found.leave_message(s, _now(), _label(s, item), message, "090-1234-5678", source)
        s.commit()


def _stranger_scan(live_server, item: Item, source: str) -> None:
    with live_server.session() as s:
        found.record_scan(s, _now(), _label(s, item), source)
        s.commit()


def _request(live_server, item: Item, who: User, reason: str) -> None:
    with live_server.session() as s:
        approvals.request_checkout(s, _now(), item=s.get(Item, item.id), holder=s.get(User, who.id),
                                 due_at=_now() + timedelta(days=3), purpose="Audit", destination="Osaka office",
                                 reason=reason, policy=live_server.policy(), handling_ack=True)
        s.commit()


def _overdue(live_server, holder: User, *items: Item) -> None:
    live_server.check_out(holder, *items)
    with live_server.session() as s:
        s.execute(update(Checkout).where(Checkout.item_id.in_([i.id for i in items]), Checkout.returned_at.is_(None))
                  .values(due_at=_now() - timedelta(hours=2)))
        s.commit()


@pytest.fixture(scope="module")
def flood(live_server):
    """A bad morning: 30 labels scanned by strangers who left messages, 20 more scanned without one, six
    requests waiting for approval, five items overdue (one with a finder's message) and more out."""
    holder = live_server.make_user(name="山田 花子")
    overdue = [live_server.make_item(data_class=DataClass.sensitive, name=f"営業部ノートPC {n}") for n in range(5)]
    _overdue(live_server, holder, *overdue)
    live_server.check_out(holder, *[live_server.make_item(Kind.usb) for _ in range(5)])
    messaged = [live_server.make_item(Kind.bag, data_class=DataClass.personal) for _ in range(30)]
    for n, item in enumerate(messaged):
        _stranger_scan(live_server, item, f"198.51.100.{n}")
        _finders_message(live_server, item, f"山手線の網棚に置き忘れられていました。渋谷駅の忘れ物センターに届けます。"
                         f"Left on the Yamanote line rack, taken to Shibuya station lost property ({n})",
                         f"198.51.100.{n}")
    scanned = [live_server.make_item(Kind.usb) for _ in range(20)]
    for n, item in enumerate(scanned):
        _stranger_scan(live_server, item, f"203.0.113.{n}")
    _finders_message(live_server, overdue[0], "品川駅で見つけました", "192.0.2.1")
    requester = live_server.make_user(name="佐藤 次郎")
    requested = [live_server.make_item(Kind.folder, data_class=DataClass.sensitive) for _ in range(6)]
    for n, item in enumerate(requested):
        _request(live_server, item, requester, f"顧客監査のため三日間持ち出します ({n})")
    return {"overdue": overdue, "messaged": messaged, "scanned": scanned, "requested": requested}


def _keep_screenshot(page, name: str, tmp_path: Path) -> None:
    """What the screen shows, kept when TRACKER_SCREENSHOT_DIR is set (to look at the layout)."""
    path = tmp_path / name
    page.screenshot(path=str(path))
    keep = os.environ.get("TRACKER_SCREENSHOT_DIR")
    if keep:
        Path(keep, name).write_bytes(path.read_bytes())


def _open(browser, live_server, viewport, language: str):
    context = browser.new_context(base_url=live_server.url, viewport=viewport, has_touch=True, **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    sign_in(page, live_server.make_user("security", language=language).email)
    return context, page


@pytest.mark.parametrize("language", ["ja", "en"])
@pytest.mark.parametrize("screen", ["desk", "wall"])
def test_the_overdue_list_stays_on_the_first_screen_whatever_else_waits(browser, live_server, flood, screen,
                                                                         language, tmp_path):
    viewport = DESK if screen == "desk" else WALL
    context, page = _open(browser, live_server, viewport, language)
    try:
        page.goto("/desk/?wall=1" if screen == "wall" else "/desk/")
        first = page.locator("#board-rows tr.row-overdue").first
        box = first.bounding_box()
        assert box is not None and box["y"] >= 0
        assert box["y"] + box["height"] <= viewport["height"], (
            f"the first overdue row ends at {box['y'] + box['height']:.0f}px on a {viewport['height']}px screen")
        assert page.evaluate("() => scrollY") == 0
        _keep_screenshot(page, f"board-{screen}-{language}.png", tmp_path)
        # Everything else is still on the board, beside the list and after it for a keyboard or a screen reader.
        # One compact entry per label: a finder who scanned and then wrote is one entry, by the message.
        side = page.locator("#board-side")
        entries = side.locator("tr[data-kind]").evaluate_all(
            "rows => rows.map(r => [r.dataset.kind, r.querySelector('.tag').textContent.trim()])")
        for kind, items in (("message", flood["messaged"] + flood["overdue"][:1]), ("scan", flood["scanned"]),
                            ("approval", flood["requested"])):
            for item in items:
                assert [k for k, tag in entries if tag == item.asset_tag] == [kind], (kind, item.asset_tag)
        assert page.evaluate("""() => !!(document.querySelector('#board-rows').compareDocumentPosition(
            document.querySelector('#board-side')) & Node.DOCUMENT_POSITION_FOLLOWING)""")
        # A finder's message on an overdue item also shows on that item's own row.
        row = page.locator("#board-rows tr", has_text=flood["overdue"][0].asset_tag)
        assert "品川駅で見つけました" in row.inner_text()
        assert page.evaluate("() => document.documentElement.scrollWidth") <= viewport["width"]
    finally:
        context.close()


@pytest.mark.parametrize("screen", ["desk", "wall"])
def test_an_open_board_brings_new_messages_and_requests_without_a_reload(browser, live_server, screen):
    """The refresh updates the overdue rows, the finders' messages and the approvals; the page's own clock is
    run forward so that the ten-second refresh comes at once, and nothing is reloaded."""
    n = next(_seq)
    holder, requester = live_server.make_user(), live_server.make_user(name=f"Requester {n}")
    lost, wanted = live_server.make_item(name=f"Lost laptop {n}"), live_server.make_item(Kind.folder)
    live_server.check_out(holder, lost)
    context, page = _open(browser, live_server, DESK if screen == "desk" else WALL, "en")
    try:
        page.clock.install()
        page.goto("/desk/?wall=1" if screen == "wall" else "/desk/")
        page.evaluate("() => { window.stillTheSamePage = true; }")
        row = page.locator("#board-rows tr", has_text=lost.asset_tag)
        sync_api.expect(row).to_have_count(1)
        side = page.locator("#board-side")
        message = f"Found at Shinagawa station, ticket gate {n}"
        assert message not in side.inner_text() and wanted.asset_tag not in side.inner_text()

        _finders_message(live_server, lost, message, f"192.0.2.{n % 250}")
        _request(live_server, wanted, requester, f"Customer audit {n}")
        _overdue(live_server, holder, late := live_server.make_item(Kind.usb))
        page.clock.run_for(REFRESH_MS)

        sync_api.expect(side.locator("tr[data-kind=message]", has_text=message)).to_have_count(1)
        sync_api.expect(side.locator("tr[data-kind=approval]", has_text=wanted.asset_tag)).to_contain_text(
            f"Requester {n}")
        sync_api.expect(row).to_contain_text(message)
        sync_api.expect(page.locator("#board-rows tr.row-overdue", has_text=late.asset_tag)).to_have_count(1)
        assert page.evaluate("() => window.stillTheSamePage") is True
    finally:
        context.close()


def test_a_refresh_keeps_what_the_desk_was_ticking_and_typing(browser, live_server):
    n = next(_seq)
    first, second = live_server.make_item(Kind.usb), live_server.make_item(Kind.usb)
    _finders_message(live_server, first, f"On the bus {n}", f"192.0.2.{n % 250}")
    context, page = _open(browser, live_server, DESK, "en")
    try:
        page.clock.install()
        page.goto("/desk/")
        side = page.locator("#board-side")
        side.locator("tr[data-kind=message]", has_text=f"On the bus {n}").locator("input[type=checkbox]").check()
        side.get_by_label("Note (optional)").fill("Called the bus company")
        _finders_message(live_server, second, f"In a taxi {n}", f"192.0.2.{(n + 1) % 250}")
        page.clock.run_for(REFRESH_MS)
        sync_api.expect(side.locator("tr[data-kind=message]", has_text=f"In a taxi {n}")).to_have_count(1)
        sync_api.expect(side.locator("tr[data-kind=message]", has_text=f"On the bus {n}")
                        .locator("input[type=checkbox]")).to_be_checked()
        sync_api.expect(side.locator("tr[data-kind=message]", has_text=f"In a taxi {n}")
                        .locator("input[type=checkbox]")).not_to_be_checked()
        sync_api.expect(side.get_by_label("Note (optional)")).to_have_value("Called the bus company")
    finally:
        context.close()


@pytest.mark.parametrize(("language", "manager", "desk_lead"), [
    ("en", "Escalated to the manager", "Escalated to the desk lead"),
    ("ja", "上長に連絡済み", "窓口責任者に連絡済み"),
])
def test_a_phone_shows_how_far_each_overdue_flag_was_escalated(browser, live_server, language, manager, desk_lead,
                                                               tmp_path):
    """The desk lead, told of a flag nobody acknowledged, opens the board on a phone and sees which flags went how far."""
    holder = live_server.make_user(name=f"Holder {next(_seq)}")
    to_manager, to_lead = live_server.make_item(), live_server.make_item(Kind.usb)
    _overdue(live_server, holder, to_manager, to_lead)
    with live_server.session() as s:
        sweep.sweep(s, _now(), live_server.policy())
        for item, level in ((to_manager, 1), (to_lead, 2)):
            s.execute(update(Flag).where(Flag.item_id == item.id).values(escalation_level=level, escalated_at=_now()))
        s.commit()
    context = browser.new_context(base_url=live_server.url, **PHONE, **ENGLISH)  # the desk's own language decides
    context.set_default_timeout(TIMEOUT_MS)
    try:
        page = context.new_page()
        sign_in(page, live_server.make_user("security", language=language).email)
        page.goto("/desk/")
        for item, shown, not_shown in ((to_manager, manager, desk_lead), (to_lead, desk_lead, manager)):
            row = page.locator("#board-rows tr", has_text=item.asset_tag)
            badge = row.locator(".badge.escalated")
            sync_api.expect(badge).to_have_text(shown)
            sync_api.expect(row).not_to_contain_text(not_shown)
            badge.scroll_into_view_if_needed()
            box = badge.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["viewport"]["width"]
        _assert_fits_phone(page, f"the board ({language})")
        _keep_screenshot(page, f"board-escalated-phone-{language}.png", tmp_path)
        page.locator("#board-rows tr", has_text=to_lead.asset_tag).locator("a.button").tap()
        sync_api.expect(page.locator("dl.facts .escalated")).to_have_text(desk_lead)
        _assert_fits_phone(page, f"the flag page ({language})")
    finally:
        context.close()
