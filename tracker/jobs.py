"""Entry points of the periodic jobs: one transaction each, shared by the scheduler and the CLI."""

from __future__ import annotations

import logging
import os
import time
from datetime import datetime, timedelta

from flask import Flask
from sqlalchemy import select

from . import clock, trail
from .custody import approvals, confirmations, handover, policy
from .desk import escalation, sweep
from .labels import jobs as label_jobs
from .models import Site
from .notify import delivery, outbox, reminders
from .stocktake import schedule

log = logging.getLogger(__name__)


def _session(app: Flask):
    return app.extensions["tracker.sessionmaker"]()


def run_sweep(app: Flask, now: datetime, only_if_missed: bool = False,
              site_id: int | None = None) -> sweep.SweepResult | None:
    """Sweep one site (None: the main office) and queue the digests in one transaction, then try to deliver them
    (failures are kept for retry)."""
    with app.app_context():
        result = _sweep_site(app, now, only_if_missed, site_id)
        run_delivery(app, now)
        return result


def _sweep_site(app: Flask, now: datetime, only_if_missed: bool, site_id: int | None) -> sweep.SweepResult | None:
    with _session(app) as s:
        site = s.get(Site, site_id) if site_id is not None else None
        if site_id is not None and site is None:
            return None  # removed meanwhile: nothing of it to sweep
        pol = policy.for_site(app.config, site)
        started = time.monotonic()
        since = site.created_at if site is not None else None
        result = sweep.sweep_if_missed(s, now, pol, since) if only_if_missed else sweep.sweep(s, now, pol)
        if result is not None:
            outbox.queue_overdue(s, now, [f.checkout for f in result.flags], app.config)
            sweep.record_duration(s, result, time.monotonic() - started)
        s.commit()
        return result


def run_sweeps_if_missed(app: Flask, now: datetime) -> list[sweep.SweepResult]:
    """Every office's sweep that was due and has not run since (the main office's, then each site's on its own
    clock), each in its own transaction; then deliver. The scheduler runs it every minute, so a site's day end is
    swept within a minute, and a site added meanwhile is swept from its first day end on."""
    with app.app_context():
        with _session(app) as s:
            site_ids = list(s.scalars(select(Site.id).order_by(Site.id)))
        results = []
        for site_id in (None, *site_ids):
            try:
                result = _sweep_site(app, now, True, site_id)
            except (LookupError, ValueError):  # a site whose zone or times cannot be read: the others still run
                if site_id is None:
                    raise
                log.exception("sweep: site %s could not be swept; the other sites were", site_id)
                continue
            if result is not None:
                results.append(result)
        run_delivery(app, now)
        return results


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

