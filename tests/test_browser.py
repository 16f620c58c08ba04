"""Real-browser tests: Debian's Chromium driven by Playwright against the app served on 127.0.0.1.

They work the way people do, on a phone-sized touch viewport: sign in through the real form (CSRF on),
scan a label (open /S/<token>), take out, return, take over, return a bag with an item missing, sign in
from a scan and land back on it, use the found-item page as a stranger, receive 20 returns on the desk
scanner without a reload, and keep the scan page light and usable without JavaScript. Each test checks
what the person sees and what the database holds.
"""

from __future__ import annotations

import os
import re
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from tests.browser import (  # the fixtures live_server, browser, phone and page come from the plugin
    COMPANY,
    ENGLISH,
    HOTLINE,
    JA_PO,
    PAGE_BUDGET,
    TIMEOUT_MS,
    _assert_fits_phone,
    _badge,
    _flash_text,
    _local_short,
    _norm,
    _now,
    _screenshot,
    _seq,
    fill_sign_in,
    open_details,
    sign_in,
    sync_api,
    tap_and_wait,
    tick_rules_if_shown,
)
from tracker.custody import handover
from tracker.custody import operations as custody
from tracker.models import Checkout, DataClass, FoundReport, Item, Kind, User

pytestmark = pytest.mark.browser


# --- admin and the item page -------------------------------------------------------------------------------


def test_admin_registers_item_through_form(page, live_server):
    admin = live_server.make_user("admin")
    sign_in(page, admin.email)

    page.goto("/admin/items/new")
    assert page.locator("h1").inner_text() == "Register an item"
    name = f"Sales laptop {next(_seq)}"
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Kind").select_option("laptop")
    page.get_by_label("Personal data").select_option("sensitive")
    tap_and_wait(page, page.get_by_role("button", name="Save"))

    page.wait_for_url(re.compile(r"/items/LT-\d+$"))
    tag = page.locator("h1 .tag").inner_text().strip()
    assert re.fullmatch(r"LT-\d{4}", tag), tag
    assert page.url.endswith(f"/items/{tag}")
    assert f"{tag} is registered." in _flash_text(page)
    summary = page.locator("p.summary").inner_text()
    assert name in summary and "Laptop" in summary

    with live_server.session() as s:
        item = s.scalar(select(Item).where(Item.asset_tag == tag))
        assert item is not None
        assert item.name == name
        assert item.kind == Kind.laptop
        assert item.data_class == DataClass.sensitive
        assert item.retired_at is None


def test_staff_finds_takes_out_and_returns(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.usb)
    sign_in(page, staff.email)

    page.goto("/find")
    page.get_by_label("Asset tag").fill(item.asset_tag.lower())  # typed by hand, lower case
    tap_and_wait(page, page.get_by_role("button", name="Open"))
    page.wait_for_url(f"**/items/{item.asset_tag}")
    assert _badge(page) == "In"

    open_details(page, "Purpose, destination, due time")
    page.get_by_label("Purpose").fill("Client visit")
    page.get_by_label("Destination").fill("Osaka office")
    assert tick_rules_if_shown(page), "a USB drive with personal data asks for the handling rules first"
    tap_and_wait(page, page.get_by_role("button", name="Take out"))  # one tap
    assert f"{item.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    assert _badge(page) == "Out"
    assert "Osaka office" in page.locator("p.where").inner_text()
    open_details(page, "Details")
    assert "Client visit" in page.locator("dl.facts").inner_text()

    co = live_server.open_checkout(item)
    assert co is not None and co.holder_id == staff.id
    assert (co.purpose, co.destination) == ("Client visit", "Osaka office")

    tap_and_wait(page, page.get_by_role("link", name="My items"))
    page.wait_for_url("**/my")
    row = page.locator(".card", has_text=item.asset_tag)
    assert row.count() == 1
    # A USB drive with personal data is returned with a word on its erasure: the card opens its page to ask.
    assert row.get_by_role("button", name="Return").count() == 0
    tap_and_wait(page, row.get_by_role("link", name="Open"))
    page.get_by_label("Nothing was written to it").check()
    tap_and_wait(page, page.get_by_role("button", name="Return", exact=True))
    page.wait_for_url(f"**/items/{item.asset_tag}")
    assert f"{item.asset_tag} is returned." in _flash_text(page)
    assert _badge(page) == "In"

    page.goto("/my")
    assert "You hold no items." in page.locator("main").inner_text()

    cos = live_server.checkouts(item)
    assert len(cos) == 1
    assert cos[0].returned_at is not None
    assert cos[0].returned_by_id == staff.id


def _ja_msgstr(msgid: str) -> str:
    """The Japanese catalogue's msgstr for `msgid` ('' when untranslated or missing)."""
    text = JA_PO.read_text(encoding="utf-8") if JA_PO.exists() else ""
    match = re.search(r'^msgid "' + re.escape(msgid) + r'"\nmsgstr "(.*)"$', text, re.MULTILINE)
    return match.group(1) if match else ""


def test_japanese_user_sees_japanese_ui(page, phone, live_server):
    user = live_server.make_user("staff", language="ja")
    sign_in(page, user.email)  # the browser asks for English; the user's setting wins
    page.goto("/my")
    assert page.locator("html").get_attribute("lang") == "ja"

    translated = _ja_msgstr("My items")
    if translated:
        assert page.locator("h1").inner_text() == translated
        assert translated in page.locator("header nav").inner_text()
    sign_in_ja = _ja_msgstr("Sign in")
    if sign_in_ja:
        page.goto("/account")
        tap_and_wait(page, page.locator("form.signout button"))  # sign out, on the account page
        page.wait_for_url("**/login")
        # Signed out, the browser language decides; ask for Japanese this time.
        ja_page = phone(locale="ja-JP", extra_http_headers={"Accept-Language": "ja"})
        ja_page.goto("/login")
        assert ja_page.locator("html").get_attribute("lang") == "ja"
        assert ja_page.locator("h1").inner_text() == sign_in_ja


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_item_page_fits_phone(page, live_server, tmp_path, role):
    """The one-tap page, before (take-out form) and after (return button; admins also see history)."""
    user = live_server.make_user(role)
    item = live_server.make_item(Kind.folder, name="Payroll folder, March (HR, Tokyo head office)",
                                 data_class=DataClass.sensitive, department="Human Resources, Tokyo head office")
    sign_in(page, user.email)
    page.goto(f"/items/{item.asset_tag}")
    assert page.evaluate("() => window.innerWidth") == 390
    open_details(page, "Purpose, destination, due time")
    open_details(page, "Details")
    _screenshot(page, f"item-{role}-in.png", tmp_path)
    _assert_fits_phone(page, f"item page with the take-out form open ({role})")

    page.get_by_label("Destination").fill("Osaka office")
    assert tick_rules_if_shown(page)
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    assert _badge(page) == "Out"
    open_details(page, "Details")
    _screenshot(page, f"item-{role}-out.png", tmp_path)
    _assert_fits_phone(page, f"item page of an item that is out ({role})")
    co = live_server.open_checkout(item)
    assert co is not None and co.holder_id == user.id and co.destination == "Osaka office"


# --- the phone scan ----------------------------------------------------------------------------------------


def test_take_out_by_scanning(page, live_server, tmp_path):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.laptop, data_class=DataClass.personal)
    sign_in(page, staff.email)

    url = live_server.scan_url(item)
    page.goto(url)  # what the phone's camera app opens
    assert page.evaluate("() => window.innerWidth") == 390
    assert page.locator("h1 .tag").inner_text().strip() == item.asset_tag
    assert _badge(page) == "In"
    assert item.name in page.locator("p.summary").inner_text()
    default_due = live_server.policy().default_due(_now())
    assert _local_short(live_server, default_due) in _norm(page.locator("p.due").inner_text())
    rules = page.locator(".rules")
    assert rules.is_visible(), "first check-out of the day of a personal-data item shows the handling rules"
    _screenshot(page, "scan-staff-in.png", tmp_path)
    _assert_fits_phone(page, "scan page with the take-out form")
    take_out = page.get_by_role("button", name="Take out")
    assert take_out.is_visible()  # no need to open the details box first

    page.locator("input[name=rules_ack]").check()
    tap_and_wait(page, take_out)  # the one tap
    assert page.url == url, "the person stays on the scan"
    assert f"{item.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    assert _badge(page) == "Out"
    where = _norm(page.locator("p.where").inner_text())
    assert f"Out with {staff.name} since" in where
    assert f"Due back: {_local_short(live_server, default_due)}" in where
    assert page.get_by_role("button", name="Return").is_visible()
    _screenshot(page, "scan-staff-out.png", tmp_path)

    cos = live_server.checkouts(item)
    assert len(cos) == 1
    co = cos[0]
    assert co.holder_id == staff.id and co.returned_at is None
    assert co.due_at == default_due
    assert co.purpose == "" and co.destination == ""  # nothing prefilled: this was the person's first


def test_take_out_without_ticking_the_rules_changes_nothing(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.usb, data_class=DataClass.sensitive)
    sign_in(page, staff.email)
    url = live_server.scan_url(item)
    page.goto(url)
    tap_and_wait(page, page.get_by_role("button", name="Take out"))  # the box was not ticked
    assert page.locator("h1 .tag").inner_text().strip() == item.asset_tag  # the form again, as it was sent (400)
    assert "Please confirm that you have read the handling rules for personal data." in _flash_text(page)
    assert _badge(page) == "In"
    assert page.locator("input[name=rules_ack]").is_visible()
    assert live_server.checkouts(item) == []


def test_return_from_scan_page(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.usb)
    live_server.check_out(staff, item)
    sign_in(page, staff.email)

    url = live_server.scan_url(item)
    page.goto(url)
    assert _badge(page) == "Out"
    assert page.get_by_role("button", name="Take over").count() == 0  # it is mine
    page.get_by_label("Nothing was written to it").check()  # a USB drive with personal data: say so
    tap_and_wait(page, page.get_by_role("button", name="Return", exact=True))
    assert page.url == url
    assert f"{item.asset_tag} is returned." in _flash_text(page)
    assert _badge(page) == "In"
    assert page.get_by_role("button", name="Take out").is_visible()
    assert "In the office" in page.locator("p.where").inner_text()

    cos = live_server.checkouts(item)
    assert len(cos) == 1
    assert cos[0].returned_at is not None and cos[0].returned_by_id == staff.id


def test_hand_over_by_scanning(page, live_server):
    """A colleague scanning the label cannot just take the item; once the holder has offered it, the scan leads to
    the offer, and accepting it (with the handling rules ticked) makes it theirs."""
    alice = live_server.make_user("staff", name=f"Alice Aoki {next(_seq)}")
    bob = live_server.make_user("staff", name=f"Bob Baba {next(_seq)}")
    item = live_server.make_item(Kind.laptop)
    live_server.check_out(alice, item)
    before = live_server.open_checkout(item)
    sign_in(page, bob.email)

    url = live_server.scan_url(item)
    page.goto(url)
    assert f"Out with {alice.name}" in page.locator("p.where").inner_text()
    assert page.get_by_role("button", name=re.compile("Take over")).count() == 0
    assert f"To take it over, ask {alice.name} to offer it to you." in page.locator(".card.action").inner_text()
    assert page.get_by_role("button", name="Return", exact=True).count() == 0  # staff cannot return others' items
    with live_server.session() as s:
        handover.offer(s, _now(), item=s.get(Item, item.id), to=s.get(User, bob.id), actor=s.get(User, alice.id))
        s.commit()

    page.goto(url)
    tap_and_wait(page, page.get_by_role("link", name="Open the offer"))
    assert tick_rules_if_shown(page)  # a laptop with personal data: the rules are asked at the hand-over too
    tap_and_wait(page, page.get_by_role("button", name="Accept"))
    assert f"{item.asset_tag} is now yours." in _flash_text(page)
    assert f"Out with {bob.name}" in page.locator("p.where").inner_text()
    assert page.get_by_role("button", name="Return", exact=True).is_visible()

    cos = live_server.checkouts(item)
    assert len(cos) == 2
    old, new = cos
    assert old.id == before.id and old.holder_id == alice.id
    assert old.returned_at is not None and old.returned_by_id == bob.id
    assert new.holder_id == bob.id and new.returned_at is None
    assert new.due_at == before.due_at  # the hand-over keeps the due time


def test_bag_returned_with_an_item_missing(page, live_server):
    staff = live_server.make_user("staff")
    bag = live_server.make_item(Kind.bag, name="Sales bag")
    contents = [live_server.make_item(Kind.usb, bag=bag), live_server.make_item(Kind.laptop, bag=bag),
                live_server.make_item(Kind.folder, bag=bag)]
    live_server.check_out(staff, bag)
    for c in contents:
        assert live_server.open_checkout(c) is not None, "taking the bag out takes its contents"
    sign_in(page, staff.email)

    url = live_server.scan_url(bag)
    page.goto(url)
    listed = page.locator("ul.contents").inner_text()
    assert all(c.asset_tag in listed for c in contents)
    boxes = page.locator("input[name=present]")
    assert boxes.count() == 3
    missing = contents[1]
    for c in contents:
        if c is not missing:
            page.locator(f"input[name=present][data-tag='{c.asset_tag}']").check()
    page.get_by_label("Nothing was written to it").check()  # the bag holds a USB drive with personal data
    tap_and_wait(page, page.get_by_role("button", name="Return", exact=True))
    assert page.url == url
    flashes = _flash_text(page)
    assert f"{bag.asset_tag} is returned." in flashes
    assert f"Missing, still out: {missing.asset_tag}" in flashes
    assert page.locator(".flash-error", has_text=missing.asset_tag).is_visible()
    row = page.locator("ul.contents li", has_text=missing.asset_tag)
    assert f"Out: {staff.name}" in row.inner_text()
    assert _badge(page) == "In"

    assert live_server.open_checkout(bag) is None
    for c in contents:
        co = live_server.open_checkout(c)
        if c is missing:
            assert co is not None and co.holder_id == staff.id, "the missing item stays out"
        else:
            assert co is None, f"{c.asset_tag} was ticked and is back"


def test_sign_in_from_scan_lands_back_on_it(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.laptop)
    url = live_server.scan_url(item)

    page.goto(url)  # not signed in: the found-item page
    assert page.locator("h1").inner_text() == "Thank you for scanning this label"
    tap_and_wait(page, page.get_by_role("link", name="I work here: sign in"))
    page.wait_for_url("**/login**")
    fill_sign_in(page, staff.email)
    assert page.url == url, "sign-in leads back to the same scan"
    assert page.locator("h1 .tag").inner_text().strip() == item.asset_tag
    assert page.get_by_role("button", name="Take out").is_visible()
    assert live_server.open_checkout(item) is None  # looking changed nothing


def test_found_item_page_for_a_stranger(phone, live_server, tmp_path):
    n = next(_seq)
    holder = live_server.make_user("staff", name=f"Hanako Holder {n}")
    security = live_server.make_user("security")
    item = live_server.make_item(Kind.bag, name=f"Payroll bag {n}", data_class=DataClass.sensitive,
                                 department=f"Payroll Department {n}", serial=f"SN-SECRET-{n}")
    live_server.check_out(holder, item)

    stranger = phone()
    stranger.goto(live_server.scan_url(item))
    assert stranger.locator("h1").inner_text() == "Thank you for scanning this label"
    main = stranger.locator("main").inner_text()
    assert COMPANY in main and HOTLINE in main
    html = stranger.content()
    for secret in (item.asset_tag, item.name, holder.name, holder.email, f"Payroll Department {n}",
                   f"SN-SECRET-{n}"):
        assert secret not in html, f"the found-item page reveals {secret!r}"
    _screenshot(stranger, "found.png", tmp_path)
    _assert_fits_phone(stranger, "found-item page")

    message = f"Found on the Yamanote line, now at Shibuya station lost property {n}"
    stranger.get_by_label("Message").fill(message)
    stranger.get_by_label("Your phone or e-mail (optional)").fill("090-0000-0000")
    tap_and_wait(stranger, stranger.get_by_role("button", name="Send"))
    assert "Your message was sent to our security desk." in stranger.locator("main").inner_text()
    assert item.asset_tag not in stranger.content()
    _screenshot(stranger, "found-sent.png", tmp_path)

    with live_server.session() as s:
        reports = list(s.scalars(select(FoundReport).where(FoundReport.item_id == item.id).order_by(FoundReport.id)))
        assert [r.message for r in reports] == [None, message]  # the scan itself, then the message
        assert reports[1].contact == "090-0000-0000"
        assert all(r.handled_at is None for r in reports)

    desk = phone()
    sign_in(desk, security.email)
    desk.goto("/desk/")
    row = desk.locator("form.found-reports tr", has_text=message)
    assert row.count() == 1
    assert item.asset_tag in row.inner_text()
    assert "090-0000-0000" in row.inner_text()


def test_sign_in_after_sending_a_found_message_lands_on_the_scan(page, live_server):
    """A colleague who sent a message before noticing the sign-in link still lands on the scan."""
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.usb)
    url = live_server.scan_url(item)
    page.goto(url)
    page.get_by_label("Message").fill("Left on my desk by mistake")
    tap_and_wait(page, page.get_by_role("button", name="Send"))
    assert "Your message was sent to our security desk." in page.locator("main").inner_text()
    tap_and_wait(page, page.get_by_role("link", name="I work here: sign in"))
    fill_sign_in(page, staff.email)
    assert page.url == url, f"sign-in after sending a message lands on {page.url}, not the scan"
    assert page.get_by_role("button", name="Take out").is_visible()


def test_desk_scanner_receives_20_returns_without_reload(page, live_server):
    staff = live_server.make_user("staff")
    security = live_server.make_user("security")
    items = [live_server.make_item(Kind.usb, data_class=DataClass.none) for _ in range(20)]
    live_server.check_out(staff, *items)
    urls = [live_server.scan_url(it) for it in items]
    sign_in(page, security.email)

    page.goto("/desk/scanner")
    page.evaluate("() => { window.__marker = 1; }")
    navigations = []
    page.on("framenavigated", lambda frame: navigations.append(frame.url) if frame == page.main_frame else None)
    code = page.locator("#code")
    code.focus()
    for url in urls:  # a USB scanner types the URL and Enter into whatever has focus
        page.keyboard.type(url)
        page.keyboard.press("Enter")
        assert code.input_value() == "", "the field is cleared for the next scan"
    results = page.locator("#results li")
    sync_api.expect(results).to_have_count(20)
    assert page.evaluate("() => window.__marker") == 1, "the page was reloaded"
    assert navigations == []
    lines = results.all_inner_texts()
    assert all(re.search(rf"returned \(from {re.escape(staff.name)}\)", line) for line in lines), lines
    assert page.locator("#results li.ok").count() == 20
    newest_first = [it.asset_tag for it in reversed(items)]
    assert [line.split()[0] for line in lines] == newest_first

    for it in items:
        cos = live_server.checkouts(it)
        assert len(cos) == 1 and cos[0].returned_at is not None and cos[0].returned_by_id == security.id


# --- light and without JavaScript ------------------------------------------------------------------------


def test_scan_page_weighs_under_50_kb(page, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.laptop)
    sign_in(page, staff.email)

    seen: list[tuple[str, str, int]] = []

    def on_response(response):
        kind = response.request.resource_type
        if kind == "font":
            return
        try:
            size = len(response.body())
        except Exception:  # redirects have no body
            size = 0
        seen.append((kind, response.url, size))

    page.on("response", on_response)
    page.goto(live_server.scan_url(item), wait_until="load")
    page.wait_for_load_state("networkidle")
    page.remove_listener("response", on_response)
    assert page.get_by_role("button", name="Take out").is_visible()
    kinds = {k for k, _, _ in seen}
    assert "document" in kinds and "stylesheet" in kinds, seen
    total = sum(size for _, _, size in seen)
    assert total < PAGE_BUDGET, f"scan page weighs {total} bytes: {seen}"


def test_take_out_and_return_without_javascript(phone, live_server):
    staff = live_server.make_user("staff")
    item = live_server.make_item(Kind.folder, data_class=DataClass.sensitive)
    page = phone(java_script_enabled=False)
    sign_in(page, staff.email)

    url = live_server.scan_url(item)
    page.goto(url)
    assert page.locator("input[name=rules_ack]").count() == 1
    page.locator("input[name=rules_ack]").check()
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    assert page.url == url
    assert f"{item.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    assert _badge(page) == "Out"
    co = live_server.open_checkout(item)
    assert co is not None and co.holder_id == staff.id

    tap_and_wait(page, page.get_by_role("button", name="Return", exact=True))
    assert page.url == url
    assert f"{item.asset_tag} is returned." in _flash_text(page)
    assert _badge(page) == "In"
    cos = live_server.checkouts(item)
    assert len(cos) == 1 and cos[0].returned_at is not None and cos[0].returned_by_id == staff.id


# --- label files made by the scheduler -----------------------------------------------------------------------


def test_label_file_progress_retry_and_download(browser, live_server, tmp_path):
    """The page asks for a PDF, says it waits for the scheduler, and downloads it once made; a job whose maker
    died is shown as such with Try again, which queues it and downloads it in the end."""
    from tracker import jobs as scheduler_jobs
    from tracker.labels import jobs as label_jobs
    from tracker.models import LabelJob

    admin = live_server.make_user("admin")
    item = live_server.make_item(name="Label job laptop")
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900},
                                  has_touch=True, accept_downloads=True, **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        sign_in(page, admin.email)
        page.goto(f"/admin/labels/?q={item.asset_tag}")
        progress = page.locator("#label-progress")
        with page.expect_download() as download:
            page.locator("#label-form button[type=submit]:not([formaction])").first.click()
            page.wait_for_function("() => document.querySelector('#label-progress span').textContent"
                                   ".includes('Waiting for the scheduler')")
            with live_server.session() as s:  # the scheduler died while making it
                s.execute(update(LabelJob).values(status="running", heartbeat_at=_now() - label_jobs.STALE * 2))
                s.commit()
            progress.get_by_role("button", name="Try again").wait_for()
            assert "stopped" in progress.inner_text()
            _screenshot(page, "label-job-stalled.png", tmp_path)
            progress.get_by_role("button", name="Try again").click()
            page.wait_for_function("() => document.querySelector('#label-progress span').textContent"
                                   ".includes('Waiting for the scheduler')")
            assert scheduler_jobs.run_label_jobs(live_server.app) == 1  # the scheduler process makes it
        path = tmp_path / "labels.pdf"
        download.value.save_as(path)
        assert path.read_bytes().startswith(b"%PDF")
    finally:
        context.close()


# --- daily use: thumbs and walls -----------------------------------------------------------------------------


def test_header_links_are_thumb_sized_and_sign_out_is_not_among_them(page, live_server):
    staff = live_server.make_user("admin")
    sign_in(page, staff.email)
    page.goto("/my")
    heights = page.eval_on_selector_all("header.top nav a", "els => els.map(e => e.getBoundingClientRect().height)")
    assert heights and min(heights) >= 44, heights
    assert page.locator("header.top").get_by_role("button", name="Sign out").count() == 0
    page.locator("header.top nav a.account").click()
    page.wait_for_url("**/account")
    with page.expect_navigation():
        page.get_by_role("button", name="Sign out").click()
    assert page.url.endswith("/login")


def test_wall_badges_grow_with_the_text_and_board_buttons_keep_their_words(browser, live_server):
    desk = live_server.make_user("security")
    staff = live_server.make_user()
    item = live_server.make_item(data_class=DataClass.sensitive)
    live_server.check_out(staff, item)
    with live_server.session() as s:  # make it overdue
        s.execute(update(Checkout).where(Checkout.item_id == item.id).values(due_at=_now() - timedelta(hours=1)))
        s.commit()
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1920, "height": 1080}, has_touch=True,
                                  **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    wall = context.new_page()
    try:
        sign_in(wall, desk.email)
        wall.goto("/desk/?wall=1")
        body = float(wall.evaluate("() => parseFloat(getComputedStyle(document.body).fontSize)"))
        sizes = wall.eval_on_selector_all("#board-rows .badge", "els => els.map(e => parseFloat(getComputedStyle(e).fontSize))")
        assert sizes and min(sizes) >= 0.75 * body, (sizes, body)
        wrapped = wall.eval_on_selector_all("#board-rows button, #board-rows a.button",
                                            "els => els.filter(e => e.getClientRects().length > 1 || "
                                            "e.scrollHeight > e.clientHeight + 2).map(e => e.textContent)")
        assert wrapped == []
    finally:
        context.close()


def test_receiving_a_colleagues_item_asks_first(page, live_server):
    desk = live_server.make_user("security")
    staff = live_server.make_user(name="Hanako Yamada")
    item = live_server.make_item(data_class=DataClass.none)
    live_server.check_out(staff, item)
    sign_in(page, desk.email)
    page.goto(f"/items/{item.asset_tag}")
    asked = []
    page.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    page.get_by_role("button", name="Receive return").click()
    assert asked and item.asset_tag in asked[0] and "Hanako Yamada" in asked[0]
    assert live_server.open_checkout(item) is not None  # dismissed: nothing changed
    page.once("dialog", lambda d: d.accept())
    with page.expect_navigation():
        page.get_by_role("button", name="Receive return").click()
    assert live_server.open_checkout(item) is None


def test_the_wall_says_when_its_list_is_no_longer_up_to_date(browser, live_server):
    """A refresh that fails shows 'connection lost'; an ended session shows 'sign in again'; never a silently
    frozen table. The clock in the page is sped up so that the ten-second refresh comes at once."""
    desk = live_server.make_user("security")
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1920, "height": 1080}, has_touch=True,
                                  **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    wall = context.new_page()
    try:
        sign_in(wall, desk.email)
        wall.clock.install()
        wall.goto("/desk/?wall=1")
        banner = wall.locator("#board-offline")
        assert banner.is_hidden()
        wall.route("**/desk/?fragment=1*", lambda route: route.abort())  # the network is gone
        wall.clock.run_for(11_000)
        banner.wait_for(state="visible")
        assert "Connection lost" in banner.inner_text()
        wall.unroute("**/desk/?fragment=1*")
        with live_server.session() as s:  # the account's sessions end (signed out elsewhere, or disabled)
            s.get(User, desk.id).session_token = "ended-" + os.urandom(8).hex()
            s.commit()
        wall.clock.run_for(11_000)
        wall.wait_for_function("() => document.querySelector('#board-offline').textContent.includes('Sign in again')")
    finally:
        context.close()


def test_my_items_fit_a_phone_and_a_content_left_out_of_a_bag_says_what_to_do(page, live_server):
    staff = live_server.make_user()
    bag = live_server.make_item(Kind.bag, data_class=DataClass.none)
    left = live_server.make_item(data_class=DataClass.none, name="顧客名簿フォルダ（営業第二部・大阪支店分）", bag=bag)
    live_server.make_item(Kind.usb, data_class=DataClass.none, name="USBメモリ 32GB 暗号化済み", bag=bag)
    live_server.check_out(staff, bag)
    with live_server.session() as s:  # the bag came back with one content missing
        custody.return_item(s, _now(), item=s.get(Item, bag.id), actor=s.get(User, staff.id), present=set())
        s.commit()
    sign_in(page, staff.email)
    page.goto("/my")
    _assert_fits_phone(page, "My items")
    names = page.eval_on_selector_all(".card-name", "els => els.map(e => e.getBoundingClientRect().width)")
    assert names and min(names) > 150, names  # never a column one character wide
    card = page.locator(".card", has_text=left.asset_tag)
    assert "Missing: the bag came back without it" in card.inner_text()
    with page.expect_navigation():
        card.get_by_role("button", name="Return").click()
    assert live_server.open_checkout(left) is None
