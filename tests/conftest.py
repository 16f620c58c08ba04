"""Fixtures: a clean database per test, an app on it, a client, a CLI runner and factories.

Which database a test runs on
-----------------------------
Every test that uses the database (the `db_url` fixture, directly or through `app`, `session`, `client`, ...)
runs on SQLite. A test marked `postgres` runs on PostgreSQL as well:

    @pytest.mark.postgres                   # one test
    pytestmark = pytest.mark.postgres       # a whole module

Mark what can differ between the two: races and locks (SELECT ... FOR UPDATE, the advisory locks of sign-in
throttling), unique and partial unique indexes, the SQL of the rules and queries, streamed results, migrations.
HTTP flows and the role matrix run on SQLite only: what they check does not depend on the database.
`pytest_generate_tests` below turns this into the `db_url` parameter: test ids end in [sqlite] or [postgres].
TRACKER_TEST_ALL_POSTGRES=1 runs every test on PostgreSQL alone (a check after a change to how sessions and
transactions begin, such as a write slipping into a session that only reads); the suite's run does not set it.

How each database is cleaned
----------------------------
SQLite: a copy of a migrated template file per test. PostgreSQL: one database per session (per xdist worker),
migrated once, emptied before each test by one TRUNCATE of every table but alembic_version.
"""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import time

import pytest
from sqlalchemy import create_engine, select, text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from tests.helpers import NOW, PASSWORD, make_app, sign_in
from tests.listeners import Hook, SmtpServer
from tests.pgserver import PgServer, find_bindir
from tracker import migrate
from tracker.accounts import users
from tracker.audit import GENESIS
from tracker.items import departments
from tracker.items import register as items_mod
from tracker.models import DataClass, Department, Kind, Site, StoragePlace

users.HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashing for tests only
pytest_plugins = ["tests.browser"]  # the browser tests' live server, browser and phone fixtures
_counter = itertools.count(1)


def pytest_generate_tests(metafunc):
    """SQLite for every test that uses the database; PostgreSQL too for tests marked `postgres`."""
    if "db_url" in metafunc.fixturenames:
        backends = ["sqlite", "postgres"] if metafunc.definition.get_closest_marker("postgres") else ["sqlite"]
        if os.environ.get("TRACKER_TEST_ALL_POSTGRES"):
            backends = ["postgres"]
        metafunc.parametrize("db_url", backends, indirect=True)


# --- SQLite ------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


# --- PostgreSQL --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server():
    """The URL of a PostgreSQL server without the database name: TRACKER_TEST_PG_URL, or a private one."""
    url = os.environ.get("TRACKER_TEST_PG_URL")
    if url:
        yield url.rsplit("/", 1)[0]
        return
    bindir = find_bindir()
    if bindir is None:
        if os.environ.get("CI"):
            pytest.fail("PostgreSQL is not installed; .ci/run must install it")
        pytest.skip("PostgreSQL is not installed here")
    server = PgServer(bindir).start()
    yield server.url().rsplit("/", 1)[0]
    server.stop()


class PgDatabase:
    """This session's migrated database; `clean()` empties it in one statement."""

    def __init__(self, server: str):
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        self.name = f"tracker_test_{worker}_{os.getpid()}"  # unique even on a shared TRACKER_TEST_PG_URL server
        self.url = f"{server}/{self.name}"
        self.admin = create_engine(f"{server}/postgres", isolation_level="AUTOCOMMIT")
        self.engine = create_engine(self.url, isolation_level="AUTOCOMMIT", poolclass=NullPool)
        self.conn = None
        self._create()

    def _create(self) -> None:
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
            conn.execute(text(f'CREATE DATABASE "{self.name}"'))
        migrate.upgrade(self.url)
        self.conn = self.engine.connect()
        # TRUNCATE waits for every lock on the tables: fail loudly instead of hanging the suite.
        self.conn.execute(text("SET lock_timeout = '30s'"))
        self.head = self.conn.scalar(text("SELECT version_num FROM alembic_version"))
        tables = self.conn.scalars(text(
            "SELECT quote_ident(table_name) FROM information_schema.tables WHERE table_schema = 'public' "
            "AND table_type = 'BASE TABLE' AND table_name <> 'alembic_version' ORDER BY table_name")).all()
        assert tables, "the migrations made no tables"
        # The migrations seed one row, the audit chain's head (empty chain): put it back after emptying.
        self.truncate = text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE; "  # noqa: S608 - our names
                             f"INSERT INTO audit_head (id, seq, hash, base_seq, base_hash) "
                             f"VALUES (1, 0, '{GENESIS}', 0, '{GENESIS}')")

    def clean(self) -> None:
        # A connection a test left open (a thread, an app not disposed) would hold a lock TRUNCATE waits for:
        # end them, as dropping a database per test did.
        self.conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                               "WHERE datname = current_database() AND pid <> pg_backend_pid()"))
        try:
            if self.conn.scalar(text("SELECT version_num FROM alembic_version")) == self.head:
                self.conn.execute(self.truncate)
                return
        except DBAPIError:
            pass
        # A test left the schema elsewhere (migrations taken down): start again from a new database.
        self.conn.close()
        self._create()

    def drop(self) -> None:
        self.conn.close()
        self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)'))
        self.admin.dispose()


@pytest.fixture(scope="session")
def pg_database(pg_server):
    db = PgDatabase(pg_server)
    yield db
    db.drop()


# --- the database of one test ------------------------------------------------------------------------------------


@pytest.fixture
def db_url(request, tmp_path):
    """The URL of an empty, migrated database; parametrised by pytest_generate_tests above."""
    if request.param == "sqlite":
        path = tmp_path / "tracker.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    db = request.getfixturevalue("pg_database")
    db.clean()
    return db.url


@pytest.fixture
def app(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    yield app
    app.extensions["tracker.engine"].dispose()


@pytest.fixture
def new_app(db_url, tmp_path):
    """Make more apps on the test's database (another gunicorn worker, the scheduler process); disposed after."""
    made = []

    def make(**config):
        made.append(make_app(db_url, tmp_path, **config))
        return made[-1]

    yield make
    for other in made:
        other.extensions["tracker.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def english(app):
    """Messages in English, as with TRACKER_DEFAULT_LANGUAGE=en (the product default is Japanese).
    A module that compares English text uses it with `pytestmark = pytest.mark.usefixtures("english")`."""
    app.config["DEFAULT_LANGUAGE"] = "en"


@pytest.fixture
def session(app):
    """The test's own session; on SQLite it does not hold the write lock while reading, so requests
    made through the client never wait on it (on PostgreSQL, where only a transaction may write, it is one).
    Call reread(session) to see what they wrote."""
    sqlite = app.extensions["tracker.engine"].dialect.name == "sqlite"
    s = app.extensions["tracker.read_sessionmaker" if sqlite else "tracker.sessionmaker"]()
    yield s
    s.rollback()
    s.close()


@pytest.fixture
def make_user(session):
    """Create and commit a user; returns the User."""

    def make(role="staff", email=None, name=None, password=PASSWORD, active=True, language=None, **kw):
        n = next(_counter)
        user = users.create(session, NOW, email=email or f"{role}{n}@example.com", name=name or f"{role.title()} {n}",
                            role=role, password=password, actor=None, language=language,
                            must_change_password=kw.pop("must_change_password", False), **kw)
        if not active:
            user.active = False
        session.commit()
        return user

    return make


@pytest.fixture
def make_item(session):
    """Create and commit an item; returns the Item."""

    def make(kind=Kind.laptop, name=None, bag=None, data_class=DataClass.personal, **kw):
        kind = Kind(kind)
        if kw.get("department") and session.scalar(select(Department.id).where(Department.name == kw["department"])) is None:
            session.add(Department(name=kw["department"], created_at=NOW))  # departments are records now
            session.flush()
        data = items_mod.ItemData(kind=kind, name=name or f"{kind.value} {next(_counter)}", data_class=data_class,
                                  bag_tag=bag.asset_tag if bag is not None else None, **kw)
        item = items_mod.create(session, NOW, data, actor=None)
        session.commit()
        return item

    return make


@pytest.fixture
def make_department(session):
    """Create and commit a department (through the rules); returns the Department."""

    def make(name, parent=None, managers=()):
        dept = departments.create(session, NOW, name=name, parent_id=parent.id if parent else None,
                                  manager_ids=[u.id for u in managers], actor=None)
        session.commit()
        return dept

    return make


@pytest.fixture
def make_site(session):
    """Create and commit a site (an office with its own clock); returns the Site."""

    def make(name, timezone="Asia/Tokyo", day_end=time(19, 0), late_sweeps=None, desk_emails=None):
        site = Site(name=name, timezone=timezone, day_end=day_end, late_sweeps=late_sweeps, desk_emails=desk_emails,
                    created_at=NOW)
        session.add(site)
        session.commit()
        return site

    return make


@pytest.fixture
def make_place(session):
    """Create and commit a storage place (None site: the main office); returns the StoragePlace."""

    def make(name, site=None):
        place = StoragePlace(name=name, site_id=site.id if site is not None else None, created_at=NOW)
        session.add(place)
        session.commit()
        return place

    return make


@pytest.fixture
def admin(make_user):
    return make_user("admin", name="Admin Boss", language="en")


@pytest.fixture
def admin_client(client, admin):
    """The test's client, signed in as `admin`."""
    assert sign_in(client, admin.email).status_code == 302
    return client


@pytest.fixture
def frozen_clock(monkeypatch):
    """Requests see a fixed clock, NOW, unless a test moves it with frozen_clock["now"] = ..."""
    from tracker import clock

    moment = {"now": NOW}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    return moment


@pytest.fixture
def smtp():
    """A real SMTP server on loopback that keeps what it is sent (tests/listeners.py `SmtpServer`)."""
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hook():
    """A real HTTP listener on loopback that records what webhooks send it (tests/listeners.py `Hook`)."""
    h = Hook()
    h.thread.start()
    yield h
    h.server.shutdown()
    h.server.server_close()
    h.thread.join(5)
