"""The scheduler process: the day-end sweep (and later sweeps), reminders and notification delivery.

It runs as its own process (`flask --app app scheduler`), never inside web workers. A file lock in the
instance folder keeps a second scheduler on the same machine from starting; the database keeps any
sweep, wherever it runs, from flagging or notifying anything twice.
"""

from __future__ import annotations

import fcntl
import logging
import os
from collections.abc import Callable
from datetime import time
from typing import TextIO

from apscheduler.events import EVENT_SCHEDULER_SHUTDOWN
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from flask import Flask
from sqlalchemy.exc import OperationalError

from . import clock, jobs
from .db import explain_failure

log = logging.getLogger(__name__)
SWEEP_GRACE = 6 * 3600  # a sweep missed by up to six hours still runs (once) when the process is back


class AlreadyRunning(RuntimeError):
    pass


_held: dict[int, TextIO] = {}  # the lock file each running scheduler holds, by id()


def _lock(app: Flask):
    path = os.path.join(app.instance_path, "scheduler.lock")
    os.makedirs(app.instance_path, exist_ok=True)
    fh = open(path, "w")  # noqa: SIM115 - held open for the life of the scheduler
    try:
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        fh.close()
        raise AlreadyRunning(f"another scheduler holds {path}") from None
    fh.write(str(os.getpid()))
    fh.flush()
    return fh


def sweep_times(app: Flask) -> list[time]:
    """The day end, then the later sweeps (TRACKER_LATE_SWEEPS, default 00:00) for after-hours check-outs."""
    times = [app.config["DAY_END"]]
    times += [t for t in app.config["LATE_SWEEPS"] if t not in times]
    return list(dict.fromkeys(times))


def build(app: Flask, blocking: bool) -> BlockingScheduler | BackgroundScheduler:
    tz = app.config["TIMEZONE"]
    sched = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=tz)
    defaults = {"coalesce": True, "max_instances": 1, "replace_existing": True}
    for t in sweep_times(app):
        sched.add_job(guarded("sweep", lambda: jobs.run_sweep(app, clock.now())),
                      CronTrigger(hour=t.hour, minute=t.minute, timezone=tz), id=f"sweep-{t.hour:02d}{t.minute:02d}",
                      misfire_grace_time=SWEEP_GRACE, **defaults)
    # The guarantee behind the timed sweeps: a sweep that was due and did not run (the process was down, the
    # database locked or unreachable) runs at the next minute, and again each minute until it succeeds.
    sched.add_job(guarded("sweep", lambda: jobs.run_sweep(app, clock.now(), only_if_missed=True)),
                  IntervalTrigger(minutes=1), id="sweep-catch-up", misfire_grace_time=300, **defaults)
    sched.add_job(guarded("reminders", lambda: jobs.run_reminders(app, clock.now())), IntervalTrigger(minutes=1),
                  id="reminders", misfire_grace_time=300, **defaults)
    sched.add_job(guarded("delivery", lambda: jobs.run_delivery(app, clock.now())), IntervalTrigger(seconds=30),
                  id="deliver-notifications", misfire_grace_time=300, **defaults)
    sched.add_job(guarded("label files", lambda: jobs.run_label_jobs(app)), IntervalTrigger(seconds=2),
                  id="label-jobs", misfire_grace_time=60, **defaults)
    check = app.config["AUDIT_CHECK_AT"]
    sched.add_job(guarded("audit check", lambda: jobs.run_audit_check(app, clock.now())),
                  CronTrigger(hour=check.hour, minute=check.minute, timezone=tz), id="audit-check",
                  misfire_grace_time=3600, **defaults)
    return sched


def guarded(name: str, job: Callable[[], object]) -> Callable[[], None]:
    """Run a job; when the database fails, log one clear line and let the next run try again (the process stays
    up: a restart would meet the same database)."""

    def run() -> None:
        try:
            job()
        except (OperationalError, OSError) as err:
            log.error("scheduler: the %s could not run, %s; it is tried again at its next time", name,
                      explain_failure(err))

    return run


def start(app: Flask, blocking: bool):
    """Take the lock, sweep once if a day end was missed while down, then run the jobs."""
    lock = _lock(app)
    try:
        guarded("sweep", lambda: jobs.run_sweep(app, clock.now(), only_if_missed=True))()
        sched = build(app, blocking)
        _held[id(sched)] = lock
        sched.add_listener(lambda event: _release(sched), EVENT_SCHEDULER_SHUTDOWN)
        sched.start()
    except BaseException:
        lock.close()
        raise
    return sched


def stop(sched: BaseScheduler) -> None:
    """Stop a scheduler started here and give up its lock, so another may start."""
    sched.shutdown(wait=False)
    _release(sched)


def _release(sched: BaseScheduler) -> None:
    lock = _held.pop(id(sched), None)
    if lock is not None:
        lock.close()
