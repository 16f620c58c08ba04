"""The desk board with 10,000 open check-outs: time per page in-process (Flask's test client, after warm-up) and
statements per page, against the same board with 100 open check-outs (statements must not grow).

Usage: python bench/board.py [--rows 100000] [--pages 20] [--postgres]
(prints a table; writes bench/results/board.json or board-postgres.json)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "bench"))


def measure(url: str, pages: int) -> dict:
    from flask import session
    from sqlalchemy import event, func, select
    from sweep import NOW

    from tracker import create_app
    from tracker.accounts import sessions, users
    from tracker.custody.policy import Policy
    from tracker.desk.sweep import sweep
    from tracker.models import Checkout

    folder = tempfile.mkdtemp()
    app = create_app({"DATABASE_URL": url, "SECRET_KEY": "bench-board", "INSTANCE_PATH": folder})
    users.HASH_METHOD = "pbkdf2:sha256:1000"
    with app.extensions["tracker.sessionmaker"]() as s:
        sweep(s, NOW, Policy())  # the past-due ones flagged, as the scheduler would have
        desk = users.create(s, NOW, email="desk@example.com", name="Desk", role="security",
                            password="correct-horse-battery-staple", actor=None, must_change_password=False)  # noqa: S106
        s.commit()
        open_ = s.scalar(select(func.count()).select_from(Checkout).where(Checkout.returned_at.is_(None)))
    with app.test_request_context("/", headers={"User-Agent": "bench"}):
        sessions.begin(desk)
        cookie = app.session_interface.get_signing_serializer(app).dumps(dict(session))
    client = app.test_client()
    client.set_cookie("session", cookie)
    seen: list[str] = []
    event.listen(app.extensions["tracker.engine"], "before_cursor_execute", lambda *a: seen.append(a[2]))
    headers = {"User-Agent": "bench", "Accept-Language": "en"}
    for _ in range(3):  # warm-up: connections, compiled statements and templates
        assert client.get("/desk/", headers=headers).status_code == 200
    seen.clear()
    took = []
    for _ in range(pages):
        start = time.perf_counter()
        resp = client.get("/desk/", headers=headers)
        took.append(time.perf_counter() - start)
        assert resp.status_code == 200
    app.extensions["tracker.engine"].dispose()
    shutil.rmtree(folder, ignore_errors=True)
    return {"open": open_, "median_ms": statistics.median(took) * 1000, "max_ms": max(took) * 1000,
            "statements": len(seen) / pages}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000, help="check-outs in all; a tenth are open")
    parser.add_argument("--pages", type=int, default=20)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
    from sweep import build

    results = []
    folder = tempfile.mkdtemp(prefix="tracker-bench-")
    server = None
    try:
        if args.postgres:
            from sqlalchemy import create_engine, text

            from tests.pgserver import PgServer, find_bindir

            server = PgServer(find_bindir())
            server.start()
            admin = create_engine(server.url("postgres"), isolation_level="AUTOCOMMIT")
            with admin.connect() as conn:
                for rows in (1000, args.rows):
                    conn.execute(text(f"CREATE DATABASE board_{rows}"))
            admin.dispose()
        for rows in (1000, args.rows):
            url = server.url(f"board_{rows}") if server else f"sqlite:///{folder}/board-{rows}.db"
            build(url, rows)
            results.append(measure(url, args.pages))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if server is not None:
            server.stop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"Desk board in-process on {backend} ({args.pages} pages after warm-up; target: under 50 ms, statements "
          "constant)")
    print(f"{'open':>8}{'median ms':>11}{'max ms':>9}{'statements':>12}")
    for r in results:
        print(f"{r['open']:>8,}{r['median_ms']:>11.1f}{r['max_ms']:>9.1f}{r['statements']:>12.0f}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    with open(os.path.join(ROOT, "bench", "results", "board-postgres.json" if args.postgres else "board.json"),
              "w") as f:
        json.dump({"backend": backend, "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
