"""The one way audit events are written: appended to a hash chain, in the caller's transaction.

Each event gets the next sequence number and `hash = SHA-256(previous hash + canonical content)`. Writers take
the number from the one-row `audit_head` table, locked until their transaction ends (SELECT ... FOR UPDATE on
PostgreSQL; SQLite writes one transaction at a time), so concurrent workers never fork the chain or reuse a
number, and an event commits with its change or not at all. Events that commit are also handed to the
shippers (a SIEM file or syslog: tracker.trail) after the commit.
"""

from __future__ import annotations

import functools
import hashlib
import json
from datetime import UTC, datetime

from blinker import Namespace
from sqlalchemy import bindparam, select, update
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .models import AuditHead, Event, Item, User

GENESIS = "0" * 64
VERSION = 1  # of the canonical form; a new form would get a new number and keep verifying the old one
_PENDING = "tracker.audit.pending"
_signals = Namespace()
# Sent with (session, rows=[...]) as events are chained, inside the writer's transaction, when any of them is of an
# action someone listens to (`listen_to`): a feature that reacts to events (the event webhooks of tracker.notify)
# queues its work there, so it commits with the events or not at all.
events_chained = _signals.signal("audit-chained")


def record(
    session: Session,
    now: datetime,
    action: str,
    *,
    actor: User | None = None,
    item: Item | None = None,
    checkout=None,
    subject: User | None = None,
    source: str | None = None,
    **data,
) -> None:
    """Append one event in the caller's transaction, so it commits with the change or not at all.

    Written as a row, not an ORM object: every take-out and return writes one, under SQLite's write lock, and
    the unit of work's flush cost more than the rest of the event's writing together."""
    _append(session, [_row(now, action, actor, item, checkout, subject, source, data)])


def record_many(session: Session, now: datetime, action: str, *, actor: User | None, source: str | None,
                items: list[tuple[int, dict]]) -> None:
    """One event per item (its id and data) in one statement, for a change made to many items at once."""
    record_rows(session, now, action, actor=actor, source=source,
                rows=[{"item_id": item_id, "data": data} for item_id, data in items])


def record_rows(session: Session, now: datetime, action: str, *, actor: User | None, source: str | None,
                rows: list[dict]) -> None:
    """One event per row in one statement; a row gives `data` and any of item_id, checkout_id, subject_user_id
    (ids, for a set-based change that never loaded the objects)."""
    if not rows:
        return
    session.flush()
    _append(session, [_row(now, action, actor, None, None, None, source, r.get("data", {}))
                      | {k: r[k] for k in ("item_id", "checkout_id", "subject_user_id") if k in r} for r in rows])


_COLUMNS = ("seq", "prev_hash", "hash", "at", "action", "actor_id", "item_id", "checkout_id", "subject_user_id",
            "source", "data")


def _insert_many(session: Session, rows: list[dict], head: tuple[int, str]) -> None:
    """Insert many events in one executemany on the driver, and move the chain's head to `head` (seq, hash): the
    values are plain except `at`, which goes through the column type's own bind processor, once per distinct
    moment (a sweep writes thousands at one moment). One event on PostgreSQL moves the head in the same statement
    (a CTE): a take-out or return then costs one round trip fewer while it holds the head's lock."""
    conn = session.connection()
    dialect = conn.dialect
    table = Event.__table__
    # The dialect's own processor (text with microseconds on SQLite, as the ORM writes it): comparisons by time
    # between events and other tables hold to the microsecond.
    process = table.c.at.type.dialect_impl(dialect).bind_processor(dialect) or (lambda v: v)
    moments: dict[datetime, object] = {}
    params = []
    for row in rows:
        at = row["at"]
        if at not in moments:
            moments[at] = process(at)
        params.append(tuple(moments[at] if c == "at" else row.get(c) for c in _COLUMNS))
    if len(params) == 1 and dialect.name == "postgresql":
        conn.exec_driver_sql(_MOVE_AND_INSERT, (*head, *params[0]))
        return
    conn.execute(_MOVE_HEAD, {"seq": head[0], "hash": head[1]})
    conn.exec_driver_sql(_INSERT_SQL["qmark" if dialect.paramstyle == "qmark" else "format"], params)


_INSERT_SQL = {style: f"INSERT INTO {Event.__tablename__} ({', '.join(_COLUMNS)}) "  # noqa: S608 - names from the model
                      f"VALUES ({', '.join([mark] * len(_COLUMNS))})"
               for style, mark in (("qmark", "?"), ("format", "%s"))}
_MOVE_AND_INSERT = (f"WITH moved AS (UPDATE {AuditHead.__tablename__} SET seq = %s, hash = %s WHERE id = 1) "  # noqa: S608
                    + _INSERT_SQL["format"])


# Made once: json.dumps with options builds a new encoder per call, which a sweep of 10,000 flags would feel.
_CANONICAL = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))
_DATA = json.JSONEncoder(ensure_ascii=False, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _utc_text(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical(row) -> str:
    """The event's content as hashed: who, what, when (UTC, to the microsecond), from where, and its data
    (before and after, where a change has them), as compact JSON with sorted keys. `row` is an Event or a dict."""
    get = row.__getitem__ if isinstance(row, dict) else functools.partial(getattr, row)
    # The keys in sorted order, as `sort_keys=True` would put them (the migration's copy uses sort_keys).
    return _CANONICAL.encode({
        "action": get("action"), "actor": get("actor_id"), "at": _utc_text(get("at")),
        "checkout": get("checkout_id"), "data": get("data"), "item": get("item_id"), "seq": get("seq"),
        "source": get("source"), "subject": get("subject_user_id"), "v": VERSION,
    })


def digest(prev_hash: str, row) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical(row)).encode("utf-8")).hexdigest()


# Rows, not objects: the head is read and moved on the session's connection (FOR UPDATE on PostgreSQL).
_HEAD_TABLE = AuditHead.__table__
_HEAD = (select(_HEAD_TABLE.c.seq, _HEAD_TABLE.c.hash, _HEAD_TABLE.c.listened).where(_HEAD_TABLE.c.id == 1)
         .with_for_update())
_MOVE_HEAD = update(_HEAD_TABLE).where(_HEAD_TABLE.c.id == 1).values(seq=bindparam("seq"), hash=bindparam("hash"))


def _append(session: Session, rows: list[dict]) -> None:
    """Number and hash `rows` after the chain's current end, insert them and move the end; the head's lock holds
    until commit."""
    conn = session.connection()
    seq, prev, listened = conn.execute(_HEAD).one()
    for row in rows:
        seq += 1
        row["seq"], row["prev_hash"] = seq, prev
        row["hash"] = prev = digest(prev, row)
    _insert_many(session, rows, head=(seq, prev))
    loaded = session.identity_map.get(session.identity_key(AuditHead, 1))
    if loaded is not None:  # the trail's own tools read the head as an object in the same session
        set_committed_value(loaded, "seq", seq)
        set_committed_value(loaded, "hash", prev)
    session.info.setdefault(_PENDING, []).extend(rows)
    if listened and not set(listened.split(",")).isdisjoint(r["action"] for r in rows):
        events_chained.send(session, rows=rows)


def listen_to(session: Session, actions: set[str]) -> None:
    """Say which actions someone listens to from now on (all of them, not a change): the events of those actions
    are sent as `events_chained`. In the caller's transaction, with the head locked (as writing an event locks
    it), so every writer after the commit reads the new set with the head it locks; none is ever missed."""
    listened = ",".join(sorted(actions))
    conn = session.connection()
    conn.execute(_HEAD)
    conn.execute(update(_HEAD_TABLE).where(_HEAD_TABLE.c.id == 1).values(listened=listened))
    loaded = session.identity_map.get(session.identity_key(AuditHead, 1))
    if loaded is not None:
        set_committed_value(loaded, "listened", listened)


def _row(now, action, actor, item, checkout, subject, source, data) -> dict:
    return {
        "at": now,
        "action": action,
        "actor_id": actor.id if actor else None,
        "item_id": item.id if item else None,
        "checkout_id": checkout.id if checkout else None,
        "subject_user_id": subject.id if subject else None,
        "source": source,
        "data": _DATA.encode(data),
    }


# --- after commit: hand the committed events to the shippers ---------------------------------------------------

SHIPPERS = "tracker.audit.shippers"  # key in a sessionmaker's `info`: the list of `ship(rows)` callables


@sa_event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    """Each shipper gets the events of the committed transaction, in chain order; a failing shipper is logged
    by its own code and never undoes the commit."""
    rows = session.info.pop(_PENDING, None)
    if rows:
        for ship in session.info.get(SHIPPERS) or ():
            ship(rows)


@sa_event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


@sa_event.listens_for(Session, "after_soft_rollback")
def _after_soft_rollback(session: Session, previous_transaction) -> None:
    session.info.pop(_PENDING, None)
