"""Alembic environment: runs migrations against the configured database."""

from alembic import context

from tracker.db import make_engine
from tracker.models import Base

config = context.config


def _url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return url
    import os

    from tracker import config as tracker_config

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    return tracker_config.load(os.environ.get("TRACKER_INSTANCE_PATH", os.path.join(root, "instance")))["DATABASE_URL"]


def run_migrations_offline() -> None:
    context.configure(url=_url(), target_metadata=Base.metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _url()
    # SQLite alters a table by rebuilding it, which its foreign-key checks refuse while other tables point at it:
    # migrate with them off, then check every key before the transaction commits (all or nothing).
    engine = make_engine(url, foreign_keys=not url.startswith("sqlite"))
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
            if url.startswith("sqlite"):
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
                if broken:
                    raise RuntimeError(f"the migration left rows pointing at nothing: {broken[:5]}")
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
