"""Production serving: `flask serve` runs gunicorn and one scheduler process and Ctrl+C stops them all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from tests.helpers import Output, children, free_port
from tracker.models import SchedulerLease

ROOT = Path(__file__).resolve().parent.parent


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
        kids = children(proc.pid)
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


def test_serve_starts_gunicorn_with_the_workers_and_address_and_one_scheduler(app, runner, monkeypatch):
    from tracker import cli

    started = {}
    monkeypatch.setattr(cli, "supervise", lambda commands, **kw: started.update(commands) or 0)
    app.config.update(WORKERS=3, HOST="0.0.0.0", PORT=8123)  # noqa: S104 - only given to a fake
    result = runner.invoke(args=["serve"])
    assert result.exit_code == 0, result.output
    assert set(started) == {"web", "scheduler"}
    web = started["web"]
    assert web[1:3] == ["-m", "gunicorn"] and web[-1] == "app:app"
    assert web[web.index("--workers") + 1] == "3" and web[web.index("--bind") + 1] == "0.0.0.0:8123"
    assert started["scheduler"][-1] == "scheduler"
    assert "Open http://0.0.0.0:8123/" in result.output and "development" not in result.output


def test_serve_dev_runs_flasks_development_server_only_when_asked(app, runner, monkeypatch):
    import werkzeug.serving

    from tracker import cli

    served = []
    monkeypatch.setattr(werkzeug.serving, "run_simple", lambda host, port, wsgi, **kw: served.append((host, port)))
    monkeypatch.setattr(cli, "supervise", lambda *a, **kw: pytest.fail("gunicorn started with --dev"))
    result = runner.invoke(args=["serve", "--dev"])
    assert result.exit_code == 0, result.output
    assert served == [("127.0.0.1", app.config["PORT"])]
    assert "Development server (not for production)" in result.output
