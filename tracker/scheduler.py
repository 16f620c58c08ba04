"""The scheduler process: the day-end sweep (and later sweeps) of the main office and of every site, the curfew
sweep, reminders, escalation of unacknowledged flags, notification delivery, label files and the audit check.

It runs as its own process (`flask --app app scheduler`), never inside web workers. Any number may be started, one
per host: a lease in the database (tracker/ops/lease.py) lets exactly one of them run the jobs; the others stand by,
trying every RENEW_EVERY, and take over within LEASE_TTL once the holder stops or dies. The database also keeps any
sweep, wherever it runs, from flagging or notifying anything twice.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import time, timedelta
from time import monotonic

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
from .ops import lease

log = logging.getLogger(__name__)
SWEEP_GRACE = 6 * 3600  # a sweep missed by up to six hours still runs (once) when the process is back
LEASE_NAME = "scheduler"
LEASE_TTL = timedelta(seconds=30)  # a holder that stopped renewing is taken over after this long
RENEW_EVERY = timedelta(seconds=10)
ESCALATE_EVERY_MINUTES = 5  # flags escalate after whole hours: a few minutes late is soon enough


class Leader:
    """This process's claim on the scheduler lease; `held` says whether its jobs may run."""

    def __init__(self, app: Flask):
        self.app = app
        self.holder = f"{socket.gethostname()[:120]}:{os.getpid()}:{secrets.token_hex(4)}"
        self._held = False
        self._until = 0.0  # monotonic time after which a lease not renewed since may belong to another

    @property
    def held(self) -> bool:
        """Held and renewed recently enough: a process that was paused past its lease runs nothing until it has
        renewed (another may have taken over meanwhile)."""
        return self._held and monotonic() < self._until

    def renew(self) -> bool:
        """Take or renew the lease; on a database failure this process stops running jobs until it can renew."""
        try:
            with self.app.extensions["tracker.sessionmaker"]() as s:
                held = lease.take(s, clock.now(), LEASE_NAME, self.holder, LEASE_TTL)
                s.commit()
        except (OperationalError, OSError) as err:
            log.error("scheduler: the lease could not be renewed, %s; jobs wait until it can", explain_failure(err))
            held = False
        if held != self._held:
            log.warning("scheduler %s: %s", self.holder, "holds the lease and runs the jobs" if held
                        else "does not hold the lease; standing by")
        self._held = held
        if held:
            self._until = monotonic() + (LEASE_TTL - RENEW_EVERY).total_seconds()
        return held

    def release(self) -> None:
        """Give the lease up if this process holds it (asked even when not sure: a renewal may have been cut short)."""
        self._held = False
        try:
            with self.app.extensions["tracker.sessionmaker"]() as s:
                lease.give_up(s, clock.now(), LEASE_NAME, self.holder)
                s.commit()
        except (OperationalError, OSError) as err:  # it expires by itself
            log.error("scheduler: the lease could not be given up, %s", explain_failure(err))


_leaders: dict[int, Leader] = {}  # the lease of each running scheduler, by id()


def sweep_times(app: Flask) -> list[time]:
    """The day end, then the later sweeps (TRACKER_LATE_SWEEPS, default 00:00) for after-hours check-outs."""
    times = [app.config["DAY_END"]]
    times += [t for t in app.config["LATE_SWEEPS"] if t not in times]
    return list(dict.fromkeys(times))


def build(app: Flask, blocking: bool, leader: Leader | None = None) -> BlockingScheduler | BackgroundScheduler:
    """The jobs; with a `leader`, each runs only while it holds the lease, and a job renews the lease."""
    tz = app.config["TIMEZONE"]

    def led(name: str, job: Callable[[], object]) -> Callable[[], None]:
        return guarded(name, job, leader)

    sched = (BlockingScheduler if blocking else BackgroundScheduler)(timezone=tz)
    defaults = {"coalesce": True, "max_instances": 1, "replace_existing": True}
    for t in sweep_times(app):
        sched.add_job(led("sweep", lambda: jobs.run_sweep(app, clock.now())),
                      CronTrigger(hour=t.hour, minute=t.minute, timezone=tz), id=f"sweep-{t.hour:02d}{t.minute:02d}",
                      misfire_grace_time=SWEEP_GRACE, **defaults)
    # The guarantee behind the timed sweeps: a sweep that was due and did not run (the process was down, the
    # database locked or unreachable) runs at the next minute, and again each minute until it succeeds. It also
    # sweeps every site at its own day end and later sweeps (sites are read each minute: a new one needs no restart).
    sched.add_job(led("sweep", lambda: jobs.run_sweeps_if_missed(app, clock.now())),
                  IntervalTrigger(minutes=1), id="sweep-catch-up", misfire_grace_time=300, **defaults)
    # Check-outs whose rule caps the due time (a curfew, a maximum duration) are flagged the minute they are late.
    sched.add_job(led("curfew sweep", lambda: jobs.run_curfew_sweep(app, clock.now())), IntervalTrigger(minutes=1),
                  id="curfew-sweep", misfire_grace_time=300, **defaults)
    sched.add_job(led("reminders", lambda: jobs.run_reminders(app, clock.now())), IntervalTrigger(minutes=1),
                  id="reminders", misfire_grace_time=300, **defaults)
    # Offers lapse at the end of their local day; accepting one after it is refused anyway, this records it.
    sched.add_job(led("hand-over expiry", lambda: jobs.run_handover_expiry(app, clock.now())),
                  IntervalTrigger(minutes=5), id="handover-expiry", misfire_grace_time=300, **defaults)
    sched.add_job(led("escalation", lambda: jobs.run_escalation(app, clock.now())),
                  IntervalTrigger(minutes=ESCALATE_EVERY_MINUTES), id="escalation", misfire_grace_time=300, **defaults)
    # Stock-take reminders: the desk's daily digest of counts due, and "I still have it" asks and escalations.
    sched.add_job(led("count digest", lambda: jobs.run_count_digest(app, clock.now())), IntervalTrigger(minutes=15),
                  id="count-digest", misfire_grace_time=300, **defaults)
    sched.add_job(led("custody confirmations", lambda: jobs.run_custody_confirmations(app, clock.now())),
                  IntervalTrigger(minutes=15), id="custody-confirmations", misfire_grace_time=300, **defaults)
    sched.add_job(led("request expiry", lambda: jobs.run_request_expiry(app, clock.now())), IntervalTrigger(minutes=1),
                  id="request-expiry", misfire_grace_time=300, **defaults)
    sched.add_job(led("delivery", lambda: jobs.run_delivery(app, clock.now())), IntervalTrigger(seconds=30),
                  id="deliver-notifications", misfire_grace_time=300, **defaults)
    sched.add_job(led("label files", lambda: jobs.run_label_jobs(app)), IntervalTrigger(seconds=2),
                  id="label-jobs", misfire_grace_time=60, **defaults)
    check = app.config["AUDIT_CHECK_AT"]
    sched.add_job(led("audit check", lambda: jobs.run_audit_check(app, clock.now())),
                  CronTrigger(hour=check.hour, minute=check.minute, timezone=tz), id="audit-check",
                  misfire_grace_time=3600, **defaults)
    if leader is not None:
        sched.add_job(leader.renew, IntervalTrigger(seconds=RENEW_EVERY.total_seconds()), id="lease",
                      misfire_grace_time=5, **defaults)
    return sched


def guarded(name: str, job: Callable[[], object], leader: Leader | None = None) -> Callable[[], None]:
    """Run a job; when the database fails, log one clear line and let the next run try again (the process stays
    up: a restart would meet the same database)."""

    def run() -> None:
        if leader is not None and not leader.held:
            return
        try:
            job()
        except (OperationalError, OSError) as err:
            log.error("scheduler: the %s could not run, %s; it is tried again at its next time", name,
                      explain_failure(err))

    return run


def start(app: Flask, blocking: bool):
    """Claim the lease (or stand by), sweep once if a day end was missed while no scheduler ran, then run the jobs."""
    leader = Leader(app)
    sched = None
    try:
        if leader.renew():
            guarded("sweep", lambda: jobs.run_sweeps_if_missed(app, clock.now()))()
        sched = build(app, blocking, leader)
        _leaders[id(sched)] = leader
        sched.add_listener(lambda event: _release(sched), EVENT_SCHEDULER_SHUTDOWN)
        sched.start()
    except BaseException:  # Ctrl+C or SIGTERM at any point: give the lease up on the way out
        if sched is not None:
            _leaders.pop(id(sched), None)
        leader.release()
        raise
    if blocking:  # shut down from a job or another thread
        _release(sched)
    return sched


def leader_of(sched: BaseScheduler) -> Leader | None:
    return _leaders.get(id(sched))


def stop(sched: BaseScheduler) -> None:
    """Stop a scheduler started here and give up its lease, so another may take over at once."""
    sched.shutdown(wait=False)
    _release(sched)


def _release(sched: BaseScheduler) -> None:
    leader = _leaders.pop(id(sched), None)
    if leader is not None:
        leader.release()
