"""Helpers the test modules share: fixed times, apps, signed-in clients, CSRF posting, flashes and rereads.

Fixtures live in tests/conftest.py; the plain functions and constants they and the tests use live here, once.
"""

from __future__ import annotations

import html
import os
import queue
import re
import shutil
import socket
import subprocess
import threading
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_datetime
from jinja2 import BytecodeCache
from sqlalchemy import event, func, select

from tracker import create_app
from tracker.custody import handover
from tracker.models import Checkout, Event, LabelToken

PASSWORD = "correct-horse-battery"
NOW = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
TOKYO = ZoneInfo("Asia/Tokyo")
EN = {"Accept-Language": "en"}  # request headers of a browser that reads English

# A message flashed by the app (base.html gives each a role); notices written into a page have none.
_FLASH = re.compile(r'<p class="flash flash-(\w+)" role="\w+">(.*?)</p>', re.S)
_CSRF = (re.compile(r'name="csrf_token"[^>]*value="([^"]+)"'), re.compile(r'value="([^"]+)"[^>]*name="csrf_token"'),
         re.compile(r'<meta name="csrf-token" content="([^"]+)"'))  # every signed-in page carries one


# --- time --------------------------------------------------------------------------------------------------------


def later(**delta) -> datetime:
    return NOW + timedelta(**delta)


def tokyo(day: int, hour: int, minute: int = 0, month: int = 6, year: int = 2026) -> datetime:
    """A wall-clock time in Tokyo (June 2026 unless told), as an aware UTC datetime: how the rules get `now`."""
    return datetime(year, month, day, hour, minute, tzinfo=TOKYO).astimezone(UTC)


def local_dt(moment: datetime, seconds: bool = False) -> str:
    """A time as the English pages, PDFs, CSVs and mail show it, in Tokyo time: 2026-06-01 19:00."""
    return format_datetime(moment, "yyyy-MM-dd HH:mm" + (":ss" if seconds else ""), tzinfo=TOKYO, locale="en")


# --- apps and clients --------------------------------------------------------------------------------------------


class _SharedTemplateCode(BytecodeCache):
    """The compiled templates, kept for every app the tests make: each new app would compile them again (about
    a tenth of a second per test). Jinja checks the source's checksum, so a changed template is compiled anew."""

    def __init__(self):
        self.code: dict[str, bytes] = {}

    def load_bytecode(self, bucket) -> None:
        if bucket.key in self.code:
            bucket.bytecode_from_string(self.code[bucket.key])

    def dump_bytecode(self, bucket) -> None:
        self.code[bucket.key] = bucket.bytecode_to_string()


_TEMPLATE_CODE = _SharedTemplateCode()


def make_app(db_url, tmp_path, **extra):
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": db_url,
        "SECRET_KEY": "test-secret-" + os.urandom(8).hex(),
        "BASE_URL": "https://track.example.com",
        "LABELS_DIR": str(tmp_path / "labels"),
    }
    config.update(extra)
    app = create_app(config)
    app.jinja_env.bytecode_cache = _TEMPLATE_CODE
    return app


def csrf_from(page: str) -> str:
    match = _CSRF[0].search(page) or _CSRF[1].search(page) or _CSRF[2].search(page)
    assert match, "no CSRF token in page"
    return match.group(1)


def csrf_token(client, page: str | None = None) -> str:
    """A CSRF token of the client's session, from `page` (default: /account when signed in, else /login)."""
    if page is None:
        with client.session_transaction() as s:
            page = "/account" if "_user_id" in s else "/login"
    return csrf_from(client.get(page).get_data(as_text=True))


def sign_in(client, email, password=PASSWORD, follow=False):
    """Post the sign-in form with its CSRF token, the way a browser does."""
    token = csrf_token(client, "/login")
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       follow_redirects=follow)


def client_for(app, user=None, address: str | None = None):
    """A test client that asks for English pages, optionally from another IP address, signed in as `user`."""
    c = app.test_client()
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    if address:
        c.environ_base["REMOTE_ADDR"] = address
    if user is not None:
        resp = sign_in(c, user.email)
        assert resp.status_code == 302, f"could not sign in {user.email}"
    return c


def post(client, url, data=None, page=None, follow=False):
    """POST with the CSRF token of the client's session, taken from `page` (see csrf_token)."""
    payload = dict(data or {})
    payload["csrf_token"] = csrf_token(client, page)
    return client.post(url, data=payload, follow_redirects=follow)


def flashes(page) -> list[tuple[str, str]]:
    """The messages the app flashed on a page (a response or its HTML): [(category, text)]."""
    text = page if isinstance(page, str) else page.get_data(as_text=True)
    return [(category, html.unescape(message).strip()) for category, message in _FLASH.findall(text)]


def need_poppler(tool: str) -> str:
    """The path of a poppler-utils program; CI must have it, elsewhere the test is skipped without it."""
    path = shutil.which(tool)
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{tool} (poppler-utils) is not installed; CI must install it")
        pytest.skip(f"{tool} (poppler-utils) is not installed here")
    return path


def pdf_text(path) -> str:
    """The text of a PDF file, laid out as on the page (pdftotext -layout)."""
    exe = need_poppler("pdftotext")
    return subprocess.run([exe, "-layout", str(path), "-"], check=True, capture_output=True, timeout=60).stdout.decode()


def children(pid: int) -> list[tuple[int, str]]:
    """The processes whose parent is `pid`, with their command lines (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append((int(entry.name), cmdline))
    return found


class Output:
    """The lines a process prints, read in a thread so a test can wait for one with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.lines: queue.Queue[str] = queue.Queue()
        self.seen: list[str] = []
        threading.Thread(target=self._read, args=(proc.stdout,), daemon=True).start()

    def _read(self, stream) -> None:
        for line in stream:
            self.lines.put(line)

    def wait_for(self, text: str, timeout: float = 60) -> str:
        while True:
            try:
                line = self.lines.get(timeout=timeout)
            except queue.Empty:
                raise AssertionError(f"{text!r} not printed within {timeout}s; got:\n{''.join(self.seen)}") from None
            self.seen.append(line)
            if text in line:
                return line


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- the rules, as people use them ---------------------------------------------------------------------------------


def handed_over(session, now, item, giver, receiver):
    """A hand-over as staff make one: the giver offers, the receiver accepts (ticking the handling rules); flushed,
    not committed. Returns the receiver's check-out."""
    offer = handover.offer(session, now, item=item, to=receiver, actor=giver)
    return handover.accept(session, now, offer=offer, actor=receiver, handling_ack=True)


# --- the database as requests left it ----------------------------------------------------------------------------


def reread(session) -> None:
    """See what requests committed: end the test session's transaction and forget loaded values
    (rollback alone keeps them when no transaction is open, since expire_on_commit is off)."""
    session.rollback()
    session.expire_all()


def count(session, model, *where) -> int:
    """Rows of `model` (matching `where`) as committed now."""
    reread(session)
    return session.scalar(select(func.count(model.id)).where(*where))


def events(session, action=None, item=None, refusals=False) -> list:
    """The audit events committed so far, oldest first; only `action` or only `item`'s if given. Refusals (a
    refused request is an event too) only when asked for, so "nothing changed" reads as before."""
    reread(session)
    stmt = select(Event).order_by(Event.id)
    if not refusals and action != "refused":
        stmt = stmt.where(Event.action != "refused")
    if action:
        stmt = stmt.where(Event.action == action)
    if item is not None:
        stmt = stmt.where(Event.item_id == item.id)
    return list(session.scalars(stmt))


def open_checkout(session, item):
    """The item's open check-out as committed now, or None."""
    reread(session)
    return session.scalar(select(Checkout).where(Checkout.item_id == item.id, Checkout.returned_at.is_(None)))


def label_token(session, item) -> str:
    """The token of the item's current label, as committed now."""
    reread(session)
    return session.scalar(select(LabelToken.token).where(LabelToken.item_id == item.id,
                                                          LabelToken.replaced_at.is_(None)))


@contextmanager
def counting(app):
    """The SQL statements sent to the database while the block runs."""
    engine = app.extensions["tracker.engine"]
    seen: list[str] = []

    def listener(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", listener)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", listener)


def at_once(app, *moves, refused: tuple[type[BaseException], ...] = ()) -> list:
    """Run each move (a function of a fresh write session of its own, returning what it did) in its own thread, all
    released together; each commits when it returns. The outcomes, in the order of `moves`: what the move returned,
    the exception of an expected refusal (`refused`: rolled back), or "error: ..." for anything else, which the
    test's assertion then shows. Two phones, two schedulers, two admins at the same moment: the database decides."""
    maker = app.extensions["tracker.sessionmaker"]
    barrier = threading.Barrier(len(moves))
    outcomes: list = [None] * len(moves)

    def run(i: int, move) -> None:
        s = maker()
        try:
            barrier.wait()
            outcomes[i] = move(s)
            s.commit()
        except refused as err:
            s.rollback()
            outcomes[i] = err
        except Exception as exc:  # noqa: BLE001 - reported in the test's assertion
            s.rollback()
            outcomes[i] = f"error: {exc!r}"
        finally:
            s.close()

    threads = [threading.Thread(target=run, args=(i, move)) for i, move in enumerate(moves)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return outcomes
