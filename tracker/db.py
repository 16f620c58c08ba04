"""Engine and session set-up: SQLite in WAL mode with write-first transactions, or PostgreSQL."""

from __future__ import annotations

import enum
import fcntl
import functools
import os
import select
import sqlite3
import time
from collections.abc import Sequence

from sqlalchemy import Select, create_engine, event, literal_column
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.orm import Session, sessionmaker

_PG_IDLE = 0  # psycopg.pq.TransactionStatus.IDLE: not in a transaction
BEGIN_WITH_NEXT = "tracker.begin_with_next"  # Connection.info: BEGIN READ WRITE goes with the next statement
_PIPELINE = "tracker.pipeline"  # Connection.info: the pipeline that carries them, until the statement's results
BUSY_SECONDS = 10.0  # below gunicorn's 30-second worker timeout: a request that cannot write says so in time


def make_engine(url: str, busy_seconds: float = BUSY_SECONDS, foreign_keys: bool = True) -> Engine:
    """Create the engine; on SQLite every transaction takes the write lock at BEGIN (PostgreSQL: `_postgres_engine`).

    BEGIN IMMEDIATE means a transaction never has to upgrade a read lock to a write lock,
    so two writers queue on the busy timeout instead of failing with 'database is locked'.
    `foreign_keys=False` is for migrations only: SQLite rebuilds a table to alter it, which the checks would
    refuse while other tables point at it; the migration checks the keys itself when it is done.
    """
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": busy_seconds, "check_same_thread": False,
                                                  "factory": _Connection})

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
            cur.execute(f"PRAGMA busy_timeout={int(busy_seconds * 1000)}")
            cur.execute("PRAGMA synchronous=FULL")  # a check-out the phone was told of survives a power cut
            cur.close()

        queue = _WriterQueue(url, busy_seconds)

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            deferred = conn.get_execution_options().get("tracker_read_only")
            if not deferred:
                queue.enter(conn.connection.dbapi_connection)
            conn.exec_driver_sql("BEGIN" if deferred else "BEGIN IMMEDIATE")

        queue.install(engine)
        return engine
    return _postgres_engine(url)


def _postgres_engine(url: str) -> Engine:
    """PostgreSQL: a session that reads sends no BEGIN (see `read_only`); every other transaction begins READ WRITE.

    Each connection outside a transaction is read-only (`default_transaction_read_only`), so a write that slipped
    past `begin_writing` is refused by the server rather than committed statement by statement. Reading outside a
    transaction also spares the ROLLBACK that ended every page, which made psycopg drop the statements it had
    prepared on the connection: each page's statements now stay prepared from one request to the next.
    """
    import psycopg  # the PostgreSQL driver, needed only here

    engine = create_engine(url, connect_args={"cursor_factory": _postgres_cursor()})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn, _record):
        dbapi_conn.autocommit = True  # we issue BEGIN ourselves
        dbapi_conn.execute("SET default_transaction_read_only = on")

    @event.listens_for(engine, "checkout")
    def _on_checkout(dbapi_conn, _record, _proxy):
        # A connection taken from the pool is not asked whether it is alive (a round trip on every request) unless
        # its socket has something to read: an idle connection is sent nothing unless the server closed it (a
        # restart, a terminated backend) or has news for it. Asked then, a dead one is replaced before it is used.
        if dbapi_conn.closed or select.select([dbapi_conn.fileno()], [], [], 0)[0]:
            try:
                dbapi_conn.execute("SELECT 1")
            except psycopg.Error as err:
                raise DisconnectionError(str(err)) from err

    # A writing transaction's BEGIN is not sent alone: it goes with the transaction's first statement, in one
    # round trip (psycopg's pipeline mode), which the server then runs in order. A take-out's transaction is a
    # dozen statements; this is one round trip of them fewer, for every write. Nothing is sent for a transaction
    # that runs no statement, and its COMMIT is then no-op (the connection is not in a transaction).
    @event.listens_for(engine, "begin")
    def _on_begin(conn):
        if not conn.get_execution_options().get("tracker_read_only"):
            conn.info[BEGIN_WITH_NEXT] = True

    @event.listens_for(engine, "before_cursor_execute")
    def _on_execute(conn, cursor, _statement, _params, _context, _many):
        dbapi_conn = conn.connection.dbapi_connection
        if conn.info.pop(BEGIN_WITH_NEXT, False):
            if isinstance(cursor, psycopg.ServerCursor):  # a streamed result, which pipeline mode cannot carry
                dbapi_conn.execute("BEGIN READ WRITE")
                return
            pipeline = dbapi_conn.pipeline()
            pipeline.__enter__()
            conn.info[_PIPELINE] = pipeline
            dbapi_conn.execute("BEGIN READ WRITE")
        # A result read in batches (yield_per) is a server-side cursor, which lives in a transaction: a read-only one.
        elif isinstance(cursor, psycopg.ServerCursor) and dbapi_conn.info.transaction_status == _PG_IDLE:
            dbapi_conn.execute("BEGIN READ ONLY")

    def _send(conn, exc_type=None, exc=None) -> None:
        """The BEGIN and first statement sent: their results (or the statement's error) come back now."""
        pipeline = conn.info.pop(_PIPELINE, None)
        if pipeline is not None:
            pipeline.__exit__(exc_type, exc, None)

    @event.listens_for(engine, "after_cursor_execute")
    def _after_execute(conn, *_args):
        _send(conn)

    @event.listens_for(engine, "handle_error")
    def _on_error(context):
        if context.connection is not None:
            _send(context.connection, type(context.original_exception), context.original_exception)

    @event.listens_for(engine, "commit")
    @event.listens_for(engine, "rollback")
    def _on_end(conn):
        conn.info.pop(BEGIN_WITH_NEXT, None)

    @event.listens_for(engine, "checkin")
    def _on_checkin(_dbapi_conn, record):
        record.info.pop(BEGIN_WITH_NEXT, None)

    return engine


@functools.cache
def _postgres_cursor() -> type:
    """psycopg's cursor, with its `description` made column by column when read.

    psycopg builds the description afresh at every access, an object per column: for a row of fifteen columns it
    costs as much as the round trip. SQLAlchemy reads it whole the first time a statement runs, keeps the result's
    layout with the compiled statement, and on later runs only asks whether there is one: those columns are never
    read. Measured through SQLAlchemy on a user's row: 145 µs of CPU a statement, 100 µs with this."""
    import psycopg

    class Description(Sequence):
        __slots__ = ("_cursor", "_result", "_columns")

        def __init__(self, cursor: psycopg.Cursor, result):
            self._cursor, self._result, self._columns = cursor, result, None

        def __len__(self) -> int:
            return self._result.nfields

        def __getitem__(self, index):
            if self._columns is None:
                if self._cursor.pgresult is not self._result:  # never so in SQLAlchemy: a cursor per statement
                    raise RuntimeError("a cursor's description was read after it ran another statement")
                self._columns = psycopg.Cursor.description.fget(self._cursor)
            return self._columns[index]

    class Cursor(psycopg.Cursor):
        @property
        def description(self):
            result = self.pgresult
            if result is not None and result.nfields:
                return Description(self, result)
            return super().description  # no columns: None, or psycopg's answer for "SELECT ;"

    return Cursor


class _WriterQueue:
    """Writers wait their turn on a file lock next to the database, then BEGIN IMMEDIATE at once.

    SQLite lets one writer in at a time, and a writer that finds the database locked sleeps in SQLite's busy
    handler in growing steps (1, 2, 5, 10 ... 100 ms): it wakes long after the lock was freed, and two phones
    taking items out at the same moment wait for nothing. Here a writer polls a lock file in steps of at most
    2 ms, so it goes in as soon as the other has committed. Every process on the host that writes opens the
    database through this function, so they all queue the same way; past the busy timeout the writer goes on
    to BEGIN IMMEDIATE and SQLite's own timeout says "database is locked" as before. The lock file is released
    at commit or rollback, and by the kernel if the process dies.
    """

    STEP_MAX = 0.002

    def __init__(self, url: str, busy_seconds: float):
        database = url.split("///", 1)[1].split("?", 1)[0] if "///" in url else ""
        self.path = f"{database}.writers" if database and database != ":memory:" else None
        self.busy_seconds = busy_seconds

    def enter(self, dbapi_conn: _Connection) -> None:
        if self.path is None:
            return
        if dbapi_conn.writer_fd is None:
            try:
                dbapi_conn.writer_fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            except OSError:  # a read-only folder: SQLite says so in its own words at the write
                return
        fd = dbapi_conn.writer_fd
        deadline = time.monotonic() + self.busy_seconds
        step = 0.0001
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    return  # SQLite's busy timeout decides from here
                time.sleep(step)
                step = min(step * 2, self.STEP_MAX)

    @staticmethod
    def leave(dbapi_conn: _Connection) -> None:
        if getattr(dbapi_conn, "writer_fd", None) is not None:
            fcntl.flock(dbapi_conn.writer_fd, fcntl.LOCK_UN)

    def install(self, engine: Engine) -> None:
        """Release after the COMMIT or ROLLBACK itself (SQLAlchemy's events come before it)."""
        dialect = engine.dialect
        commit, rollback = dialect.do_commit, dialect.do_rollback

        def do_commit(dbapi_conn):
            try:
                commit(dbapi_conn)
            finally:
                self.leave(dbapi_conn)

        def do_rollback(dbapi_conn):
            try:
                rollback(dbapi_conn)
            finally:
                self.leave(dbapi_conn)

        dialect.do_commit, dialect.do_rollback = do_commit, do_rollback


class _Connection(sqlite3.Connection):
    """A SQLite connection that keeps its own descriptor of the writers' lock file (a lock is held per open file,
    so two connections of one process queue like two processes), closed with it."""

    writer_fd: int | None = None

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._close_lock_file()

    def __del__(self) -> None:
        self._close_lock_file()

    def _close_lock_file(self) -> None:
        fd, self.writer_fd = self.writer_fd, None
        if fd is not None:
            os.close(fd)


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
    """The same engine for sessions that read: on SQLite their transactions begin deferred, without the write lock;
    on PostgreSQL they send no BEGIN at all, and each statement reads what is committed as it runs (as it would
    in a READ COMMITTED transaction), without BEGIN and ROLLBACK round trips. `begin_writing` turns such a session
    into a transaction when it goes on to change something."""
    return engine.execution_options(tracker_read_only=True)


def begin_writing(session: Session) -> None:
    """On PostgreSQL, begin a read-write transaction on the session's connection if it is only reading (see
    `read_only`): what it loaded stays loaded, and the rules lock the rows they decide on. A read-only transaction
    a streamed result began (`_postgres_engine`) ends first. On SQLite the caller ends the read and takes the
    write lock instead (`http.attempt`)."""
    conn = session.connection()
    if conn.dialect.name != "postgresql":
        return
    if conn.connection.dbapi_connection.info.transaction_status != _PG_IDLE:
        if conn.exec_driver_sql("SHOW transaction_read_only").scalar() != "on":
            return  # already writing
        conn.exec_driver_sql("COMMIT")
    conn.info[BEGIN_WITH_NEXT] = True  # sent with the transaction's first statement (`_postgres_engine`)


def written_in(column, value: enum.Enum):
    """`column = 'value'` with the constant written into the SQL instead of bound. A bound value on the column of a
    partial index's condition (the one pending request per item, the one pending offer per check-out) makes SQLite
    prepare the statement again on every run, at ten times the cost of running it; written in, the statement stays
    prepared and the index is used."""
    return column == literal_column(f"'{value.value}'")


def probe(stmt: Select) -> Select:
    """The statement asking whether the ORM select `stmt` finds anything; build it once, beside `stmt`."""
    return stmt.with_only_columns(literal_column("1")).order_by(None).limit(1)


def finds(session: Session, probe_stmt: Select, params: dict) -> bool:
    """Whether a `probe` finds a row, asked as plain SQL on the session's connection (after flushing what is
    pending, as the ORM would). For the checks a take-out or return makes that find nothing nearly every time:
    the ORM's machinery costs more than the statement for an empty answer, under SQLite's write lock. Load the
    objects only when it says yes."""
    session.flush()
    return session.connection().execute(probe_stmt, params).first() is not None
