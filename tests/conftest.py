"""Fixtures: an app per test on SQLite and on PostgreSQL, a client, a CLI runner and factories."""

from __future__ import annotations

import itertools
import os
import shutil
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import create_engine, text

from tests.pgserver import PgServer, find_bindir
from tracker import create_app, migrate
from tracker.accounts import users
from tracker.items import register as items_mod
from tracker.models import DataClass, Kind

users.HASH_METHOD = "pbkdf2:sha256:1000"  # fast hashing for tests only
PASSWORD = "correct-horse-battery"
NOW = datetime(2026, 6, 1, 1, 0, tzinfo=UTC)  # 10:00 in Tokyo
_counter = itertools.count(1)


@pytest.fixture(scope="session")
def pg_server():
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


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory):
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return path


@pytest.fixture(scope="session")
def pg_template(pg_server):
    admin = create_engine(pg_server + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("DROP DATABASE IF EXISTS tracker_template"))
        conn.execute(text("CREATE DATABASE tracker_template"))
    migrate.upgrade(pg_server + "/tracker_template")
    yield admin
    admin.dispose()


@pytest.fixture(params=["sqlite", "postgres"])
def db_url(request, tmp_path, sqlite_template):
    if request.param == "sqlite":
        path = tmp_path / "tracker.db"
        shutil.copy(sqlite_template, path)
        yield f"sqlite:///{path}"
        return
    admin = request.getfixturevalue("pg_template")
    server = request.getfixturevalue("pg_server")
    name = f"tracker_t{os.getpid()}_{next(_counter)}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}" TEMPLATE tracker_template'))
    yield f"{server}/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def make_app(db_url, tmp_path, **extra):
    config = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": db_url,
        "SECRET_KEY": "test-secret-" + os.urandom(8).hex(),
        "BASE_URL": "https://track.example.com",
        "LABELS_DIR": str(tmp_path / "labels"),
    }
    config.update(extra)
    return create_app(config)


@pytest.fixture
def app(db_url, tmp_path):
    app = make_app(db_url, tmp_path)
    yield app
    app.extensions["tracker.engine"].dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def session(app):
    """The test's own session; on SQLite it does not hold the write lock while reading, so requests
    made through the client never wait on it. Call reread(session) to see what they wrote."""
    s = app.extensions["tracker.read_sessionmaker"]()
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
        data = items_mod.ItemData(kind=kind, name=name or f"{kind.value} {next(_counter)}", data_class=data_class,
                                  bag_tag=bag.asset_tag if bag is not None else None, **kw)
        item = items_mod.create(session, NOW, data, actor=None)
        session.commit()
        return item

    return make


def reread(session) -> None:
    """See what requests committed: end the test session's transaction and forget loaded values
    (rollback alone keeps them when no transaction is open, since expire_on_commit is off)."""
    session.rollback()
    session.expire_all()


@pytest.fixture
def frozen_clock(monkeypatch):
    """Requests see a fixed clock, NOW, unless a test moves it with frozen_clock["now"] = ..."""
    from tracker import clock

    moment = {"now": NOW}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    return moment


def sign_in(client, email, password=PASSWORD, follow=False):
    """Post the sign-in form with its CSRF token, the way a browser does."""
    page = client.get("/login")
    token = csrf_from(page.get_data(as_text=True))
    return client.post("/login", data={"email": email, "password": password, "csrf_token": token},
                       follow_redirects=follow)


def csrf_from(html: str) -> str:
    import re

    match = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', html) or re.search(
        r'value="([^"]+)"[^>]*name="csrf_token"', html)
    assert match, "no CSRF token in page"
    return match.group(1)


def post(client, url, data=None, page=None, follow=False):
    """POST with a CSRF token taken from `page` (default: the URL's referrer page or /account)."""
    html = client.get(page or "/account").get_data(as_text=True)
    payload = dict(data or {})
    payload["csrf_token"] = csrf_from(html)
    return client.post(url, data=payload, follow_redirects=follow)


def later(**delta) -> datetime:
    return NOW + timedelta(**delta)
