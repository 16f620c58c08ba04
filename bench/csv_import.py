"""The CSV import of 10,000 rows (the most a file may hold) in-process: decode, check and run
(tracker.items.csv_import), into a register that already holds 10,000 items; a Japanese Excel file (cp932) with
asset tags, a hundred bags and items naming their bag. Target: under 5 s in all.

Usage: python bench/csv_import.py [--rows 10000] [--postgres]
(prints a table; writes bench/results/csv_import.json or csv_import-postgres.json)
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


def make_file(rows: int) -> bytes:
    lines = ["管理番号,種別,名称,シリアル,部署,個人情報,暗号化,人数,収納バッグ"]
    bags = max(1, rows // 100)
    for n in range(bags):
        lines.append(f"BAG-{n:05d},バッグ,持ち出しバッグ {n},,総務部,なし,,,")
    for n in range(rows - bags):
        lines.append(f"LT-{n:06d},ノートPC,ノートPC {n},SN{n:08d},営業部,個人情報,はい,{n % 500},BAG-{n % bags:05d}")
    return ("\r\n".join(lines) + "\r\n").encode("cp932")


def measure(url: str, rows: int) -> dict:
    from sqlalchemy import create_engine, func, insert, select
    from sqlalchemy.orm import Session

    from tracker import clock, migrate
    from tracker.db import make_engine
    from tracker.items import csv_import
    from tracker.models import Item

    migrate.upgrade(url)
    now = clock.now()
    seed = create_engine(url)
    with seed.begin() as conn:  # a register in use: 10,000 items already
        conn.execute(insert(Item), [{"asset_tag": f"OLD-{i:06d}", "kind": "usb", "name": f"USB {i}",
                                     "data_class": "none", "encrypted": False, "created_at": now,
                                     "updated_at": now} for i in range(10_000)])
    seed.dispose()
    data = make_file(rows)
    engine = make_engine(url)
    times = {}
    with Session(engine) as s:
        start = time.perf_counter()
        text, encoding = csv_import.decode(data)
        times["decode"] = time.perf_counter() - start
        start = time.perf_counter()
        preview = csv_import.check(s, text, encoding)
        times["check"] = time.perf_counter() - start
        assert preview.ok, preview.errors[:3]
        start = time.perf_counter()
        ids = csv_import.run(s, clock.now(), preview, actor=None)
        s.commit()
        times["run"] = time.perf_counter() - start
        assert len(ids) == rows
        assert s.scalar(select(func.count()).select_from(Item)) == 10_000 + rows
    engine.dispose()
    return {"rows": rows, **{k: round(v, 3) for k, v in times.items()}, "total": round(sum(times.values()), 3)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--postgres", action="store_true")
    args = parser.parse_args()
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
                conn.execute(text("CREATE DATABASE bench_import"))
            admin.dispose()
            url = server.url("bench_import")
        else:
            url = f"sqlite:///{folder}/import.db"
        r = measure(url, args.rows)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
        if server is not None:
            server.stop()
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"CSV import of {args.rows:,} rows (cp932, tags and bags) into 10,000 items on {backend}, in-process "
          "(target: under 5 s)")
    print(f"{'decode s':>9}{'check s':>9}{'run s':>9}{'total s':>9}")
    print(f"{r['decode']:>9.2f}{r['check']:>9.2f}{r['run']:>9.2f}{r['total']:>9.2f}")
    os.makedirs(os.path.join(ROOT, "bench", "results"), exist_ok=True)
    name = "csv_import-postgres.json" if args.postgres else "csv_import.json"
    with open(os.path.join(ROOT, "bench", "results", name), "w") as f:
        json.dump({"backend": backend, **r}, f, indent=2)


if __name__ == "__main__":
    main()
