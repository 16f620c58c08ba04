"""Label throughput and memory, as ratios against bare QR generation measured in the same run.

Each case runs in its own process so its peak memory (ru_maxrss) is its own.
Usage: python bench/labels.py            (runs every case and prints a table)
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

BASE = "https://track.example.com"


def _labels(n: int):
    from tracker.items.register import new_token
    from tracker.labels.design import LabelData
    from tracker.labels.qr import label_url

    for i in range(n):
        yield LabelData(url=label_url(BASE, new_token()), asset_tag=f"LT-{i:05d}",
                        data_class=("none", "personal", "sensitive")[i % 3],
                        finder_text="拾得された方はQRコードを読み取るか、お近くの交番へお届けください")


def case(name: str, n: int) -> dict:
    from tracker.labels import fonts, layouts, qr, service

    fonts.register()
    urls = [d.url for d in _labels(n)] if name == "qr" else None
    start = time.perf_counter()
    if name == "qr":
        for url in urls:
            qr.matrix(url)
    elif name == "pdf":
        with tempfile.TemporaryDirectory() as out:
            service.write_files(_labels(n), layouts.get("jp-65"), out, "pdf")
    elif name == "idle":
        pass
    elapsed = time.perf_counter() - start
    return {"case": name, "n": n, "seconds": elapsed, "per_second": n / elapsed if elapsed and n else 0,
            "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def run(name: str, n: int) -> dict:
    out = subprocess.run([sys.executable, __file__, name, str(n)], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def main() -> None:
    idle = run("idle", 0)
    rows = [run("qr", 1000), run("pdf", 1000), run("pdf", 10000)]
    baseline = rows[0]["per_second"]
    print(f"{'case':10} {'labels':>7} {'per s':>9} {'x bare QR':>10} {'peak MB':>8} {'MB above idle':>14}")
    for r in rows:
        print(f"{r['case']:10} {r['n']:>7} {r['per_second']:>9.0f} {r['per_second'] / baseline:>10.2f} "
              f"{r['max_rss_mb']:>8.1f} {r['max_rss_mb'] - idle['max_rss_mb']:>14.1f}")
    growth = (rows[2]["max_rss_mb"] - idle["max_rss_mb"]) / max(0.1, rows[1]["max_rss_mb"] - idle["max_rss_mb"])
    print(f"memory above idle, 10,000 labels vs 1,000: x{growth:.2f} (flat is about 1)")
    folder = os.path.join(os.path.dirname(os.path.abspath(__file__)), "results")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "labels.json"), "w") as out:
        json.dump({"idle": idle, "cases": rows, "memory_growth": growth}, out, indent=1)


if __name__ == "__main__":
    if len(sys.argv) == 3:
        print(json.dumps(case(sys.argv[1], int(sys.argv[2]))))
    else:
        main()
