"""Load and faults with real processes, each bounded by timeouts: four gunicorn workers under concurrent scanning on
SQLite never show anyone "database is locked"; a process killed in the middle of a check-out leaves nothing
half-written and the audit chain intact."""

from __future__ import annotations

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import textwrap
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.helpers import PASSWORD, Output, free_port, reread
from tracker import clock, trail
from tracker.custody import operations as custody
from tracker.models import Checkout, DataClass, Event, Item, User

ROOT = Path(__file__).resolve().parent.parent
THREADS, ROUNDS, ITEMS = 8, 6, 4
_TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"')


class Browser:
    """One person's phone: its own cookies, every request with a timeout."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        request = urllib.request.Request(self.base + path, data=body,  # noqa: S310 - http://127.0.0.1 only
                                         headers={"Accept-Language": "en"})
        try:
            with self.opener.open(request, timeout=60) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def token(self, path: str) -> str:
        status, page = self.open(path)
        assert status == 200, (path, status)
        match = _TOKEN.search(page)
        return match.group(1) or match.group(2)


@pytest.fixture
def gunicorn(app, tmp_path):
    """Four gunicorn workers on the test's SQLite database; yields the base URL."""
    port = free_port()
    env = {**os.environ, "TRACKER_DATABASE_URL": app.config["DATABASE_URL"], "TRACKER_SECRET_KEY": "load-" + "1" * 40,
           "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"), "TRACKER_DEFAULT_LANGUAGE": "en",
           "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "--workers", "4", "--bind", f"127.0.0.1:{port}",
                             "--timeout", "60", "app:app"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Output(proc)
    try:
        for _ in range(4):
            out.wait_for("Booting worker")
        yield f"http://127.0.0.1:{port}", out
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stdout.close()


def test_four_workers_under_concurrent_scanning_show_no_one_a_locked_database(gunicorn, session, make_user,
                                                                               make_item):
    base, out = gunicorn
    people = [make_user() for _ in range(THREADS)]
    items = [make_item(data_class=DataClass.none) for _ in range(ITEMS)]
    tags = [i.asset_tag for i in items]
    answers: list[tuple[str, int, str]] = []
    lock = threading.Lock()

    def scan(n: int) -> int:
        phone = Browser(base)
        status, page = phone.open("/login", {"email": people[n].email, "password": PASSWORD,
                                             "csrf_token": phone.token("/login")})
        assert status == 200 and "<h1>My items</h1>" in page, page[:500]  # signed in
        token = phone.token("/my")
        taken = 0
        for r in range(ROUNDS):
            tag = tags[(n + r) % ITEMS]  # two people on every item: they race for it
            for action in ("checkout", "return"):
                status, page = phone.open(f"/items/{tag}/{action}", {"csrf_token": token})
                with lock:
                    answers.append((action, status, page))
                taken += action == "checkout" and f"{tag} is checked out to" in page
        return taken

    with ThreadPoolExecutor(THREADS) as pool:
        taken = sum(pool.map(scan, range(THREADS), timeout=300))

    assert len(answers) == THREADS * ROUNDS * 2
    assert {status for _, status, _ in answers} == {200}
    assert not [p for _, _, p in answers if "locked" in p or "try again" in p.lower()]
    assert "database is locked" not in "".join(out.seen)
    assert taken >= ITEMS  # people really took items out
    assert session.scalar(select(func.count(Checkout.id))) == taken  # every check-out shown was recorded, once
    reread(session)
    assert trail.verify(session).ok


_KILLED = """
import sys
from tracker import clock, create_app
from tracker.custody import operations as custody
from tracker.models import Item, User

app = create_app({"DATABASE_URL": sys.argv[1], "SECRET_KEY": "x" * 32, "INSTANCE_PATH": sys.argv[2]})
with app.extensions["tracker.sessionmaker"]() as s:
    item, holder = s.get(Item, int(sys.argv[3])), s.get(User, int(sys.argv[4]))
    custody.check_out(s, clock.now(), item=item, holder=holder, actor=holder, due_at=clock.now().replace(year=2099))
    s.flush()  # the check-out and its audit event are written, not committed
    print("written", flush=True)
    sys.stdin.read()  # killed here
    s.commit()
"""


@pytest.mark.postgres
def test_a_process_killed_in_the_middle_of_a_check_out_leaves_nothing_half_written(app, session, db_url, make_user,
                                                                                    make_item, tmp_path):
    holder, item = make_user(), make_item(data_class=DataClass.none)
    events_before = session.scalar(select(func.count(Event.id)))
    session.rollback()
    proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(_KILLED), db_url, str(tmp_path / "killed"),
                             str(item.id), str(holder.id)], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        Output(proc).wait_for("written")
        proc.kill()  # SIGKILL: no handler, no rollback by the process
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        proc.stdin.close()
        proc.stdout.close()

    reread(session)
    assert session.scalar(select(func.count(Checkout.id))) == 0
    assert session.scalar(select(func.count(Event.id))) == events_before
    assert trail.verify(session).ok
    session.rollback()
    # The item is free and the database writable: the next check-out goes through.
    with app.extensions["tracker.sessionmaker"]() as s:
        again = s.get(User, holder.id)
        custody.check_out(s, clock.now(), item=s.get(Item, item.id), holder=again, actor=again,
                          due_at=clock.now().replace(year=2099))
        s.commit()
    reread(session)
    assert session.scalar(select(func.count(Checkout.id))) == 1
    assert trail.verify(session).ok

