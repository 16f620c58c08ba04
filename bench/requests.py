"""Requests per second through gunicorn: the signed-in scan page and take-out/return POSTs, against a bare Flask
app under the same settings in the same run (SQLite, or PostgreSQL on a private server with --postgres).

gunicorn runs 2 sync workers on a free port for the tracker, and as many on another for bench/bare.py (a page
rendering a tiny template; an endpoint committing one row through SQLAlchemy); the cases take turns in rounds. Load comes from wrk (Debian: apt-get install wrk),
50 connections. The scan page is asked for by many signed-in users round-robin; take-outs and returns alternate on
many items, each held by its own user, so no two requests in flight touch the same item.

Usage: python bench/requests.py [--postgres] [--seconds 10] [--rounds 3] [--connections 50] [--workers 2]
(prints a table; writes bench/results/requests.json or requests-postgres.json)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
UA = "tracker-bench"
SECRET = "bench-secret-" + "x" * 40


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def prepare(url: str, people: int, items: int) -> list[dict]:
    """Migrate; `people` staff users and `items` USB drives (no personal data: no handling rules to tick), each
    item with its holder's signed-in session cookie, CSRF token and label token."""
    from flask import session
    from flask_wtf.csrf import generate_csrf
    from sqlalchemy import select

    from tracker import clock, create_app, migrate
    from tracker.accounts import sessions, users
    from tracker.items import register
    from tracker.models import DataClass, Item, Kind, LabelToken, User

    migrate.upgrade(url)
    users.HASH_METHOD = "pbkdf2:sha256:1000"  # sign-in is not measured
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": SECRET, "INSTANCE_PATH": tempfile.mkdtemp()})
    with app.extensions["tracker.sessionmaker"]() as s:
        for n in range(people):
            users.create(s, clock.now(), email=f"bench{n}@example.com", name=f"Bench {n}", role="staff",
                         password="correct-horse-battery-staple", actor=None, must_change_password=False)  # noqa: S106
        register.create_many(s, clock.now(), [register.ItemData(kind=Kind.usb, name=f"USB {n}",
                                                                data_class=DataClass.none) for n in range(items)],
                             actor=None)
        s.commit()
    with app.extensions["tracker.sessionmaker"]() as s:
        rows = s.execute(select(LabelToken.token, Item.asset_tag)
                         .join(Item, Item.id == LabelToken.item_id).order_by(LabelToken.id)).all()
        people_rows = list(s.scalars(select(User).order_by(User.id)))
        cookies = []
        for user in people_rows:
            with app.test_request_context("/", headers={"User-Agent": UA}, environ_base={"REMOTE_ADDR": "127.0.0.1"}):
                sessions.begin(user)
                token = generate_csrf()
                cookie = app.session_interface.get_signing_serializer(app).dumps(dict(session))
                cookies.append((cookie, token))
    app.extensions["tracker.engine"].dispose()
    return [{"cookie": cookies[n % len(cookies)][0], "csrf": cookies[n % len(cookies)][1], "label": token,
             "tag": tag} for n, (token, tag) in enumerate(rows)]


LUA = r"""
local data = %(data)s
local mode = "%(mode)s"
local counter = -1  -- wrk asks for one request per thread before it starts, and may never send it
local mine = {}
local threads = {}
function setup(thread)
  thread:set("tid", #threads)
  table.insert(threads, thread)
end
function init(args)
  local n = #data
  local k = tonumber(%(threads)d)
  for i = 1, n do
    if (i - 1) %% k == tid then table.insert(mine, data[i]) end
  end
end
local bad = 0
function request()
  local first = counter < 0
  if first then counter = 0 end
  local i = counter %% #mine + 1
  local round = math.floor(counter / #mine)
  if not first then counter = counter + 1 end
  local d = mine[i]
  local headers = {["Cookie"] = "session=" .. d.cookie, ["User-Agent"] = "%(ua)s",
                   ["Accept-Language"] = "en"}
  if mode == "scan" or (first and mode == "takeout") then
    return wrk.format("GET", "/S/" .. d.label, headers)
  elseif mode == "bare-page" then
    return wrk.format("GET", "/page", headers)
  elseif mode == "bare-write" then
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    return wrk.format("POST", "/write", headers, "csrf_token=" .. d.csrf)
  else
    headers["Content-Type"] = "application/x-www-form-urlencoded"
    local action = (round %% 2 == 0) and "checkout" or "return"
    return wrk.format("POST", "/items/" .. d.tag .. "/" .. action, headers, "csrf_token=" .. d.csrf)
  end
end
function done(summary, latency, requests)
  io.write(string.format("RESULT %%d %%d %%d %%d %%d %%d\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), summary.errors.status, summary.errors.connect +
    summary.errors.read + summary.errors.write + summary.errors.timeout))
end
"""


def lua_table(data: list[dict]) -> str:
    return "{" + ",".join("{" + ",".join(f'{k}="{v}"' for k, v in d.items()) + "}" for d in data) + "}"


def wrk(port: int, mode: str, data: list[dict], seconds: int, connections: int, threads: int = 2) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(LUA % {"data": lua_table(data), "mode": mode, "threads": threads, "ua": UA})
    out = subprocess.run(["wrk", "-t", str(threads), "-c", str(connections), "-d", f"{seconds}s", "--timeout", "30s",
                          "-s", script.name, f"http://127.0.0.1:{port}"], capture_output=True, text=True, check=True)
    os.unlink(script.name)
    match = re.search(r"RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)", out.stdout)
    if not match:
        raise SystemExit(out.stdout + out.stderr)
    n, micros, p50, p99, bad_status, errors = map(int, match.groups())
    return {"requests": n, "per_s": n / (micros / 1e6), "p50_ms": p50 / 1000, "p99_ms": p99 / 1000,
            "bad_status": bad_status, "errors": errors}


def _outcomes(url: str) -> dict:
    """What the take-out/return POSTs did: the check-outs and returns recorded, and any refusal (there should be
    none: each item has its own holder and no two requests in flight touch the same item)."""
    from sqlalchemy import create_engine, func, select

    from tracker.models import Event

    engine = create_engine(url)
    with engine.connect() as conn:
        counts = dict(conn.execute(select(Event.action, func.count()).where(
            Event.action.in_(("checkout", "return", "refused"))).group_by(Event.action)).all())
        why = [data for (data,) in conn.execute(select(Event.data).where(Event.action == "refused"))]
    engine.dispose()
    if why:
        print("refused:", *why[-3:], sep="\n  ", file=sys.stderr)
    return {"checkouts": counts.get("checkout", 0), "returns": counts.get("return", 0),
            "refused": counts.get("refused", 0)}


class Gunicorn:
    def __init__(self, target: str, env: dict, pythonpath: str = ROOT, workers: int = 2):
        self.port = free_port()
        self.proc = subprocess.Popen([sys.executable, "-m", "gunicorn", "-w", str(workers), "-k", "sync",
                                      "-b", f"127.0.0.1:{self.port}", "--log-level", "warning",
                                      "--pythonpath", pythonpath, target], cwd=ROOT, env={**os.environ, **env})

    def wait(self, path: str) -> None:
        for _ in range(300):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=5)  # noqa: S310
                return
            except urllib.error.HTTPError:
                return
            except OSError:
                time.sleep(0.1)
        raise SystemExit("gunicorn did not start")

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=30)


def _measure(servers: dict, cases: list[str], data: list[dict], app_url: str, args) -> dict:
    """Each case for `args.seconds` in all, in `args.rounds` rounds that take the cases in turn: a case and its
    baseline run minutes apart would see a shared machine under different loads, so they alternate, and the rate of
    each is its requests over its time in every round. Take-outs warm up on a quarter of the items and each round
    takes out another share of the rest, all of them in at its start."""
    port = {c: servers["bare" if c.startswith("bare") else "app"].port for c in cases}
    quarter = len(data) // 4
    share = (len(data) - quarter) // args.rounds
    for case in cases:  # warm-up: the workers' caches, connections
        wrk(port[case], case, data[:quarter] if case == "takeout" else data, 2, args.connections)
    runs: dict[str, list[dict]] = {c: [] for c in cases}
    seconds = max(2, round(args.seconds / args.rounds))
    for r in range(args.rounds):
        for case in cases:
            items = data[quarter + r * share:quarter + (r + 1) * share] if case == "takeout" else data
            before = _outcomes(app_url) if case == "takeout" else {}
            run = wrk(port[case], case, items, seconds, args.connections)
            if case == "takeout":
                run.update({k: v - before[k] for k, v in _outcomes(app_url).items()})
            runs[case].append(run)
    results = {}
    for case, done in runs.items():
        total = sum(r["requests"] for r in done)
        results[case] = {"requests": total, "per_s": total / sum(r["requests"] / r["per_s"] for r in done),
                         "p50_ms": statistics.median(r["p50_ms"] for r in done),
                         "p99_ms": statistics.median(r["p99_ms"] for r in done),
                         "bad_status": sum(r["bad_status"] for r in done), "errors": sum(r["errors"] for r in done),
                         "rounds": done}
        if case == "takeout":
            results[case].update({k: sum(r[k] for r in done) for k in ("checkouts", "returns", "refused")})
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=50)
    parser.add_argument("--people", type=int, default=200)
    parser.add_argument("--items", type=int, default=800)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--only", help="comma-separated cases (scan,bare-page,takeout,bare-write)")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        raise SystemExit("wrk is missing: apt-get install wrk")
    folder = tempfile.mkdtemp(prefix="tracker-bench-")
    server = None
    if args.postgres:
        from sqlalchemy import create_engine, text

        from tests.pgserver import PgServer, find_bindir

        server = PgServer(find_bindir(), durable=True)  # commits reach the disk, as SQLite's do here
        server.start()
        admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text("CREATE DATABASE bench_app"))
            conn.execute(text("CREATE DATABASE bench_bare"))
        admin.dispose()
        app_url, bare_url = server.url("bench_app"), server.url("bench_bare")
    else:
        app_url, bare_url = f"sqlite:///{folder}/app.db", f"sqlite:///{folder}/bare.db"
    results = {}
    try:
        data = prepare(app_url, args.people, args.items)
        subprocess.run([sys.executable, "-c", "import os, sys; sys.path.insert(0, 'bench'); import bare"], cwd=ROOT,
                       env={**os.environ, "BARE_DATABASE_URL": bare_url}, check=True)
        cases = (args.only or "scan,bare-page,takeout,bare-write").split(",")
        app_env = {"TRACKER_DATABASE_URL": app_url, "TRACKER_SECRET_KEY": SECRET, "TRACKER_INSTANCE_PATH": folder}
        servers = {}
        ready = {}
        for group, target, env, path in (("app", "app:app", app_env, "/login"),
                                          ("bare", "bare:app", {"BARE_DATABASE_URL": bare_url}, "/page")):
            if any(c.startswith("bare") == (group == "bare") for c in cases):
                servers[group] = Gunicorn(target, env, workers=args.workers,
                                          pythonpath=os.path.join(ROOT, "bench") if group == "bare" else ROOT)
                ready[group] = path
        try:
            for group, g in servers.items():
                g.wait(ready[group])
            results = _measure(servers, cases, data, app_url, args)
        finally:
            for g in servers.values():
                g.stop()
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if server is not None:
            server.stop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"Requests through gunicorn ({args.workers} sync workers, {args.connections} connections, {args.seconds} s each "
          f"in {args.rounds} rounds) on {backend}, {os.cpu_count()} CPUs; p50 and p99: the rounds' median; "
          "rounds: the lowest and highest ratio of a round to its baseline's run next to it")
    print(f"{'case':<12}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'bad':>6}{'ratio':>8}{'rounds':>12}")
    for case, base in (("scan", "bare-page"), ("takeout", "bare-write"), ("bare-page", None), ("bare-write", None)):
        if case not in results:
            continue
        r = results[case]
        shown = ""
        if base in results and base:
            r["ratio"] = r["per_s"] / results[base]["per_s"]
            # each round's ratio to its baseline's run just after it: how far the machine's load moved them
            r["round_ratios"] = [a["per_s"] / b["per_s"] for a, b in zip(r["rounds"], results[base]["rounds"],
                                                                          strict=True)]
            low, high = min(r["round_ratios"]), max(r["round_ratios"])
            shown = f"{r['ratio']:>7.0%}{f'{low:.0%}-{high:.0%}':>12}"
        print(f"{case:<12}{r['per_s']:>9.0f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}{r['bad_status'] + r['errors']:>6}"
              f"{shown}")
    if "takeout" in results:
        t = results["takeout"]
        print(f"take-out/return recorded: {t['checkouts']} check-outs, {t['returns']} returns, {t['refused']} refused")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    name = "requests-postgres.json" if args.postgres else "requests.json"
    with open(os.path.join(ROOT, "bench", "results", name), "w") as f:
        json.dump({"backend": backend, "connections": args.connections, "seconds": args.seconds, "rounds": args.rounds,
                   "cpus": os.cpu_count(), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
