"""Production serving: `flask serve` runs gunicorn and one scheduler process and Ctrl+C stops them all."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.helpers import free_port
from tracker.models import SchedulerLease

ROOT = Path(__file__).resolve().parent.parent


def _children(pid: int) -> list[tuple[int, str]]:
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


def test_serve_runs_gunicorn_and_one_scheduler_and_ctrl_c_stops_everything(tmp_path):
    port = free_port()
    db = tmp_path / "instance" / "tracker.db"
    env = {**os.environ, "TRACKER_INSTANCE_PATH": str(tmp_path / "instance"), "TRACKER_PORT": str(port),
           "TRACKER_HOST": "127.0.0.1", "TRACKER_WORKERS": "2", "PYTHONUNBUFFERED": "1"}
    env.pop("TRACKER_DATABASE_URL", None)
    proc = subprocess.Popen([sys.executable, "-m", "flask", "--app", "app", "serve"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    out = Output(proc)
    try:
        out.wait_for("password:")  # the first admin, created by the bootstrap
        out.wait_for(f"Open http://127.0.0.1:{port}/")
        out.wait_for("Booting worker")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/login", timeout=30) as resp:
            assert resp.status == 200
            assert resp.headers["Server"].startswith("gunicorn")
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as resp:
            page = resp.read().decode()  # the workers' latencies added up, and the database's figures
            assert 'tracker_request_duration_seconds_count{endpoint="auth.login",method="GET",status="200"}' in page
            assert "tracker_checkouts_open 0.0" in page
        kids = _children(proc.pid)
        assert len([c for c in kids if c[1].endswith(" scheduler ")]) == 1, kids
        assert len([c for c in kids if "gunicorn" in c[1]]) == 1, kids
        out.wait_for("holds the lease")
        engine = create_engine(f"sqlite:///{db}")
        with Session(engine) as s:
            assert len(list(s.scalars(select(SchedulerLease)))) == 1
        os.killpg(proc.pid, signal.SIGINT)  # Ctrl+C in the terminal reaches the whole group
        assert proc.wait(timeout=60) == 0
        for pid, _ in kids:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
        with Session(engine) as s:  # the scheduler gave up its lease on the way out
            lease = s.scalars(select(SchedulerLease)).one()
            assert lease.expires_at <= datetime.now(UTC)  # not left to run out
        engine.dispose()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
        proc.stdout.close()
