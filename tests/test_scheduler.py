"""The scheduler process and the sweep command: job set-up, the single-instance lock, catch-up, the CLI."""

from __future__ import annotations

from datetime import date, time

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import select

from tests.helpers import tokyo
from tracker import clock, scheduler
from tracker.custody import operations as custody
from tracker.models import Flag, Sweep


def stop(sched) -> None:
    scheduler.stop(sched)  # gives up the lease too, so the next scheduler takes over at once


# --- the jobs ----------------------------------------------------------------------------------------------------


def test_build_creates_the_sweeps_with_explicit_ids_coalescing_and_hours_of_grace(app):
    sched = scheduler.build(app, blocking=False)
    jobs = {job.id: job for job in sched.get_jobs()}
    assert set(jobs) == {"sweep-1900", "sweep-0000", "sweep-catch-up", "curfew-sweep", "reminders",
                         "deliver-notifications", "audit-check", "label-jobs", "handover-expiry",
                         "escalation", "request-expiry", "count-digest", "custody-confirmations"}  # and "lease"
    for job_id in ("sweep-1900", "sweep-0000"):
        job = jobs[job_id]
        assert job.coalesce is True and job.max_instances == 1
        assert job.misfire_grace_time >= 3600
        assert isinstance(job.trigger, CronTrigger)
        assert str(job.trigger.timezone) == "Asia/Tokyo"
    assert jobs["sweep-1900"].trigger.get_next_fire_time(None, tokyo(1, 10)) == tokyo(1, 19)
    assert jobs["sweep-0000"].trigger.get_next_fire_time(None, tokyo(1, 10)) == tokyo(2, 0)
    for job in jobs.values():
        assert job.coalesce is True and job.max_instances == 1


def test_sweep_times_follow_the_settings(app, new_app):
    assert scheduler.sweep_times(app) == [time(19, 0), time(0, 0)]  # the midnight late sweep is the default
    app = new_app(DAY_END=time(18, 30), LATE_SWEEPS=[time(0, 0), time(2, 30), time(18, 30)])
    assert scheduler.sweep_times(app) == [time(18, 30), time(0, 0), time(2, 30)]
    ids = {job.id for job in scheduler.build(app, blocking=False).get_jobs()}
    assert {"sweep-1830", "sweep-0000", "sweep-0230"} <= ids
    app.config["LATE_SWEEPS"] = []
    assert scheduler.sweep_times(app) == [time(18, 30)]


# --- the process -------------------------------------------------------------------------------------------------


@pytest.mark.postgres  # the lease's conditional updates on both databases
def test_of_two_schedulers_on_one_database_exactly_one_runs_jobs_and_the_other_takes_over(
        app, new_app, session, make_user, make_item, monkeypatch):
    alice, item = make_user(), make_item()
    custody.check_out(session, tokyo(1, 10), item=item, holder=alice, actor=alice, due_at=tokyo(1, 18))
    session.commit()
    other = new_app(INSTANCE_PATH=str(app.instance_path) + "-host-b")  # another host: its own instance folder
    moment = [tokyo(1, 19)]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    first, second = scheduler.Leader(app), scheduler.Leader(other)
    assert first.renew() is True and second.renew() is False
    scheds = [scheduler.build(app, blocking=False, leader=first), scheduler.build(other, blocking=False, leader=second)]
    for sched in scheds:  # both fire their 19:00 sweep and every other job
        for job in sched.get_jobs():
            if job.id != "sweep-0000":
                job.func()
    session.rollback()
    assert [(s.business_date, s.runs) for s in session.scalars(select(Sweep))] == [(date(2026, 6, 1), 1)]
    assert len(list(session.scalars(select(Flag)))) == 1

    # The holder stops: the other takes over at its next renewal; the first, back, stands by.
    first.release()
    assert second.renew() is True and first.renew() is False
    # The new holder dies without giving up the lease: it is taken over once it has expired, not before.
    moment[0] += scheduler.LEASE_TTL / 2
    assert first.renew() is False
    moment[0] += scheduler.LEASE_TTL
    assert first.renew() is True and second.renew() is False
    moment[0] = tokyo(2, 0)
    for sched in reversed(scheds):
        for job in sched.get_jobs():
            if job.id != "sweep-1900":
                job.func()
    session.rollback()
    assert [(s.business_date, s.runs) for s in session.scalars(select(Sweep))] == [(date(2026, 6, 1), 2)]


def test_a_started_scheduler_holds_the_lease_and_gives_it_up_when_stopped(app, new_app):
    sched = scheduler.start(app, blocking=False)
    standby = scheduler.start(new_app(), blocking=False)
    try:
        assert sched.running and standby.running
        assert scheduler.leader_of(sched).held and not scheduler.leader_of(standby).held
        stop(sched)
        assert scheduler.leader_of(standby).renew() is True
    finally:
        stop(standby)


@pytest.mark.postgres  # the catch-up sweep through the app's own sessions
def test_start_after_downtime_sweeps_the_missed_day_end_once(app, session, make_user, make_item, monkeypatch):
    alice, item = make_user(), make_item()
    co = custody.check_out(session, tokyo(1, 10), item=item, holder=alice, actor=alice, due_at=tokyo(1, 19))
    session.commit()
    # Down from 18:00 until 02:00: neither the 19:00 nor the 00:00 sweep ran.
    monkeypatch.setattr(clock, "now", lambda: tokyo(2, 2))
    stop(scheduler.start(app, blocking=False))
    monkeypatch.setattr(clock, "now", lambda: tokyo(2, 2, 5))
    stop(scheduler.start(app, blocking=False))  # restarted again: nothing more
    session.rollback()
    flags = list(session.scalars(select(Flag)))
    assert [f.checkout_id for f in flags] == [co.id]
    assert [(s.business_date, s.runs) for s in session.scalars(select(Sweep))] == [(date(2026, 6, 1), 1)]


# --- the command line --------------------------------------------------------------------------------------------


@pytest.mark.postgres  # the sweep through the command's own session
def test_sweep_command_prints_the_count_and_the_flags(runner, session, make_user, make_item):
    alice, bob = make_user(), make_user()
    a, b, c = make_item(), make_item(), make_item()
    for item, holder, due in ((a, alice, tokyo(1, 18)), (b, bob, tokyo(1, 19)), (c, bob, tokyo(1, 20))):
        custody.check_out(session, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=due)
    session.commit()

    result = runner.invoke(args=["sweep", "--now", "2026-06-01T19:00:00+09:00"])
    assert result.exit_code == 0, result.output
    assert "Sweep for 2026-06-01: 2 check-out(s) flagged." in result.output
    assert a.asset_tag in result.output and alice.email in result.output
    assert b.asset_tag in result.output and c.asset_tag not in result.output

    again = runner.invoke(args=["sweep", "--now", "2026-06-01T10:05:00Z"])
    assert again.exit_code == 0, again.output
    assert "Sweep for 2026-06-01: 0 check-out(s) flagged." in again.output
    session.rollback()
    assert len(list(session.scalars(select(Flag)))) == 2


@pytest.mark.postgres  # nothing written on a refused time
def test_sweep_command_refuses_a_time_it_cannot_place(runner, session):
    for value, message in (("2026-06-01T19:00:00", "UTC offset"), ("tomorrow evening", "ISO 8601"),
                           ("2026-13-01T19:00:00+09:00", "ISO 8601")):
        result = runner.invoke(args=["sweep", "--now", value])
        assert result.exit_code != 0, value
        assert message in result.output and "--now" in result.output, result.output
        assert "Traceback" not in result.output
    session.rollback()
    assert list(session.scalars(select(Sweep))) == []  # nothing ran

    for command in (["scheduler"], ["sweep"]):
        result = runner.invoke(args=[*command, "--help"])
        assert result.exit_code == 0, result.output
        assert "Usage:" in result.output
    assert "--now" in runner.invoke(args=["sweep", "--help"]).output
    top = runner.invoke(args=["--help"]).output
    assert "scheduler" in top and "sweep" in top
