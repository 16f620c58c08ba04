"""Several app hosts on one PostgreSQL database: each with its own instance folder, one scheduler running the jobs,
sessions and label jobs good on every host, whichever a request lands on."""

from __future__ import annotations

from datetime import date

import pytest
from sqlalchemy import func, select

from tests.helpers import client_for, post, tokyo
from tracker import clock, create_app, scheduler
from tracker.custody import operations as custody
from tracker.models import Flag, LabelJob, Notification, Sweep

pytestmark = pytest.mark.postgres


def _host(db_url, folder, **extra):
    """An app as a host starts it: its own instance folder, its settings from the environment."""
    return create_app({"TESTING": True, "INSTANCE_PATH": str(folder), "DATABASE_URL": db_url,
                       "BASE_URL": "https://track.example.com", **extra})


@pytest.fixture
def hosts(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("TRACKER_SECRET_KEY", "the-same-on-every-host-" + "0" * 40)
    monkeypatch.setenv("TRACKER_WEBHOOK_URL", "http://127.0.0.1:9/hook")  # refused at once: the call stays queued
    made = [_host(db_url, tmp_path / "host-a"), _host(db_url, tmp_path / "host-b")]
    yield made
    for app in made:
        app.extensions["tracker.engine"].dispose()


def _fire(sched, *skip):
    """Run every job of a scheduler once, as its timers would."""
    for job in sched.get_jobs():
        if job.id not in skip:
            job.func()


def test_two_hosts_sweep_once_make_a_label_job_once_and_either_reports_it(hosts, session, make_user, make_item,
                                                                           monkeypatch):
    a, b = hosts
    assert a.instance_path != b.instance_path
    admin, holder = make_user("admin"), make_user()
    items = [make_item() for _ in range(3)]
    custody.check_out(session, tokyo(1, 9), item=items[0], holder=holder, actor=holder, due_at=tokyo(1, 18))
    session.commit()

    # Signed in on host A; the next request lands on host B with the same cookie.
    on_a = client_for(a, admin)
    on_b = b.test_client()
    on_b.set_cookie("session", on_a.get_cookie("session").value)
    assert on_b.get("/account").status_code == 200
    resp = post(on_a, "/admin/labels/download", {"select": "ids", "id": [str(i.id) for i in items], "format": "pdf",
                                                 "layout": "jp-24", "async": "1"}, page="/admin/labels/")
    job = resp.get_json()
    assert on_b.get(job["status"]).get_json()["waiting"] is True  # polled on the other host

    # Each host runs a scheduler process; at 19:00 both fire every job.
    monkeypatch.setattr(clock, "now", lambda: tokyo(1, 19))
    leaders = [scheduler.Leader(a), scheduler.Leader(b)]
    assert [leader.renew() for leader in leaders] == [True, False]
    for app, leader in zip((a, b), leaders, strict=True):
        _fire(scheduler.build(app, blocking=False, leader=leader), "sweep-0000")

    session.rollback()
    assert [(s.business_date, s.runs) for s in session.scalars(select(Sweep))] == [(date(2026, 6, 1), 1)]
    assert session.scalar(select(func.count(Flag.id))) == 1
    assert session.scalar(select(func.count(Notification.id)).where(Notification.channel == "webhook")) == 1
    made = session.scalars(select(LabelJob)).one()
    assert made.status == "done" and made.started_at == tokyo(1, 19)  # made once, by the lease holder

    state = on_b.get(job["status"]).get_json()
    assert state["finished"] and state["done"] == 3
    assert on_b.get(job["file"]).data.startswith(b"%PDF")
    assert on_a.get(job["file"]).data.startswith(b"%PDF")


def test_a_shared_database_needs_the_secret_key_from_the_environment(db_url, tmp_path, monkeypatch):
    monkeypatch.delenv("TRACKER_SECRET_KEY", raising=False)
    if db_url.startswith("sqlite"):  # one host: a key generated once into its instance folder will do
        app = _host(db_url, tmp_path / "host-a")
        assert app.config["SECRET_KEY"] == (tmp_path / "host-a" / "secret_key").read_text().strip()
        app.extensions["tracker.engine"].dispose()
        return
    with pytest.raises(ValueError, match="TRACKER_SECRET_KEY must be set"):
        _host(db_url, tmp_path / "host-a")
