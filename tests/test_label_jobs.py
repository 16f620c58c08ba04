"""Label jobs live in the database and are made by the scheduler process: they survive a web worker's restart,
a job whose maker died says so and can be retried, and no partial file is kept."""

from __future__ import annotations

import glob
import os
import tempfile
from datetime import timedelta

from sqlalchemy import select, update

from tests.helpers import NOW, client_for, post, reread
from tracker import jobs as scheduler_jobs
from tracker.labels import jobs, layouts, service
from tracker.models import LabelJob


def _ask(client, ids, fmt="pdf", layout="jp-24"):
    resp = post(client, "/admin/labels/download", {"select": "ids", "id": [str(i) for i in ids], "format": fmt,
                                                    "layout": layout, "async": "1"}, page="/admin/labels/")
    assert resp.status_code == 200, resp.get_data(as_text=True)
    return resp.get_json()


def test_a_job_waits_for_the_scheduler_then_any_worker_hands_out_its_file(app, new_app, make_user, make_item):
    admin, other = make_user("admin"), make_user("admin")
    items = [make_item() for _ in range(3)]
    c = client_for(app, admin)
    job = _ask(c, [i.id for i in items])
    assert c.get(job["status"]).get_json() == {"done": 0, "total": 3, "finished": False, "failed": False,
                                               "error": None, "waiting": True}
    assert c.get(job["file"]).status_code == 404  # not made yet
    assert scheduler_jobs.run_label_jobs(app) == 1  # the scheduler process makes it
    # Another web worker (a fresh app on the same database) reports it and hands out the file.
    worker = new_app(SECRET_KEY=app.config["SECRET_KEY"])
    c2 = worker.test_client()
    c2.set_cookie("session", c.get_cookie("session").value)
    state = c2.get(job["status"]).get_json()
    assert state["finished"] and state["done"] == 3
    got = c2.get(job["file"])
    assert got.status_code == 200 and got.data.startswith(b"%PDF") and got.headers["Cache-Control"] == "no-store"
    assert client_for(app, other).get(job["status"]).status_code == 404  # another admin's job is not theirs


def test_a_job_whose_maker_died_is_shown_failed_and_can_be_retried(app, session, make_user, make_item,
                                                                   frozen_clock):
    admin = make_user("admin")
    item = make_item()
    c = client_for(app, admin)
    job = _ask(c, [item.id])
    # The scheduler took it and was killed mid-way: it was running and stopped reporting.
    session.execute(update(LabelJob).values(status="running", done=0, started_at=NOW, heartbeat_at=NOW))
    session.commit()
    frozen_clock["now"] = NOW + jobs.STALE + timedelta(seconds=1)
    state = c.get(job["status"]).get_json()
    assert state["failed"] and state["error"] == "stalled" and not state["finished"]
    retried = post(c, job["retry"], page="/admin/labels/").get_json()
    assert retried["status"] == job["status"]
    assert c.get(job["status"]).get_json()["waiting"] is True
    assert scheduler_jobs.run_label_jobs(app) == 1
    assert c.get(job["status"]).get_json()["finished"] is True


def test_a_stalled_job_is_picked_up_again_by_the_next_scheduler(app, session, make_user, make_item):
    admin = make_user("admin")
    job = jobs.queue(session, NOW, owner_id=admin.id, fmt="pdf", ids=[make_item().id], layout=layouts.get("jp-24"),
                     start_at=1, opts=service.options_from(app.config), filename="l.pdf", mimetype="application/pdf")
    job.status, job.heartbeat_at = "running", NOW - jobs.STALE - timedelta(minutes=1)
    session.commit()
    assert jobs.run_next(app.extensions["tracker.sessionmaker"], app.extensions["tracker.read_sessionmaker"],
                         lambda: NOW, "QL-820NWB")
    reread(session)
    assert session.scalar(select(LabelJob.status)) == "done"


def test_a_job_that_fails_says_why_and_leaves_no_partial_file(app, session, make_user, make_item, caplog,
                                                              monkeypatch, tmp_path):
    admin = make_user("admin")
    # A temporary folder of this test's own: the other test workers make label files in the shared one.
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    # QL raster from an A4 sheet layout cannot be made: a real failure inside the maker.
    jobs.queue(session, NOW, owner_id=admin.id, fmt="ql", ids=[make_item().id], layout=layouts.get("jp-24"),
                     start_at=1, opts=service.options_from(app.config), filename="l.bin",
                     mimetype="application/octet-stream")
    session.commit()
    assert scheduler_jobs.run_label_jobs(app) == 1
    reread(session)
    failed = session.scalar(select(LabelJob))
    state = jobs.state(failed, NOW)
    assert failed.status == "failed" and state["failed"] and state["error"] and failed.output is None
    assert not glob.glob(os.path.join(tmp_path, "labels-*"))
    assert any("label job" in r.getMessage() for r in caplog.records)
