"""The browser tests' shared parts: a live server on 127.0.0.1 per test module, Debian's Chromium through
Playwright, phone-sized contexts, and the steps people take (sign in, tap and wait, open a box).

Registered as a pytest plugin in tests/conftest.py, so a browser test names `live_server`, `browser`, `phone`
or `page` as parameters and imports only the helper functions it uses from here.
"""

from __future__ import annotations

import itertools
import logging
import os
import re
import threading
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright import sync_api
from sqlalchemy import select

from tests.helpers import PASSWORD, make_app
from tracker import migrate
from tracker.accounts import users
from tracker.custody import operations as custody
from tracker.custody import policy as policy_mod
from tracker.items import register as items_mod
from tracker.models import Checkout, DataClass, Department, Item, Kind, LabelToken, User

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
    "--disable-component-update", "--disable-sync",
]
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True, "device_scale_factor": 2}
ENGLISH = {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en"}}
JA_PO = Path(__file__).resolve().parent.parent / "tracker" / "translations" / "ja" / "LC_MESSAGES" / "messages.po"
TIMEOUT_MS = 15_000
COMPANY = "Example Trading K.K."
HOTLINE = "03-1234-5678"
PAGE_BUDGET = 50 * 1024
_seq = itertools.count(1)



def _require_chromium() -> None:
    if os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        pytest.fail(f"{CHROMIUM} is missing; the CI image must install Debian's chromium package")
    pytest.skip(f"{CHROMIUM} is not installed here")


def _now():
    from tracker import clock

    return clock.now()


class LiveServer:
    def __init__(self, app, url: str):
        self.app = app
        self.url = url

    def session(self):
        """A new writing session; each one starts a fresh transaction, so it sees what requests committed."""
        return self.app.extensions["tracker.sessionmaker"]()

    def policy(self) -> policy_mod.Policy:
        return policy_mod.from_config(self.app.config)

    def make_user(self, role="staff", language=None, name=None) -> User:
        n = next(_seq)
        with self.session() as s:
            user = users.create(s, _now(), email=f"browser-{role}{n}@example.com", name=name or f"{role.title()} {n}",
                                role=role, password=PASSWORD, actor=None, language=language,
                                must_change_password=False)
            s.commit()
            return user

    def make_item(self, kind=Kind.laptop, name=None, data_class=DataClass.personal, bag: Item | None = None,
                  **kw) -> Item:
        with self.session() as s:
            if kw.get("department") and s.scalar(select(Department.id).where(Department.name == kw["department"])) is None:
                s.add(Department(name=kw["department"], created_at=_now()))  # departments are records
                s.flush()
            data = items_mod.ItemData(kind=kind, name=name or f"Browser {kind.value} {next(_seq)}",
                                      data_class=data_class, bag_tag=bag.asset_tag if bag is not None else None, **kw)
            item = items_mod.create(s, _now(), data, actor=None)
            _ = item.dept  # loaded, so item.department reads after the session ends
            s.commit()
            return item

    def token(self, item: Item) -> str:
        """The item's current label token, as printed in its QR code."""
        with self.session() as s:
            return s.scalar(select(LabelToken.token).where(LabelToken.item_id == item.id,
                                                            LabelToken.replaced_at.is_(None)))

    def scan_url(self, item: Item) -> str:
        return f"{self.url}/S/{self.token(item)}"

    def check_out(self, holder: User, *items: Item) -> None:
        """Put items out with `holder` directly through the custody rules (no policy: setup only)."""
        with self.session() as s:
            who = s.get(User, holder.id)
            due = self.policy().default_due(_now())
            for it in items:
                custody.check_out(s, _now(), item=s.get(Item, it.id), holder=who, actor=who, due_at=due,
                                  purpose="Setup", destination="Client", policy=None)
            s.commit()

    def checkouts(self, item: Item) -> list[Checkout]:
        with self.session() as s:
            rows = list(s.scalars(select(Checkout).where(Checkout.item_id == item.id).order_by(Checkout.id)))
            s.expunge_all()
            return rows

    def open_checkout(self, item: Item) -> Checkout | None:
        return next((c for c in self.checkouts(item) if c.returned_at is None), None)


@pytest.fixture(scope="module")
def live_server(tmp_path_factory):
    from werkzeug.serving import make_server

    tmp = tmp_path_factory.mktemp("live")
    db_url = f"sqlite:///{tmp / 'tracker.db'}"
    migrate.upgrade(db_url)
    app = make_app(db_url, tmp, COMPANY_NAME=COMPANY, FOUND_HOTLINE=HOTLINE)
    # Werkzeug logs each request at INFO; keep the test output quiet without touching warnings.
    wz_logger = logging.getLogger("werkzeug")
    old_level = wz_logger.level
    wz_logger.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    url = f"http://127.0.0.1:{server.server_port}"
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
def phone(browser, live_server):
    """Opens fresh phone-sized contexts (no cookies shared), English browser language; closes them after."""
    contexts = []

    def open_page(**kw):
        options = {**PHONE, **ENGLISH, **kw}
        context = browser.new_context(base_url=live_server.url, **options)
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        return context.new_page()

    yield open_page
    for context in contexts:
        context.close()


@pytest.fixture
def page(phone):
    return phone()


def sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.goto("/login")
    fill_sign_in(page, email, password)
    assert not page.url.endswith("/login"), page.content()


def fill_sign_in(page, email: str, password: str = PASSWORD) -> None:
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(password)
    tap_and_wait(page, page.locator("main form button[type=submit]"))


def tap_and_wait(page, locator) -> None:
    """Tap a submit button or link and wait for the page it leads to (POST, redirect, new page)."""
    with page.expect_navigation():
        locator.tap()


def open_details(page, summary_text: str) -> None:
    """Open a <details> box by tapping its summary (its fields are hidden until then)."""
    details = page.locator("details", has=page.locator("summary", has_text=summary_text)).first
    if details.get_attribute("open") is None:
        details.locator("summary").first.tap()
    assert details.get_attribute("open") is not None


def tick_rules_if_shown(page) -> bool:
    box = page.locator("input[name=rules_ack]")
    if box.count():
        box.check()
        return True
    return False


def _flash_text(page) -> str:
    return " ".join(page.locator(".flash").all_inner_texts())


def _badge(page) -> str:
    return page.locator("h1 .badge").inner_text().strip()


def _norm(text: str) -> str:
    """Collapse every kind of space (CLDR puts U+202F before AM/PM) so times compare as plain text."""
    return re.sub(r"\s+", " ", text.replace("\u202f", " ").replace("\xa0", " ")).strip()


def _local_short(live_server, when) -> str:
    """A time as the pages show it to an English reader, in the site's zone: 2026-06-01 19:00."""
    return _norm(when.astimezone(ZoneInfo(live_server.app.config["TIMEZONE"])).strftime("%Y-%m-%d %H:%M"))


def _screenshot(page, name: str, tmp_path: Path) -> Path:
    path = tmp_path / name
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 0
    keep = os.environ.get("TRACKER_SCREENSHOT_DIR")  # set it to keep copies to look at
    if keep:
        Path(keep, name).write_bytes(path.read_bytes())
    return path


def _assert_fits_phone(page, what: str) -> None:
    width = page.evaluate("() => document.documentElement.scrollWidth")
    if width > PHONE["viewport"]["width"]:
        culprits = page.evaluate("""() => [...document.querySelectorAll('body *')]
            .filter(el => el.getBoundingClientRect().right > document.documentElement.clientWidth + 1)
            .map(el => el.tagName.toLowerCase() + (el.className ? '.' + el.className : '')
                       + ' right=' + Math.round(el.getBoundingClientRect().right))""")
        pytest.fail(f"{what}: page is {width}px wide on a 390px phone; too wide: {culprits}")
