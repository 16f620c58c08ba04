"""`flask backup DEST`: a consistent copy of the live database that restores with every record and an intact audit
chain (SQLite through the online backup API, PostgreSQL through pg_dump and pg_restore)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from tests.helpers import NOW, later, tokyo
from tests.pgserver import find_bindir
from tracker import trail
from tracker.custody import operations as custody
from tracker.models import Checkout, Event, Flag, Item, User


def _records(session) -> dict:
    return {model.__name__: session.scalar(select(func.count()).select_from(model))
            for model in (User, Item, Checkout, Event, Flag)}


def _populate(session, make_user, make_item):
    alice, bob = make_user(), make_user("security")
    items = [make_item() for _ in range(5)]
    for n, item in enumerate(items):
        custody.check_out(session, NOW, item=item, holder=alice, actor=alice, due_at=tokyo(1, 19))
        if n % 2:
            custody.return_item(session, later(hours=1), item=item, actor=bob)
    session.commit()


@pytest.mark.postgres
def test_a_backup_restores_every_record_and_an_intact_audit_chain(app, runner, session, db_url, make_user, make_item,
                                                                  tmp_path, monkeypatch):
    _populate(session, make_user, make_item)
    before = _records(session)
    session.rollback()
    assert before["Event"] >= 8
    folder = tmp_path / "backups"
    folder.mkdir()

    if db_url.startswith("sqlite"):
        # A writer is mid-transaction while the copy is taken: what it has not committed is not in the copy.
        writer = sqlite3.connect(make_url(db_url).database, isolation_level=None)
        writer.execute("BEGIN IMMEDIATE")
        writer.execute("UPDATE items SET name = 'half-written' WHERE id = 1")
        result = runner.invoke(args=["backup", str(folder)])
        writer.execute("ROLLBACK")
        writer.close()
    else:
        bindir = find_bindir()
        if bindir:
            monkeypatch.setenv("PATH", bindir + os.pathsep + os.environ["PATH"])
        if shutil.which("pg_dump") is None:
            pytest.skip("pg_dump is not installed here")
        result = runner.invoke(args=["backup", str(folder)])
    assert result.exit_code == 0, result.output
    [copy] = list(folder.iterdir())
    assert f"Backup written to {copy}." in result.output
    assert oct(copy.stat().st_mode & 0o777) == "0o600"
    again = runner.invoke(args=["backup", str(copy)])
    assert again.exit_code != 0 and "exists already" in again.output  # never overwrites

    restored_url = _restore(db_url, copy, tmp_path)
    engine = create_engine(restored_url)
    try:
        with Session(engine) as s:
            assert _records(s) == before
            assert "half-written" not in s.scalars(select(Item.name)).all()
            result = trail.verify(s)
            assert result.ok, result.summary()
            assert result.events == before["Event"]
    finally:
        engine.dispose()


def _restore(db_url: str, copy, tmp_path) -> str:
    if db_url.startswith("sqlite"):
        target = tmp_path / "restored.db"
        shutil.copy(copy, target)
        return f"sqlite:///{target}"
    url = make_url(db_url)
    name = url.database + "_restored"
    admin = create_engine(url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    env = {**os.environ, "PGHOST": url.host, "PGPORT": str(url.port), "PGUSER": url.username or "",
           "PGDATABASE": name}
    subprocess.run([shutil.which("pg_restore"), "--no-owner", "--dbname", name, str(copy)], env=env, check=True,
                   capture_output=True, timeout=120)
    return url.set(database=name).render_as_string(hide_password=False)


def test_a_backup_to_a_missing_folder_says_so_and_writes_nothing(runner, tmp_path):
    result = runner.invoke(args=["backup", str(tmp_path / "no" / "such" / "file.db")])
    assert result.exit_code != 0
    assert "No backup written" in result.output and "does not exist" in result.output
    assert "Traceback" not in result.output
