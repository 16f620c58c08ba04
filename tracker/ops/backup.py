"""Backups of a live database: SQLite through its online backup API (a consistent copy while the app writes),
PostgreSQL through pg_dump (one snapshot, custom format for pg_restore)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
from datetime import datetime
from pathlib import Path

from sqlalchemy.engine import make_url


class BackupError(RuntimeError):
    pass


def target(dest: str, now: datetime, suffix: str) -> Path:
    """DEST itself, or a dated file inside DEST when it is a folder; never an existing file."""
    path = Path(dest)
    if path.is_dir():
        path = path / f"tracker-{now.strftime('%Y%m%d-%H%M%S')}{suffix}"
    if path.exists():
        raise BackupError(f"{path} exists already; give a new name or a folder")
    if not path.parent.is_dir():
        raise BackupError(f"the folder {path.parent} does not exist")
    return path


def sqlite_backup(database_url: str, dest: Path, pages_per_step: int = 1024) -> int:
    """Copy the live SQLite database page by page (writers are let in between steps and the copy restarts on a
    change, so it is one consistent state), check the copy, then move it into place; the number of pages."""
    source_path = make_url(database_url).database
    if not source_path or not os.path.exists(source_path):
        raise BackupError(f"no SQLite database at {source_path}")
    partial = dest.with_name(dest.name + ".partial")
    source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=30)
    copy = sqlite3.connect(partial)
    try:
        source.backup(copy, pages=pages_per_step)
        copy.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        if copy.execute("PRAGMA integrity_check").fetchone()[0] != "ok":
            raise BackupError("the copy failed its integrity check")
        pages = copy.execute("PRAGMA page_count").fetchone()[0]
    except BaseException:
        copy.close()
        partial.unlink(missing_ok=True)
        raise
    finally:
        source.close()
    copy.close()
    os.chmod(partial, 0o600)  # personal data
    os.replace(partial, dest)
    return pages


def postgres_backup(database_url: str, dest: Path) -> None:
    """pg_dump in its custom format (restore with pg_restore); the password goes by environment, not arguments."""
    exe = shutil.which("pg_dump")
    if exe is None:
        raise BackupError("pg_dump is not installed (Debian: postgresql-client)")
    url = make_url(database_url)
    env = {**os.environ, "PGHOST": url.host or "", "PGPORT": str(url.port or 5432), "PGUSER": url.username or "",
           "PGPASSWORD": url.password or "", "PGDATABASE": url.database or ""}
    partial = dest.with_name(dest.name + ".partial")
    done = subprocess.run([exe, "--format=custom", "--no-owner", "--file", str(partial)], env=env,  # noqa: S603
                          capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        partial.unlink(missing_ok=True)
        raise BackupError(f"pg_dump failed: {done.stderr.strip()[:500]}")
    os.chmod(partial, 0o600)
    os.replace(partial, dest)


def backup(database_url: str, dest: str, now: datetime) -> Path:
    if database_url.startswith("sqlite"):
        path = target(dest, now, ".db")
        sqlite_backup(database_url, path)
        return path
    path = target(dest, now, ".dump")
    postgres_backup(database_url, path)
    return path
