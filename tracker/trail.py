"""Keeping the audit trail honest: verification, checkpoints kept outside the database, retention, SIEM shipping.

`verify` walks the chain from its start and names the first event that does not hold, and why: a content that
no longer matches its hash (edited), a missing number (deleted), a broken link to the previous event (inserted
or reordered), an event with no number at all (written around the app), or an end that does not match the
chain's head (cut off). What the database alone cannot show (the whole chain rewritten with fresh hashes, or
its end cut off together with the head) a checkpoint kept elsewhere shows: one JSON line per day with the
count and the head hash, written to a file outside the database and mailed to an address kept elsewhere.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from .audit import GENESIS, SHIPPERS, digest
from .models import AuditCheck, AuditHead, Event

log = logging.getLogger(__name__)
DAYS_PER_YEAR = 365.2425


@dataclass
class Checkpoint:
    at: str
    seq: int
    hash: str

    def line(self) -> str:
        return json.dumps({"at": self.at, "seq": self.seq, "hash": self.hash}, sort_keys=True)


@dataclass
class Result:
    ok: bool
    events: int  # how many events were checked
    head_seq: int
    head_hash: str
    problem: str = ""
    at_seq: int | None = None  # the first event that does not hold
    skipped: list[str] = field(default_factory=list)  # checkpoints older than the kept trail

    def summary(self) -> str:
        if self.ok:
            return f"OK: {self.events} events verified, head #{self.head_seq} {self.head_hash}"
        return f"BROKEN at event #{self.at_seq}: {self.problem}" if self.at_seq else f"BROKEN: {self.problem}"


_COLUMNS = (Event.seq, Event.at, Event.action, Event.actor_id, Event.item_id, Event.checkout_id,
            Event.subject_user_id, Event.source, Event.data, Event.prev_hash, Event.hash)


def verify(session: Session, checkpoints: list[Checkpoint] = ()) -> Result:
    """Walk the whole kept chain and report the first thing that does not hold. Rows, not ORM objects, in
    batches from a server-side cursor: memory stays flat however long the trail."""
    head = session.get(AuditHead, 1)

    def broken(seq: int | None, why: str, checked: int) -> Result:
        return Result(False, checked, head.seq, head.hash, why, seq)

    unnumbered = session.scalar(select(func.min(Event.id)).where(Event.seq.is_(None)))
    if unnumbered is not None:
        return broken(None, f"event id {unnumbered} has no place in the chain: it was written around the app", 0)
    seen = {cp.seq: cp for cp in checkpoints}
    expected, prev, checked = head.base_seq + 1, head.base_hash, 0
    stmt = select(*_COLUMNS).where(Event.seq.is_not(None)).order_by(Event.seq).execution_options(yield_per=2000)
    with session.execute(stmt) as rows:  # closed on every return
        for ev in rows:
            if ev.seq < expected:
                return broken(ev.seq, f"it lies before the start of the kept trail (#{head.base_seq + 1})", checked)
            if ev.seq > expected:
                return broken(expected, f"it is missing (deleted): the trail goes on at #{ev.seq}", checked)
            if ev.prev_hash != prev:
                return broken(ev.seq, f"its link to event #{ev.seq - 1} is broken (an event was inserted, removed "
                                      "or moved)", checked)
            if digest(prev, ev) != ev.hash:
                return broken(ev.seq, "its content no longer matches its hash (it was edited)", checked)
            cp = seen.get(ev.seq)
            if cp and cp.hash != ev.hash:
                return broken(ev.seq, f"its hash differs from the checkpoint of {cp.at}: the trail was rewritten",
                              checked)
            prev, expected, checked = ev.hash, expected + 1, checked + 1
    last = expected - 1
    if last != head.seq or prev != head.hash:
        return broken(last + 1 if last < head.seq else last,
                      f"the trail ends at #{last} but its head says #{head.seq}: events were cut off the end "
                      "or written around the app", checked)
    skipped = []
    for cp in sorted(checkpoints, key=lambda c: c.seq):
        if cp.seq > last:
            return broken(None, f"the checkpoint of {cp.at} saw event #{cp.seq}, but the trail ends at #{last}: "
                                "events were cut off the end", checked)
        if cp.seq <= head.base_seq:
            skipped.append(cp.at)
    return Result(True, checked, head.seq, head.hash, skipped=skipped)


def record_check(session: Session, now: datetime, result: Result) -> AuditCheck:
    """Keep the result where the desk sees it (the newest one counts)."""
    check = AuditCheck(at=now, ok=result.ok, events=result.events, head_seq=result.head_seq,
                       head_hash=result.head_hash, problem="" if result.ok else result.summary())
    session.add(check)
    return check


def last_check(session: Session) -> AuditCheck | None:
    return session.scalars(select(AuditCheck).order_by(AuditCheck.at.desc(), AuditCheck.id.desc()).limit(1)).first()


# --- checkpoints outside the database -------------------------------------------------------------------------


def head_checkpoint(session: Session, now: datetime) -> Checkpoint:
    head = session.get(AuditHead, 1)
    return Checkpoint(at=now.isoformat(timespec="seconds"), seq=head.seq, hash=head.hash)


def append_checkpoint(path: str, cp: Checkpoint) -> None:
    """One line per checkpoint, appended and synced: the file only grows."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as out:
        out.write(cp.line() + "\n")
        out.flush()
        os.fsync(out.fileno())


def read_checkpoints(path: str) -> list[Checkpoint]:
    """The checkpoints in a file; a line that is not one is an error naming the line."""
    found = []
    with open(path, encoding="utf-8") as src:
        for n, line in enumerate(src, 1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
                found.append(Checkpoint(at=str(data["at"]), seq=int(data["seq"]), hash=str(data["hash"])))
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{path}, line {n}: not a checkpoint ({err})") from None
    return found


# --- retention ---------------------------------------------------------------------------------------------------


def purge(session: Session, now: datetime, years: float) -> int:
    """Remove the events older than the retention period (never younger ones), keeping the chain verifiable:
    the last removed event's number and hash become the kept trail's start. Returns how many were removed."""
    if years < 1:
        raise ValueError("the retention period is at least one year")
    from datetime import timedelta

    horizon = now - timedelta(days=years * DAYS_PER_YEAR)
    head = session.execute(select(AuditHead).where(AuditHead.id == 1).with_for_update()).scalar_one()
    last = session.execute(select(Event.seq, Event.hash).where(Event.at < horizon).order_by(Event.seq.desc())
                           .limit(1)).first()
    if last is None:
        return 0
    # Events are numbered in time order, so everything up to `last` is older than the horizon too.
    removed = session.execute(delete(Event).where(Event.seq <= last.seq)).rowcount
    head.base_seq, head.base_hash = last.seq, last.hash
    return removed


# --- shipping to a SIEM as events are committed -----------------------------------------------------------------


def as_json(row: dict) -> str:
    """One event as a JSON line for a SIEM, with the chain fields to check it against the trail."""
    data = json.loads(row["data"]) if row.get("data") else {}
    return json.dumps({
        "seq": row["seq"], "at": row["at"].isoformat(), "action": row["action"], "actor_id": row["actor_id"],
        "item_id": row["item_id"], "checkout_id": row["checkout_id"], "subject_user_id": row["subject_user_id"],
        "source": row["source"], "data": data, "prev_hash": row["prev_hash"], "hash": row["hash"],
        "app": "tracker",
    }, ensure_ascii=False, sort_keys=True)


class FileShipper:
    """Appends each committed event to a JSON-lines file (what Filebeat, Elastic Agent or the Azure Monitor
    agent tail)."""

    def __init__(self, path: str):
        self.path = path

    def __call__(self, rows: list[dict]) -> None:
        try:
            with open(self.path, "a", encoding="utf-8") as out:
                out.write("".join(as_json(r) + "\n" for r in rows))
        except OSError:
            log.exception("audit events %s-%s could not be written to %s", rows[0]["seq"], rows[-1]["seq"],
                          self.path)


class SyslogShipper:
    """Sends each committed event as one syslog message (JSON) to `udp://host:port`, `tcp://host:port` or a
    local socket path such as /dev/log."""

    def __init__(self, target: str):
        parts = urlsplit(target)
        if parts.scheme in ("udp", "tcp"):
            address = (parts.hostname or "127.0.0.1", parts.port or 514)
            kind = socket.SOCK_DGRAM if parts.scheme == "udp" else socket.SOCK_STREAM
            self.handler = logging.handlers.SysLogHandler(address=address, socktype=kind)
        else:
            self.handler = logging.handlers.SysLogHandler(address=target)
        self.handler.ident = "tracker-audit: "
        self.handler.append_nul = False

    def close(self) -> None:
        self.handler.close()

    def __call__(self, rows: list[dict]) -> None:
        for row in rows:
            record = logging.LogRecord("tracker.audit", logging.INFO, __file__, 0, as_json(row), None, None)
            self.handler.emit(record)  # SysLogHandler reports its own errors through handleError


def init_app(app) -> None:
    """Start shipping committed events where the configuration says (TRACKER_AUDIT_SIEM_FILE/_SYSLOG)."""
    shippers = []
    if app.config.get("AUDIT_SIEM_FILE"):
        shippers.append(FileShipper(app.config["AUDIT_SIEM_FILE"]))
    if app.config.get("AUDIT_SYSLOG"):
        shippers.append(SyslogShipper(app.config["AUDIT_SYSLOG"]))
    app.extensions["tracker.audit_shippers"] = shippers
    for key in ("tracker.sessionmaker", "tracker.read_sessionmaker"):
        app.extensions[key].kw.setdefault("info", {})[SHIPPERS] = shippers


__all__ = ["GENESIS", "verify", "purge", "Checkpoint", "Result"]
