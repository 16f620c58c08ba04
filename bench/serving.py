"""Check-outs and returns per second through gunicorn, with latency, as concurrent phones grow: SQLite or PostgreSQL.

Each simulated phone signs in as its own person and takes its own item out and back, ROUNDS times; every write is
a real request to gunicorn's workers on this machine.
Usage: python bench/serving.py [--database-url URL] [--workers 4] [--phones 4,16,32] [--rounds 10]
(default: a new SQLite file in a temporary folder; for PostgreSQL give an empty database's URL).
"""

from __future__ import annotations

import argparse
import http.cookiejar
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
PASSWORD = "correct-horse-battery-staple"  # noqa: S105 - throwaway bench users
TOKEN = re.compile(r'name="csrf-token" content="([^"]+)"|name="csrf_token"[^>]*value="([^"]+)"')


def prepare(url: str, people: int) -> list[tuple[str, str]]:
    """Migrate, then one person and one item per phone: [(email, asset tag)]."""
    from tracker import clock, create_app, migrate
    from tracker.accounts import users
    from tracker.items import register
    from tracker.models import DataClass, Kind

    migrate.upgrade(url)
    users.HASH_METHOD = "pbkdf2:sha256:1000"  # sign-in is not what is measured
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench", "INSTANCE_PATH": tempfile.mkdtemp()})
    pairs = []
    with app.extensions["tracker.sessionmaker"]() as s:
        for n in range(people):
            user = users.create(s, clock.now(), email=f"bench{n}-{time.time_ns()}@example.com", name=f"Bench {n}",
                                role="staff", password=PASSWORD, actor=None, must_change_password=False)
            item = register.create(s, clock.now(), register.ItemData(kind=Kind.usb, name=f"USB {n}",
                                                                   data_class=DataClass.none), actor=None)
            pairs.append((user.email, item.asset_tag))
        s.commit()
    app.extensions["tracker.engine"].dispose()
    return pairs


class Phone:
    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def open(self, path: str, data: dict | None = None) -> tuple[int, str]:
        body = urllib.parse.urlencode(data).encode() if data is not None else None
        req = urllib.request.Request(self.base + path, data=body)  # noqa: S310 - http://127.0.0.1 only
        try:
            with self.opener.open(req, timeout=120) as resp:
                return resp.status, resp.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def token(self, path: str) -> str:
        match = TOKEN.search(self.open(path)[1])
        return match.group(1) or match.group(2)


def run(base: str, pairs: list[tuple[str, str]], rounds: int) -> tuple[float, list[float], int]:
    def phone(pair) -> tuple[list[float], int]:
        email, tag = pair
        p = Phone(base)
        p.open("/login", {"email": email, "password": PASSWORD, "csrf_token": p.token("/login")})
        token = p.token("/my")
        took, failed = [], 0
        for _ in range(rounds):
            for action in ("checkout", "return"):
                started = time.perf_counter()
                status, _page = p.open(f"/items/{tag}/{action}", {"csrf_token": token})
                took.append(time.perf_counter() - started)
                failed += status != 200
        return took, failed

    started = time.perf_counter()
    with ThreadPoolExecutor(len(pairs)) as pool:
        results = list(pool.map(phone, pairs))
    elapsed = time.perf_counter() - started
    return elapsed, [t for took, _ in results for t in took], sum(f for _, f in results)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--phones", default="4,16,32")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    url = args.database_url or f"sqlite:///{tempfile.mkdtemp()}/bench.db"
    counts = [int(n) for n in args.phones.split(",")]
    port = 5600 + os.getpid() % 300
    env = {**os.environ, "TRACKER_DATABASE_URL": url, "TRACKER_SECRET_KEY": "bench" * 8,
           "TRACKER_INSTANCE_PATH": tempfile.mkdtemp()}
    server = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(args.workers), "-b", f"127.0.0.1:{port}",
                               "--log-level", "warning", "app:app"], cwd=ROOT, env=env)
    try:
        time.sleep(3)  # a benchmark, not a test: let the workers boot
        print(f"{url.split(':')[0]}, {args.workers} gunicorn workers, {os.cpu_count()} CPUs")
        print("phones  writes/s  median ms  p95 ms  failed")
        for n in counts:
            elapsed, took, failed = run(f"http://127.0.0.1:{port}", prepare(url, n), args.rounds)
            took.sort()
            print(f"{n:6}  {len(took) / elapsed:8.1f}  {statistics.median(took) * 1000:9.0f}  "
                  f"{took[int(len(took) * 0.95)] * 1000:6.0f}  {failed:6}")
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
