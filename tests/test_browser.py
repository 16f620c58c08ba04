"""Real-browser tests: Debian's Chromium driven by Playwright against the app served on 127.0.0.1.

They sign in through the real form (CSRF on), register an item, take it out and return it on a
phone-sized touch viewport, check the Japanese UI, and check the item page does not overflow sideways.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.conftest import PASSWORD, make_app
from tracker import items as items_mod
from tracker import migrate, users
from tracker.models import Checkout, DataClass, Item, Kind, User

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
JA_PO = Path(__file__).resolve().parent.parent / "tracker" / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
TIMEOUT_MS = 15_000
_seq = itertools.count(1)

sync_api = pytest.importorskip("playwright.sync_api")


def _require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; the CI image must install Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed here")


class LiveServer:
    def __init__(self, app, url: str):
        self.app = app
        self.url = url

    def session(self):
        """A new writing session; each one starts a fresh transaction, so it sees what requests committed."""
        return self.app.extensions["tracker.sessionmaker"]()

    def make_user(self, role="staff", language=None) -> User:
        n = next(_seq)
        with self.session() as s:
            user = users.create(s, _now(), email=f"browser-{role}{n}@example.com", name=f"{role.title()} {n}",
                                role=role, password=PASSWORD, actor=None, language=language,
                                must_change_password=False)
            s.commit()
            return user

    def make_item(self, kind=Kind.laptop, name=None, data_class=DataClass.personal) -> Item:
        with self.session() as s:
            data = items_mod.ItemData(kind=kind, name=name or f"Browser {kind.value} {next(_seq)}",
                                      data_class=data_class)
            item = items_mod.create(s, _now(), data, actor=None)
            s.commit()
            return item


def _now():
    from tracker import clock

    return clock.utcnow()


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    from werkzeug.serving import make_server

    tmp = tmp_path_factory.mktemp("live")
    db_url = f"sqlite:///{tmp / 'tracker.db'}"
    migrate.upgrade(db_url)
    app = make_app(db_url, tmp)
    # Werkzeug logs each request at INFO; keep the test output quiet without touching warnings.
    wz_logger = logging.getLogger("werkzeug")
    old_level = wz_logger.level
    wz_logger.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
    app.config["BASE_URL"] = url
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.extensions["tracker.engine"].dispose()
        wz_logger.setLevel(old_level)


@pytest.fixture(scope="module")
def browser():
    _require_chromium()
    with sync_api.sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, live_server):
    """A fresh phone-sized context per test (no cookies shared), English browser language."""
    context = browser.new_context(base_url=live_server.url, locale="en-US", **PHONE)
    context.set_default_timeout(TIMEOUT_MS)
    pg = context.new_page()
    yield pg
    context.close()


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    tap_and_wait(page, page.locator("form button[type=submit]"))
    assert not page.url.endswith("/login"), page.content()


def tap_and_wait(page, locator) -> None:
    """Tap a submit button or link and wait for the page it leads to (POST, redirect, new page)."""
    with page.expect_navigation():
        locator.tap()


def _flash_text(page) -> str:
    return " ".join(page.locator(".flash").all_inner_texts())


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
    assert name in page.locator("dl.facts").inner_text()

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
    assert page.locator("h1 .badge").inner_text() == "In"

    page.get_by_label("Purpose").fill("Client visit")
    page.get_by_label("Destination").fill("Osaka office")
    tap_and_wait(page, page.get_by_role("button", name="Take out"))  # one tap
    assert f"{item.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    assert page.locator("h1 .badge").inner_text() == "Out"
    facts = page.locator("dl.facts").inner_text()
    assert "Osaka office" in facts and "Client visit" in facts

    with live_server.session() as s:
        co = s.scalar(select(Checkout).where(Checkout.item_id == item.id))
        assert co is not None and co.holder_id == staff.id and co.returned_at is None
        assert (co.purpose, co.destination) == ("Client visit", "Osaka office")

    tap_and_wait(page, page.get_by_role("link", name="My items"))
    page.wait_for_url("**/my")
    row = page.locator("tbody tr", has_text=item.asset_tag)
    assert row.count() == 1
    tap_and_wait(page, row.get_by_role("button", name="Return"))
    page.wait_for_url(f"**/items/{item.asset_tag}")
    assert f"{item.asset_tag} is returned." in _flash_text(page)
    assert page.locator("h1 .badge").inner_text() == "In"

    page.goto("/my")
    assert "You hold no items." in page.locator("main").inner_text()

    with live_server.session() as s:
        cos = list(s.scalars(select(Checkout).where(Checkout.item_id == item.id)))
        assert len(cos) == 1
        assert cos[0].returned_at is not None
        assert cos[0].returned_by_id == staff.id


def _ja_msgstr(msgid: str) -> str:
    """The Japanese catalogue's msgstr for `msgid` ('' when untranslated or missing)."""
    text = JA_PO.read_text(encoding="utf-8") if JA_PO.exists() else ""
    match = re.search(r'^msgid "' + re.escape(msgid) + r'"\nmsgstr "(.*)"$', text, re.MULTILINE)
    return match.group(1) if match else ""


def test_japanese_user_sees_japanese_ui(page, live_server):
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
        tap_and_wait(page, page.locator("header nav form button"))  # sign out
        page.wait_for_url("**/login")
        # Signed out, the browser language decides; ask for Japanese this time.
        ctx = page.context.browser.new_context(base_url=live_server.url, locale="ja-JP", **PHONE)
        try:
            ja_page = ctx.new_page()
            ja_page.goto("/login")
            assert ja_page.locator("html").get_attribute("lang") == "ja"
            assert ja_page.locator("h1").inner_text() == sign_in_ja
        finally:
            ctx.close()


def _assert_fits_phone(page, what: str) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > PHONE["viewport"]["width"]:
        culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                       + ' right=' + Math.round(el.getBoundingClientRect().right))""")
        pytest.fail(f"{what}: page is {width}px wide on a 390px phone; too wide: {culprits}")


def _screenshot(page, path: Path) -> None:
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    keep = os.environ.get("TRACKER_SCREENSHOT_DIR")  # set it to keep copies to look at
    if keep:
        Path(keep, path.name).write_bytes(path.read_bytes())


@pytest.mark.parametrize("role", ["staff", "admin"])
def test_item_page_fits_phone(page, live_server, tmp_path, role):
    """The one-tap page, before (take-out form) and after (return button; admins also see history)."""
    user = live_server.make_user(role)
    item = live_server.make_item(Kind.folder, name="Payroll folder, March (HR, Tokyo head office)",
                                 data_class=DataClass.sensitive)
    sign_in(page, user.email)
    page.goto(f"/items/{item.asset_tag}")
    assert page.evaluate("() => window.innerWidth") == 390
    _screenshot(page, tmp_path / f"item-{role}-in.png")
    _assert_fits_phone(page, f"item page with the take-out form ({role})")

    page.get_by_label("Destination").fill("Osaka office")
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    assert page.locator("h1 .badge").inner_text() == "Out"
    _screenshot(page, tmp_path / f"item-{role}-out.png")
    _assert_fits_phone(page, f"item page of an item that is out ({role})")
