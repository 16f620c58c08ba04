"""Label jobs: asked for on a web page, kept in the database, made by the scheduler process (never a web worker),
so any host can report their progress and hand out the file, and a worker restart loses nothing.

A job whose maker stopped reporting for STALE is shown as failed with a retry; partial files are never kept.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session, sessionmaker

from ..models import LabelJob
from . import layouts, render, service

log = logging.getLogger(__name__)
STALE = timedelta(minutes=2)  # a running job that has not reported for this long has lost its maker
KEEP = timedelta(days=1)  # finished jobs and their files are kept this long
REPORT_EVERY = timedelta(seconds=1)


def queue(session: Session, now: datetime, *, owner_id: int, fmt: str, ids: list[int], layout, start_at: int,
          opts: service.LabelOptions, filename: str, mimetype: str) -> LabelJob:
    """Ask for a label file; the scheduler makes it. Returns the job, whose public id the owner polls."""
    job = LabelJob(public_id=secrets.token_urlsafe(16), owner_id=owner_id, status="queued", fmt=fmt,
                   total=len(ids), done=0, params=json.dumps(params_for(ids, layout, start_at, opts)),
                   filename=filename, mimetype=mimetype, created_at=now)
    session.add(job)
    session.flush()
    return job


def find(session: Session, public_id: str, owner_id: int) -> LabelJob | None:
    """The owner's job, or None (another admin's job is not theirs to see)."""
    return session.scalar(select(LabelJob).where(LabelJob.public_id == public_id, LabelJob.owner_id == owner_id))


def state(job: LabelJob, now: datetime) -> dict:
    """What the page polling the job is told."""
    stale = job.status == "running" and (job.heartbeat_at or job.started_at or now) < now - STALE
    failed = job.status == "failed" or stale
    return {"done": job.done, "total": job.total, "finished": job.status == "done",
            "failed": failed, "error": (job.error or "") if job.status == "failed" else ("stalled" if stale else None),
            "waiting": job.status == "queued"}


def retry(session: Session, job: LabelJob) -> None:
    """Queue a failed (or stalled) job again."""
    job.status, job.done, job.error, job.started_at, job.heartbeat_at = "queued", 0, None, None, None
    job.output = None
    session.flush()


def run_next(make_session: sessionmaker, make_read_session: sessionmaker, clock: Callable[[], datetime],
             printer_model: str) -> bool:
    """Make the oldest queued job, if any (or one whose maker died); False when there was nothing to do."""
    now = clock()
    with make_session() as s:
        s.execute(delete(LabelJob).where(LabelJob.finished_at < now - KEEP))  # made or failed a day ago
        candidate = s.scalar(select(LabelJob.id).where(
            (LabelJob.status == "queued")
            | ((LabelJob.status == "running") & (LabelJob.heartbeat_at < now - STALE))).order_by(LabelJob.id).limit(1))
        claimed = candidate is not None and s.execute(
            update(LabelJob).where(LabelJob.id == candidate, LabelJob.status.in_(["queued", "running"]))
            .values(status="running", started_at=now, heartbeat_at=now, done=0)
            .execution_options(synchronize_session=False)).rowcount == 1
        s.commit()
    if not claimed:
        return False
    with make_session() as s:
        job = s.get(LabelJob, candidate)
        fmt, params = job.fmt, json.loads(job.params)
        s.commit()
    last = [now]

    def progress(n: int) -> None:
        moment = clock()
        if moment - last[0] >= REPORT_EVERY:
            last[0] = moment
            _report(make_session, candidate, done=n, heartbeat_at=moment)

    fd, path = tempfile.mkstemp(prefix="labels-")
    os.close(fd)
    try:
        with make_read_session() as s:  # rendering reads; the database stays free for everyone else
            make_file(s, fmt, params, path, progress, printer_model)
        with open(path, "rb") as fh:
            _report(make_session, candidate, printed=params["ids"], status="done", output=fh.read(),
                    done=len(params["ids"]), heartbeat_at=clock(), finished_at=clock())
    except Exception as exc:  # shown to the owner, who can retry; logged in full
        log.exception("label job %s failed", candidate)
        _report(make_session, candidate, status="failed", error=str(exc)[:200], finished_at=clock())
    finally:
        os.remove(path)
    return True


def _report(make_session: sessionmaker, job_id: int, printed: list[int] | None = None, **values) -> None:
    """Update the job; a finished file also marks its labels as printed, in the same transaction."""
    with make_session() as s:
        if printed:
            service.mark_printed(s, values["finished_at"], printed)
        s.execute(update(LabelJob).where(LabelJob.id == job_id).values(**values)
                  .execution_options(synchronize_session=False))
        s.commit()


def params_for(ids: list[int], layout, start_at: int, opts: service.LabelOptions) -> dict:
    """Everything a label file is made from, as JSON-ready values (kept with the job)."""
    return {"ids": ids, "layout": dataclasses.asdict(layout), "start_at": start_at, "opts": dataclasses.asdict(opts)}


def make_file(session: Session, fmt: str, params: dict, path: str, progress, printer_model: str) -> None:
    """Write the label file to `path`: a PDF (zipped PDFs of 1,000 labels past that), a zip of PNGs, or QL."""
    layout = (layouts.Printer if params["layout"]["kind"] == "printer" else layouts.Sheet)(**params["layout"])
    opts = service.LabelOptions(**params["opts"])
    labels = service.label_data(session, service.ids_stmt(params["ids"]), opts)
    if fmt == "pdf" and len(params["ids"]) > service.CHUNK:
        service.write_pdf_zip(labels, layout, path, start_at=params["start_at"], progress=progress)
        return
    with open(path, "wb") as fh:
        if fmt == "pdf":
            render.write_pdf(labels, layout, fh, start_at=params["start_at"], progress=progress)
        elif fmt == "zip":
            render.write_png_zip(labels, layout, fh, progress=progress)
        elif fmt == "ql":
            fh.write(render.ql_raster(list(labels), layout, printer_model))
