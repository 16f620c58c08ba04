"""Engine and session set-up: SQLite in WAL mode with write-first transactions, or PostgreSQL."""

from __future__ import annotations

from sqlalchemy import create_engine, event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

BUSY_SECONDS = 10.0  # below gunicorn's 30-second worker timeout: a request that cannot write says so in time


def make_engine(url: str, busy_seconds: float = BUSY_SECONDS, foreign_keys: bool = True) -> Engine:
    """Create the engine; on SQLite every transaction takes the write lock at BEGIN.

    BEGIN IMMEDIATE means a transaction never has to upgrade a read lock to a write lock,
    so two writers queue on the busy timeout instead of failing with 'database is locked'.
    `foreign_keys=False` is for migrations only: SQLite rebuilds a table to alter it, which the checks would
    refuse while other tables point at it; the migration checks the keys itself when it is done.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_seconds, "check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
            cur.execute("PRAGMA synchronous=FULL")  # a check-out the phone was told of survives a power cut
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            deferred = conn.get_execution_options().get("tracker_read_only")
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        return engine
    return create_engine(url, pool_pre_ping=True)


def explain_failure(err: Exception) -> str:
    """What an operator should know about a database error, in one line, for logs and the console."""
    text = str(getattr(err, "orig", None) or err)
    lowered = text.lower()
    if "readonly" in lowered or "read-only" in lowered:
        why = "the database is read-only (check the permissions of the file and its folder, and the disk's mount)"
    elif "disk is full" in lowered or "no space left" in lowered or "disk full" in lowered:
        why = "the disk is full"
    elif "database is locked" in lowered:
        why = "the database is locked by another process for longer than the busy timeout"
    elif "unable to open" in lowered:
        why = "the database file cannot be opened (check the path and permissions)"
    elif "connection" in lowered or "could not connect" in lowered:
        why = "the database server cannot be reached"
    else:
        why = "the database refused the change"
    return f"{why}: {text.splitlines()[0] if text else type(err).__name__}"


def make_sessionmaker(engine: Engine, info: dict | None = None) -> sessionmaker[Session]:
    """Sessions for entry points that may write (POST requests, CLI, scheduler); `info` is shared by each session
    (the audit trail's shippers)."""
    return sessionmaker(bind=engine, expire_on_commit=False, info=info or {})


def read_only(engine: Engine) -> Engine:
    """The same engine for transactions that only read: on SQLite they begin deferred, without the write lock."""
    return engine.execution_options(tracker_read_only=True)
