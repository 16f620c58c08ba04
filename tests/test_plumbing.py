"""What every request shares: one transaction that commits whole or not at all, the 500 page, one clock."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from datetime import timedelta

import pytest

from tests.helpers import client_for, count, csrf_token, events, sign_in
from tracker import audit
from tracker.errors import N_, InvalidInput
from tracker.http import attempt, db, now
from tracker.models import Checkout


def _write_event(action: str) -> None:
    audit.record(db(), now(), action)


def test_an_unexpected_error_shows_a_translated_page_saves_nothing_and_is_logged_with_its_id(app, session, caplog):
    app.config.update(PROPAGATE_EXCEPTIONS=False, WTF_CSRF_ENABLED=False)

    def broken():
        _write_event("half_done")
        raise RuntimeError("the disk fell off")

    app.add_url_rule("/broken", "broken", broken, methods=["POST"])
    client = app.test_client()
    with caplog.at_level(logging.ERROR):
        resp = client.post("/broken", headers={"Accept-Language": "ja"})
    page = resp.get_data(as_text=True)
    assert resp.status_code == 500
    assert "エラーが発生しました" in page and "何も記録されていません" in page
    request_id = resp.headers["X-Request-ID"]
    assert request_id and request_id in page
    logged = [r for r in caplog.records if request_id in r.getMessage()]
    assert logged and logged[0].exc_info and "the disk fell off" in str(logged[0].exc_info[1])
    assert "the disk fell off" not in page
    assert len(events(session, "half_done")) == 0


def test_the_500_page_speaks_english_to_an_english_browser(app):
    app.config.update(PROPAGATE_EXCEPTIONS=False)
    app.add_url_rule("/broken", "broken", lambda: 1 / 0)
    resp = app.test_client().get("/broken", headers={"Accept-Language": "en"})
    assert resp.status_code == 500
    assert "Nothing was recorded. Please try again" in resp.get_data(as_text=True)


def test_attempt_commits_what_succeeds_and_undoes_and_explains_what_a_rule_refuses(app, session):
    app.config.update(WTF_CSRF_ENABLED=False)

    def action(ok: str):
        with attempt() as done:
            _write_event("attempted")
            if ok != "yes":
                raise InvalidInput(N_("%(field)s is required."), field=N_("Note"))
        return ("done" if done else "refused"), (200 if done else 400)

    app.add_url_rule("/try/<ok>", "try", action, methods=["POST"])
    client = app.test_client()
    refused = client.post("/try/no", headers={"Accept-Language": "en"})
    assert refused.status_code == 400 and len(events(session, "attempted")) == 0
    with client.session_transaction() as flask_session:
        assert ("error", "Note is required.") in flask_session["_flashes"]
    assert client.post("/try/yes").status_code == 200
    assert len(events(session, "attempted")) == 1


def test_a_frozen_clock_also_ages_sessions(app, make_user, frozen_clock):
    """Session ageing reads the app's one clock, so moving the clock ends an idle desk session."""
    desk = make_user("security")
    client = app.test_client()
    sign_in(client, desk.email)
    assert client.get("/desk/").status_code == 200
    frozen_clock["now"] += timedelta(minutes=29)
    assert client.get("/desk/").status_code == 200
    frozen_clock["now"] += timedelta(minutes=31)
    resp = client.get("/desk/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


@pytest.fixture
def impatient_phone(new_app, db_url, make_user, make_item):
    """On SQLite, with a busy timeout of 0.2 s: a signed-in phone on an item's page, its take-out URL and form."""
    if not db_url.startswith("sqlite"):
        pytest.skip("SQLite's write lock and the writers' lock file next to its database")
    phone = client_for(new_app(DB_BUSY_SECONDS=0.2), make_user())
    page = f"/items/{make_item(data_class='none').asset_tag}"
    return phone, f"{page}/checkout", {"csrf_token": csrf_token(phone, page), "purpose": "visit"}


def test_a_write_that_finds_the_database_locked_says_nothing_was_recorded(impatient_phone, db_url, session, caplog):
    phone, checkout, form = impatient_phone
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    blocker.execute("BEGIN IMMEDIATE")  # a long import holds the lock
    try:
        with caplog.at_level(logging.ERROR):
            resp = phone.post(checkout, data=form)
    finally:
        blocker.rollback()
        blocker.close()
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert "Nothing was recorded. Please try again" in resp.get_data(as_text=True)
    assert any(resp.headers["X-Request-ID"] in r.getMessage() for r in caplog.records)
    assert count(session, Checkout) == 0
    assert phone.post(checkout, data=form).status_code == 303
    assert count(session, Checkout) == 1


def test_writers_queue_on_the_lock_file_and_a_stuck_holder_holds_nobody_up_past_the_busy_timeout(
        impatient_phone, db_url, session):
    """Writers queue on a lock file next to the database (they go in the moment it is free, instead of sleeping in
    SQLite's busy handler); one held by a stuck process delays a take-out by the busy timeout at most."""
    phone, checkout, form = impatient_phone
    lock_file = db_url.removeprefix("sqlite:///") + ".writers"
    assert os.path.exists(lock_file)  # made by the writes above
    stuck = os.open(lock_file, os.O_RDWR)
    fcntl.flock(stuck, fcntl.LOCK_EX)
    try:
        assert phone.post(checkout, data=form).status_code == 303
    finally:
        os.close(stuck)
    assert count(session, Checkout) == 1
