"""The day-end sweep over a large history, against hand-written SQL doing the same work in the same run.

The database holds 1,000,000 check-outs: 900,000 returned, 100,000 open, 10,000 of them past due. The product's
sweep (tracker.desk.sweep: flags in one INSERT ... SELECT, the events chained and inserted in one statement, the
flags loaded back with their check-out, item and holder for the digests) is timed against one hand-written
INSERT ... SELECT of the same flags and one of the same events (numbered by row_number(), with a random hash in
place of the chain: SQL cannot chain SHA-256, so the baseline is a little cheaper than any honest sweep).
Each case runs in its own process on its own copy of the database, so its peak memory (ru_maxrss) is its own.

Usage: python bench/sweep.py [--rows 1000000] [--postgres]   (prints a table; writes bench/results/sweep.json)
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)


def build(url: str, rows: int) -> None:
    """Migrate and fill: 1,000 users, one item per open check-out (plus the returned ones' items), `rows`
    check-outs of which a tenth are open and a hundredth past due."""
    from sqlalchemy import create_engine, insert

    from tracker import migrate
    from tracker.models import Checkout, Item, User

    migrate.upgrade(url)
    engine = create_engine(url)
    n_open, n_due, n_users = rows // 10, rows // 100, 1000
    n_items = n_open + rows // 100
    with engine.begin() as conn:
        conn.execute(insert(User), [{"email": f"u{i}@example.com", "name": f"User {i}", "role": "staff",
                                     "active": True, "password_hash": "x", "must_change_password": False,
                                     "session_token": f"t{i}", "created_at": NOW} for i in range(n_users)])
        for start in range(0, n_items, 50_000):
            conn.execute(insert(Item), [{"asset_tag": f"LT-{i:07d}", "kind": "laptop", "name": f"Laptop {i}",
                                         "data_class": "personal", "encrypted": True, "created_at": NOW,
                                         "updated_at": NOW} for i in range(start, min(n_items, start + 50_000))])
        batch = []
        for i in range(rows):
            open_ = i < n_open
            out = NOW - timedelta(days=1 + (i % 900), hours=i % 7)
            due = NOW - timedelta(hours=1 + i % 5) if i < n_due else (NOW + timedelta(hours=3) if open_ else
                                                                       out + timedelta(hours=8))
            item = i + 1 if open_ else n_open + 1 + i % (n_items - n_open)
            batch.append({"item_id": item, "holder_id": 1 + i % n_users, "out_at": out, "due_at": due,
                          "purpose": "visit", "destination": "client",
                          "returned_at": None if open_ else out + timedelta(hours=6),
                          "returned_by_id": None if open_ else 1 + i % n_users})
            if len(batch) == 50_000:
                conn.execute(insert(Checkout), batch)
                batch = []
        if batch:
            conn.execute(insert(Checkout), batch)
    engine.dispose()


# Per database: a random 64-character hash, and the event's data as JSON text.
_RANDOM_HASH = {"sqlite": "hex(randomblob(32))", "postgresql": "md5(random()::text) || md5(random()::text)"}
_JSON = {"sqlite": "json_object('business_date', '2026-05-31', 'due_at', c.due_at)",
         "postgresql": "json_build_object('business_date', '2026-05-31', 'due_at', c.due_at)::text"}


def baseline_sql(dialect: str) -> list[str]:
    """What the sweep does, written by hand: the sweep's row, the flags in one INSERT ... SELECT, the events in
    another (numbered by row_number(), a random hash in place of the chain)."""
    return [
        "INSERT INTO sweeps (business_date, started_at, last_run_at, runs, flagged) "
        "VALUES ('2026-05-31', :now, :now, 1, 0)",
        "INSERT INTO flags (checkout_id, item_id, sweep_id, created_at, status) "
        "SELECT c.id, c.item_id, (SELECT id FROM sweeps WHERE business_date = '2026-05-31'), :now, 'open' "
        "FROM checkouts c WHERE c.returned_at IS NULL AND c.due_at <= :now "
        "AND NOT EXISTS (SELECT 1 FROM flags f WHERE f.checkout_id = c.id) AND (c.parent_id IS NULL OR NOT EXISTS "
        "(SELECT 1 FROM checkouts p WHERE p.id = c.parent_id AND p.returned_at IS NULL)) "
        "ORDER BY c.due_at, c.id ON CONFLICT (checkout_id) DO NOTHING",
        "INSERT INTO events (seq, prev_hash, hash, at, action, item_id, checkout_id, subject_user_id, source, data) "
        f"SELECT row_number() OVER (ORDER BY c.due_at, c.id), {_RANDOM_HASH[dialect]}, {_RANDOM_HASH[dialect]}, "
        f":now, 'flagged', c.item_id, c.id, c.holder_id, 'sweep', {_JSON[dialect]} "
        "FROM flags f JOIN checkouts c ON c.id = f.checkout_id",
    ]


def case(name: str, url: str) -> dict:
    """Run one case on the database at `url`; time and peak memory of this process."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.orm import Session

    from tracker.custody.policy import Policy
    from tracker.desk import sweep

    engine = create_engine(url)
    with Session(engine) as s:  # warm the connection and the tables' pages alike for both cases
        s.execute(text("SELECT count(*) FROM checkouts WHERE returned_at IS NULL")).scalar()

    def run(s: Session) -> int:
        if name == "product":
            return len(sweep.sweep(s, NOW, Policy()).flag_ids)
        now = NOW.replace(tzinfo=None)
        for sql in baseline_sql(engine.dialect.name):
            s.execute(text(sql), {"now": now})
        return s.execute(text("SELECT count(*) FROM flags")).scalar()

    # A scheduler runs for days: time the second sweep of the process (statements compiled and cached, pages
    # read), after a first one rolled back; the baseline is treated alike.
    with Session(engine) as s:
        run(s)
        s.rollback()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    with Session(engine) as s:
        flagged = run(s)
        s.commit()
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    engine.dispose()
    return {"case": name, "seconds": seconds, "flagged": flagged, "peak_mb": peak / 1024,
            "grew_mb": (peak - before) / 1024}


def _run(name: str, url: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--case", name, "--url", url], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"case {name} failed:\n{out.stderr}")
    return json.loads(out.stdout)


def _copies(args) -> tuple[list[tuple[str, str]], object]:
    """A database per case, filled once: SQLite files copied, PostgreSQL databases made from a template."""
    if not args.postgres:
        folder = tempfile.mkdtemp(prefix="tracker-bench-")
        template = os.path.join(folder, "template.db")
        build(f"sqlite:///{template}", args.rows)
        urls = []
        for name in ("baseline", "product"):
            shutil.copy(template, os.path.join(folder, f"{name}.db"))
            urls.append((name, f"sqlite:///{os.path.join(folder, name + '.db')}"))
        return urls, lambda: shutil.rmtree(folder, ignore_errors=True)
    from sqlalchemy import create_engine, text

    from tests.pgserver import PgServer, find_bindir

    server = PgServer(find_bindir())
    server.start()
    admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE bench_template"))
    build(server.url("bench_template"), args.rows)
    urls = []
    with admin.connect() as conn:
        for name in ("baseline", "product"):
            conn.execute(text(f"CREATE DATABASE bench_{name} TEMPLATE bench_template"))
            urls.append((name, server.url(f"bench_{name}")))
    admin.dispose()
    return urls, server.stop


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true")
    parser.add_argument("--case")
    parser.add_argument("--url")
    args = parser.parse_args()
    if args.case:
        print(json.dumps(case(args.case, args.url)))
        return
    built = time.perf_counter()
    urls, cleanup = _copies(args)
    built = time.perf_counter() - built
    try:
        results = {name: _run(name, url) for name, url in urls}
    finally:
        cleanup()
    base, prod = results["baseline"], results["product"]
    assert base["flagged"] == prod["flagged"] == args.rows // 100, results
    backend = "PostgreSQL" if args.postgres else "SQLite"
    ratio = prod["seconds"] / base["seconds"]
    print(f"Sweep over {args.rows:,} check-outs ({args.rows // 10:,} open, {args.rows // 100:,} due) on {backend}"
          f" (database built in {built:.0f} s)")
    print(f"{'case':<10}{'seconds':>10}{'flagged':>10}{'peak MB':>10}")
    for r in (base, prod):
        print(f"{r['case']:<10}{r['seconds']:>10.3f}{r['flagged']:>10,}{r['peak_mb']:>10.1f}")
    print(f"product / hand-written SQL: x{ratio:.2f}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", f"sweep-{backend.lower()}.json"), "w") as out:
        json.dump({"rows": args.rows, "backend": backend, "ratio": ratio, **{r["case"]: r for r in (base, prod)}},
                  out, indent=1)


if __name__ == "__main__":
    main()
