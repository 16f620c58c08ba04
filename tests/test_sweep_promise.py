"""The end-of-day promise: every overdue item is flagged every night, and only the desk closes a flag."""

from __future__ import annotations

import logging
import sqlite3
from datetime import time

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from tests.helpers import client_for, flashes, handed_over, post, reread, tokyo
from tracker import jobs, scheduler
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import sweep
from tracker.models import Checkout, Flag, FlagStatus

TOKYO = Policy(timezone="Asia/Tokyo", day_end=time(19, 0), late_sweeps=(time(0, 0),))

pytestmark = pytest.mark.postgres  # the sweep's record and the flag's move are SQL the two databases run alike


def out(session, item, holder, now, due_at):
    co = custody.check_out(session, now, item=item, holder=holder, actor=holder, due_at=due_at)
    session.commit()
    return co


def flag_of(session, item) -> Flag | None:
    reread(session)
    return session.scalar(select(Flag).where(Flag.item_id == item.id))


def test_a_missed_late_sweep_is_caught_up_after_downtime(session, make_user, make_item):
    staff = make_user()
    early, late = make_item(), make_item()
    out(session, early, staff, tokyo(1, 9), due_at=tokyo(1, 18))
    sweep.sweep(session, tokyo(1, 19), TOKYO)  # the day end ran
    session.commit()
    after_hours = out(session, late, staff, tokyo(1, 20), due_at=tokyo(2, 0))  # due at midnight
    # The process was down from 23:00 to 01:00: the 00:00 sweep never ran.
    assert sweep.sweep_if_missed(session, tokyo(1, 23), TOKYO) is None  # nothing was due since 19:00
    result = sweep.sweep_if_missed(session, tokyo(2, 1), TOKYO)
    session.commit()
    assert result is not None and [f.checkout_id for f in result.flags] == [after_hours.id]
    assert sweep.sweep_if_missed(session, tokyo(2, 1, 1), TOKYO) is None  # and once only


def test_the_desk_is_told_when_a_sweep_is_late(session, make_user, make_item):
    make_user()  # the site is in use from the morning of the 1st, so that day's end is owed a sweep
    assert sweep.status(session, tokyo(1, 19, 4), TOKYO).late is False  # due 4 minutes ago: give it time
    late = sweep.status(session, tokyo(1, 19, 10), TOKYO)
    assert late.late and late.due == tokyo(1, 19) and late.last_run_at is None
    sweep.sweep(session, tokyo(1, 19, 11), TOKYO)
    session.commit()
    done = sweep.status(session, tokyo(1, 19, 12), TOKYO)
    assert not done.late and done.last_run_at == tokyo(1, 19, 11)
    assert sweep.status(session, tokyo(2, 0, 10), TOKYO).late  # the late sweep at midnight did not run


def test_a_sweep_that_fails_on_a_locked_database_runs_at_the_next_minute(new_app, make_user, make_item, session,
                                                                          db_url, frozen_clock):
    if not db_url.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock from another connection")
    app = new_app(DB_BUSY_SECONDS=0.2, LATE_SWEEPS=[])
    staff = make_user()
    item = make_item()
    out(session, item, staff, tokyo(1, 9), due_at=tokyo(1, 18))
    blocker = sqlite3.connect(db_url.removeprefix("sqlite:///"))
    blocker.execute("BEGIN IMMEDIATE")  # another writer holds the lock past the busy timeout
    try:
        with pytest.raises(OperationalError):
            jobs.run_sweep(app, tokyo(1, 19))
    finally:
        blocker.rollback()
        blocker.close()
    assert flag_of(session, item) is None
    frozen_clock["now"] = tokyo(1, 19, 10)
    desk = client_for(app, make_user("security"))
    assert "The end-of-day sweep is late" in desk.get("/desk/").get_data(as_text=True)
    result = jobs.run_sweep(app, tokyo(1, 19, 10), only_if_missed=True)  # the scheduler's minute job
    assert result is not None and len(result.flags) == 1
    assert flag_of(session, item).status == FlagStatus.open
    board = desk.get("/desk/").get_data(as_text=True)
    assert "The end-of-day sweep is late" not in board and "last sweep" in board


def test_the_scheduler_retries_missed_sweeps_every_minute(app):
    jobs_by_id = {job.id: job for job in scheduler.build(app, blocking=False).get_jobs()}
    catch_up = jobs_by_id["sweep-catch-up"]
    assert catch_up.trigger.interval.total_seconds() == 60


def test_taking_over_an_overdue_item_keeps_the_desks_flag_open_on_the_new_holder(session, make_user, make_item):
    alice, bob = make_user(), make_user()
    item = make_item()
    first = out(session, item, alice, tokyo(1, 9), due_at=tokyo(1, 17))
    sweep.sweep(session, tokyo(1, 19), TOKYO)
    session.commit()
    new = handed_over(session, tokyo(1, 20), item, alice, bob)
    session.commit()
    flag = flag_of(session, item)
    assert flag.status == FlagStatus.open and flag.checkout_id == new.id != first.id
    assert flag.checkout.holder_id == bob.id
    # The next sweep does not flag the new check-out a second time: the flag came with it.
    assert sweep.sweep(session, tokyo(2, 19), TOKYO).flags == []


def test_a_stale_hand_over_page_is_refused_and_says_who_holds_it_now(app, session, make_user, make_item):
    alice, bob, carol = make_user(name="Alice"), make_user(name="Bob"), make_user("security", name="Carol")
    item = make_item(data_class="none")
    shown = out(session, item, alice, tokyo(1, 9), due_at=tokyo(1, 18))
    carols = client_for(app, carol)
    page = f"/items/{item.asset_tag}"
    assert f'name="checkout" value="{shown.id}"' in carols.get(page).get_data(as_text=True)
    handed_over(session, tokyo(1, 10), item, alice, bob)  # Alice gave it to Bob meanwhile
    session.commit()
    resp = post(carols, f"/items/{item.asset_tag}/handover/direct", {"to": "me", "checkout": str(shown.id)}, page=page,
                follow=True)
    assert any(category == "error" and "Bob holds it now" in text for category, text in flashes(resp))
    reread(session)
    holder = session.scalar(select(Checkout.holder_id).where(Checkout.item_id == item.id,
                                                             Checkout.returned_at.is_(None)))
    assert holder == bob.id


def test_a_sweep_while_postgresql_is_down_is_logged_and_runs_once_it_is_back(new_app, db_url, make_user, make_item,
                                                                            session, caplog):
    if not db_url.startswith("postgresql"):
        pytest.skip("a PostgreSQL server that does not answer")
    staff = make_user()
    item = make_item()
    out(session, item, staff, tokyo(1, 9), due_at=tokyo(1, 18))
    down = new_app(DATABASE_URL="postgresql+psycopg://tracker@127.0.0.1:1/tracker")  # nothing listens there
    with caplog.at_level(logging.ERROR):
        scheduler.guarded("sweep", lambda: jobs.run_sweep(down, tokyo(1, 19), only_if_missed=True))()
    assert any("the database server cannot be reached" in r.getMessage() for r in caplog.records)
    assert flag_of(session, item) is None
    back = new_app()  # the server is back: the scheduler's next minute
    result = jobs.run_sweep(back, tokyo(1, 19, 1), only_if_missed=True)
    assert result is not None and [f.item_id for f in result.flags] == [item.id]
