"""Entry points of the periodic jobs: one transaction each, shared by the scheduler and the CLI."""

from __future__ import annotations

import os
import time
from datetime import datetime, timedelta

from flask import Flask

from . import clock, trail
from .custody import approvals, confirmations, handover, policy
from .desk import escalation, sweep
from .labels import jobs as label_jobs
from .notify import delivery, outbox, reminders
from .stocktake import schedule


def _session(app: Flask):
    return app.extensions["tracker.sessionmaker"]()


def run_sweep(app: Flask, now: datetime, only_if_missed: bool = False) -> sweep.SweepResult | None:
    """Sweep and queue the digests in one transaction, then try to deliver them (failures are kept for retry)."""
    with app.app_context():
        pol = policy.from_config(app.config)
        with _session(app) as s:
            started = time.monotonic()
            result = sweep.sweep_if_missed(s, now, pol) if only_if_missed else sweep.sweep(s, now, pol)
            if result is not None:
                outbox.queue_overdue(s, now, [f.checkout for f in result.flags], app.config)
                sweep.record_duration(s, result, time.monotonic() - started)
            s.commit()
        run_delivery(app, now)
        return result


def run_escalation(app: Flask, now: datetime) -> escalation.EscalationResult:
    """Escalate the flags nobody acknowledged in time and queue the messages in one transaction, then deliver."""
    with app.app_context():
        with _session(app) as s:
            result = escalation.escalate(s, now, policy.from_config(app.config))
            outbox.queue_escalations(s, now, result, app.config)
            s.commit()
        if result.steps:
            run_delivery(app, now)
        return result


def run_curfew_sweep(app: Flask, now: datetime) -> sweep.SweepResult:
    """Flag the check-outs past a rule's curfew or maximum duration and queue their notices, in one transaction;
    deliver only when something was flagged (it runs every minute)."""
    with app.app_context():
        with _session(app) as s:
            result = sweep.sweep_strict(s, now, policy.from_config(app.config))
            if result.flag_ids:
                outbox.queue_overdue(s, now, [f.checkout for f in result.flags], app.config, at_curfew=True)
            s.commit()
        if result.flag_ids:
            run_delivery(app, now)
        return result


def run_reminders(app: Flask, now: datetime) -> int:
    with app.app_context():
        with _session(app) as s:
            due = reminders.claim_reminders(s, now, timedelta(minutes=app.config["REMINDER_MINUTES"]))
            outbox.queue_reminders(s, now, due, app.config)
            s.commit()
        run_delivery(app, now)
        return len(due)


def run_count_digest(app: Flask, now: datetime) -> int:
    """Queue the desk's daily list of items due for a count, once per site and local day; how many were queued."""
    with app.app_context():
        with _session(app) as s:
            digests = schedule.claim_digests(s, now, policy.from_config(app.config))
            outbox.queue_count_digests(s, now, digests, app.config)
            s.commit()
        if digests:
            run_delivery(app, now)
        return len(digests)


def run_custody_confirmations(app: Flask, now: datetime) -> tuple[int, int]:
    """Ask the holders due a custody confirmation (once per period) and tell the desk of the asks unanswered past
    the grace period (once each), in one transaction; (asked, escalated)."""
    with app.app_context():
        with _session(app) as s:
            asked = confirmations.claim_prompts(s, now, policy.from_config(app.config))
            outbox.queue_custody_prompts(s, now, asked, app.config)
            escalated = confirmations.claim_escalations(s, now)
            outbox.queue_custody_unconfirmed(s, now, escalated, app.config)
            s.commit()
        if asked or escalated:
            run_delivery(app, now)
        return len(asked), len(escalated)


def run_handover_expiry(app: Flask, now: datetime) -> int:
    """Close the hand-over offers nobody decided by the end of their day; how many lapsed."""
    with app.app_context():
        with _session(app) as s:
            lapsed = handover.expire(s, now, policy.from_config(app.config))
            s.commit()
        if lapsed:  # each giver is told their offer lapsed
            run_delivery(app, now)
        return len(lapsed)


def run_request_expiry(app: Flask, now: datetime) -> int:
    """Take-out requests unused by the end of their day expire (each once, with its event and the requester told)."""
    with app.app_context():
        with _session(app) as s:
            expired = approvals.expire(s, now)
            s.commit()
        if expired:
            run_delivery(app, now)
        return len(expired)


def run_label_jobs(app: Flask) -> int:
    """Make the label files asked for, oldest first; how many were made."""
    made = 0
    with app.app_context():
        while label_jobs.run_next(app.extensions["tracker.sessionmaker"], app.extensions["tracker.read_sessionmaker"],
                                  clock.now, app.config["LABEL_PRINTER_MODEL"]):
            made += 1
    return made


def run_delivery(app: Flask, now: datetime) -> tuple[int, int]:
    with app.app_context():
        return delivery.deliver(app.extensions["tracker.sessionmaker"], now, app.config)


def run_audit_check(app: Flask, now: datetime, checkpoint_file: str | None = None) -> trail.Result:
    """Verify the whole trail against the checkpoints kept so far, keep the result for the desk, append today's
    checkpoint to the file outside the database and queue it to the address kept elsewhere."""
    path = checkpoint_file or app.config["AUDIT_CHECKPOINT_FILE"]
    with app.app_context():
        with app.extensions["tracker.read_sessionmaker"]() as s:
            known = trail.read_checkpoints(path) if os.path.exists(path) else []
            result = trail.verify(s, known)
        with _session(app) as s:
            trail.record_check(s, now, result)
            cp = trail.head_checkpoint(s, now)
            if app.config.get("AUDIT_CHECKPOINT_MAIL"):
                outbox.queue_checkpoint(s, now, app.config["AUDIT_CHECKPOINT_MAIL"], cp.line(), result.ok,
                                        result.summary())
            s.commit()
        if result.ok:
            trail.append_checkpoint(path, cp)  # only a chain that verified becomes a reference
        run_delivery(app, now)
        return result

