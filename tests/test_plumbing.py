"""What every request shares: one transaction that commits whole or not at all, the 500 page, one clock."""

from __future__ import annotations

import fcntl
import logging
import os
import sqlite3
from datetime import timedelta

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import IntegrityError, InternalError
from sqlalchemy.pool import NullPool

from tests.helpers import (
    client_for,
    count,
    counting,
    csrf_token,
    events,
    label_token,
    open_checkout,
    post,
    reread,
    sign_in,
)
from tracker import audit
from tracker.db import begin_writing
from tracker.errors import N_, InvalidInput
from tracker.http import attempt, db, now
from tracker.models import Checkout, DataClass, User


def _write_event(action: str) -> None:
    audit.record(db(), now(), action)


def test_an_unexpected_error_shows_a_translated_page_saves_nothing_and_is_logged_with_its_id(app, session, caplog):
    app.config.update(PROPAGATE_EXCEPTIONS=False, WTF_CSRF_ENABLED=False)

    def broken():
        with attempt():
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


# --- PostgreSQL: pages read outside a transaction, changes begin one ----------------------------------------------


def _postgres_only(db_url: str) -> None:
    if db_url.startswith("sqlite"):
        pytest.skip("how PostgreSQL connections begin transactions")


@pytest.mark.postgres
def test_on_postgresql_a_page_reads_without_a_transaction_and_a_take_out_commits_in_one(app, db_url, session,
                                                                                      make_user, make_item):
    _postgres_only(db_url)
    me, item = make_user(), make_item(data_class=DataClass.none)
    client = client_for(app, me)
    url = f"/S/{label_token(session, item)}"
    client.get(url)  # warm-up: the pool
    with counting(app) as seen:
        assert client.get(url).status_code == 200
    assert seen and not any(s.startswith("BEGIN") for s in seen)  # nor a ROLLBACK: the driver is told nothing
    with counting(app) as seen:
        assert post(client, f"/items/{item.asset_tag}/checkout", page=url).status_code in (302, 303)
    assert seen and not any(s.startswith("BEGIN") for s in seen)  # the BEGIN went with the first statement
    co = open_checkout(session, item)
    assert co.holder_id == me.id
    assert [e.item_id for e in events(session, "checkout")] == [item.id]
    # One transaction wrote the check-out, its event and the chain's head: the rows carry its id.
    written_by = {session.scalar(text(f"SELECT xmin::text FROM {table} WHERE {where}"), values)  # noqa: S608
                  for table, where, values in (("checkouts", "id = :id", {"id": co.id}),
                                               ("events", "checkout_id = :id", {"id": co.id}),
                                               ("audit_head", "id = 1", {}))}
    assert len(written_by) == 1


@pytest.mark.postgres
def test_on_postgresql_a_first_statement_that_fails_leaves_the_connection_clean(app, db_url, session, make_user):
    """The BEGIN goes with a write's first statement (`db._postgres_engine`): when that statement fails, the error
    is the database's own, nothing is written, and the next transaction on the connection works."""
    _postgres_only(db_url)
    me = make_user(name="Before")
    with app.extensions["tracker.read_sessionmaker"]() as writing:
        begin_writing(writing)
        with pytest.raises(IntegrityError, match="audit_head_pkey"):  # the chain has its one head already
            writing.execute(text("INSERT INTO audit_head SELECT * FROM audit_head"))
        writing.rollback()
        assert writing.connection().connection.dbapi_connection._pipeline is None
        begin_writing(writing)
        writing.execute(text("UPDATE users SET name = 'After' WHERE id = :id"), {"id": me.id})
        writing.commit()
        begin_writing(writing)  # a transaction that sends nothing commits nothing, without an error
        writing.commit()
        begin_writing(writing)  # one that starts with a streamed result (a server-side cursor: no pipeline)
        streamed = writing.execute(select(User.name).where(User.id == me.id).execution_options(yield_per=10))
        assert streamed.scalars().all() == ["After"]
        writing.execute(text("UPDATE users SET name = 'Again' WHERE id = :id"), {"id": me.id})
        writing.commit()
        assert writing.scalar(text("SHOW transaction_read_only")) == "on"  # reading again, outside a transaction
    reread(session)
    assert session.get(User, me.id).name == "Again"


@pytest.mark.postgres
def test_on_postgresql_a_write_outside_a_change_is_refused_by_the_server(app, db_url, session, make_user):
    """A view that wrote on the request's reading session without `attempt` would otherwise commit each statement on
    its own: the server refuses it, and nothing is written."""
    _postgres_only(db_url)
    me = make_user(name="Before")
    with app.extensions["tracker.read_sessionmaker"]() as reading:
        reading.get(User, me.id).name = "After"
        with pytest.raises(InternalError, match="read-only transaction"):
            reading.flush()
    reread(session)
    assert session.get(User, me.id).name == "Before"


@pytest.mark.postgres
def test_connections_the_database_server_dropped_are_replaced_before_a_request_uses_them(app, db_url, session,
                                                                                        make_user, make_item,
                                                                                        request):
    """A restart or a failover ends every connection in the pool: the next page is served, not an error."""
    _postgres_only(db_url)
    suites = request.getfixturevalue("pg_database").conn.connection.dbapi_connection.info.backend_pid
    me, item = make_user(), make_item(data_class=DataClass.none)
    client = client_for(app, me)
    url = f"/S/{label_token(session, item)}"
    assert client.get(url).status_code == 200
    session.rollback()  # the test's own connection goes back to the pool too
    outside = create_engine(db_url, poolclass=NullPool)  # not one of the app's
    with outside.connect() as conn:
        ended = conn.execute(text("SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                                  "WHERE datname = current_database() AND pid NOT IN (pg_backend_pid(), :suites)"),
                             {"suites": suites}).scalars().all()
    outside.dispose()
    # Every connection in the app's pool, the test's session's among them (not the one that empties the database
    # between tests).
    assert ended and all(ended)
    page = client.get(url)
    assert page.status_code == 200 and item.asset_tag in page.get_data(as_text=True)
    assert post(client, f"/items/{item.asset_tag}/checkout", page=url).status_code in (302, 303)
    assert open_checkout(session, item).holder_id == me.id


@pytest.mark.postgres
def test_on_postgresql_a_statement_reads_the_same_columns_on_every_run(app, db_url, session, make_user):
    """A result's columns are described only when read (`db._postgres_cursor`): the first run reads them all, the
    later ones reuse the layout SQLAlchemy kept, and a plain statement still describes its own."""
    _postgres_only(db_url)
    me = make_user(name="Hanako Yamada")
    stmt = select(User.id, User.name, User.created_at).where(User.id == me.id)
    with app.extensions["tracker.read_engine"].connect() as conn:
        runs = [conn.execute(stmt).mappings().one() for _ in range(7)]  # psycopg prepares it from the fifth
        described = conn.exec_driver_sql("SELECT 1 AS a, 'x' AS b").cursor.description
        assert [column[0] for column in described] == ["a", "b"]
        assert conn.exec_driver_sql("SELECT").cursor.description == []
    assert all(dict(run) == {"id": me.id, "name": "Hanako Yamada", "created_at": me.created_at} for run in runs)
