"""Command-line entry points: database set-up, users, item import, demo data and the local runner."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
from datetime import datetime

import click
from flask import Flask, current_app
from flask.cli import AppGroup, with_appcontext
from sqlalchemy import select
from sqlalchemy.exc import OperationalError

from . import ROOT, clock, demo, jobs, migrate, scheduler, trail
from .accounts import tokens as api_tokens
from .accounts import users
from .db import explain_failure
from .errors import DomainError
from .i18n import describe
from .items import csv_import
from .labels import layouts, render, service
from .models import LANGUAGES, Item, Site
from .ops import backup as ops_backup


def _session():
    return current_app.extensions["tracker.sessionmaker"]()


def _fail(err: DomainError) -> None:
    raise click.ClickException(describe(err))


db_cli = AppGroup("db", help="Database schema commands.")
users_cli = AppGroup("users", help="Manage user accounts.")
items_cli = AppGroup("items", help="Manage the item register.")
audit_cli = AppGroup("audit", help="The audit trail: verify it, write a checkpoint, remove what is past retention. "
                                   "No command edits or deletes a younger event.")


@audit_cli.command("verify", help="Check the whole hash chain; with --checkpoint, also against checkpoints kept "
                                  "outside the database. Prints OK with the count and head hash, or the first broken "
                                  "event and why (exit status 1).")
@click.option("--checkpoint", "checkpoint_file", type=click.Path(exists=True, dir_okay=False), default=None,
              help="A checkpoint file (JSON lines of seq and hash), e.g. the daily file or lines kept from the mails.")
def audit_verify(checkpoint_file):
    try:
        known = trail.read_checkpoints(checkpoint_file) if checkpoint_file else []
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    with _session() as s:
        result = trail.verify(s, known)
        trail.record_check(s, clock.now(), result)
        s.commit()
    click.echo(result.summary())
    if known and result.ok:
        click.echo(f"Checked against {len(known) - len(result.skipped)} checkpoint(s) from {checkpoint_file}"
                   + (f"; {len(result.skipped)} older than the kept trail" if result.skipped else "") + ".")
    if not result.ok:
        sys.exit(1)


@audit_cli.command("checkpoint", help="Verify, then append today's checkpoint (count and head hash) to "
                                      "TRACKER_AUDIT_CHECKPOINT_FILE (or --file) and mail it to "
                                      "TRACKER_AUDIT_CHECKPOINT_MAIL; the scheduler does this daily.")
@click.option("--file", "path", default=None, help="Write here instead of TRACKER_AUDIT_CHECKPOINT_FILE.")
def audit_checkpoint(path):
    app = current_app._get_current_object()
    result = jobs.run_audit_check(app, clock.now(), path)
    click.echo(result.summary())
    if not result.ok:
        sys.exit(1)
    click.echo(f"Checkpoint written to {path or app.config['AUDIT_CHECKPOINT_FILE']}.")


@audit_cli.command("purge", help="Remove the events older than the retention period (TRACKER_AUDIT_RETENTION_YEARS, "
                                 "default 5); the chain stays verifiable from the first kept event.")
def audit_purge():
    with _session() as s:
        try:
            removed = trail.purge(s, clock.now(), current_app.config["AUDIT_RETENTION_YEARS"])
        except ValueError as err:
            raise click.ClickException(str(err)) from None
        s.commit()
    click.echo(f"Removed {removed} event(s) older than {current_app.config['AUDIT_RETENTION_YEARS']:g} years.")


@db_cli.command("upgrade", help="Bring the database schema up to date (Alembic migrations).")
def db_upgrade():
    migrate.upgrade(current_app.config["DATABASE_URL"])
    click.echo("Database is up to date.")


@db_cli.command("downgrade", help="Go back to an earlier schema (a revision such as 0004, or base). It drops "
                                  "the data of what the later migrations added: back up the database first.")
@click.argument("revision")
@click.confirmation_option(prompt="This drops data kept by the later migrations. Go on?")
def db_downgrade(revision):
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)
    click.echo(f"Database is at {revision}.")


@users_cli.command("create", help="Create a user. The password is read from standard input, "
                                  "or generated and printed once when standard input is a terminal.")
@click.argument("email")
@click.option("--name", required=True, help="Display name.")
@click.option("--role", type=click.Choice(["staff", "security", "admin"]), default="staff", show_default=True)
@click.option("--language", type=click.Choice(LANGUAGES), default=None, help="UI language (default: browser).")
def users_create(email, name, role, language):
    generated = sys.stdin is None or sys.stdin.isatty()
    password = users.generate_password(email, name) if generated else sys.stdin.readline().rstrip("\r\n")
    with _session() as s:
        try:
            user = users.create(s, clock.now(), email=email, name=name, role=role, password=password,
                                actor=None, language=language, must_change_password=generated, source="cli")
        except DomainError as err:
            _fail(err)
        s.commit()
        click.echo(f"Created {user.email} ({user.role.value}).")
        if generated:
            click.echo(f"One-time password: {password}  (must be changed at first sign-in)")


@items_cli.command("import", help="Import items from a CSV file (UTF-8 or Shift_JIS); all rows or none.")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--dry-run", is_flag=True, help="Check every row and report, without importing.")
def items_import(path, dry_run):
    with open(path, "rb") as fh:
        raw = fh.read()
    with _session() as s:
        try:
            text, encoding = csv_import.decode(raw)
        except DomainError as err:
            _fail(err)
        preview = csv_import.check(s, text, encoding)
        for e in preview.errors:
            click.echo(f"line {e.line}: {describe(DomainError(e.message, **e.params))}", err=True)
        if preview.errors:
            raise click.ClickException(f"{len(preview.errors)} error(s); nothing imported.")
        if dry_run:
            click.echo(f"Dry run: {len(preview.rows)} row(s) would be imported ({encoding}).")
            return
        try:
            created = csv_import.run(s, clock.now(), preview, actor=None, source="cli")
        except DomainError as err:
            s.rollback()
            _fail(err)
        s.commit()
        click.echo(f"Imported {len(created)} item(s).")


@click.command("demo", help="Load demo data: items of every kind, a bag with three items, one user per role.")
@with_appcontext
def demo_cmd():
    with _session() as s:
        created = demo.load(s, clock.now())
        s.commit()
    if not created:
        click.echo("Demo data is already loaded.")
        return
    click.echo("Demo data loaded. Demo users (password shown once):")
    for email, role, password in created:
        click.echo(f"  {role:8} {email}  {password}")


@click.command("bootstrap", help="Migrate the database and create a first admin if there is no user.")
@with_appcontext
def bootstrap_cmd():
    bootstrap(current_app)


def bootstrap(app: Flask) -> None:
    migrate.upgrade(app.config["DATABASE_URL"])
    with app.extensions["tracker.sessionmaker"]() as s:
        if users.count(s):
            return
        password = users.generate_password("admin@example.com", "Admin")
        users.create(s, clock.now(), email="admin@example.com", name="Admin", role="admin",
                     password=password, actor=None, source="bootstrap")
        s.commit()
    click.echo("First admin created:")
    click.echo("  e-mail:   admin@example.com")
    click.echo(f"  password: {password}  (one-time; you must change it at first sign-in)")


def serve(app: Flask, dev: bool = False) -> None:
    """Set up the database, then serve: gunicorn's workers and one scheduler process, each its own process, until
    Ctrl+C stops them all; with `dev`, Flask's development server with the scheduler in a thread."""
    try:
        bootstrap(app)
    except (OperationalError, OSError) as err:  # serve what can be read; every change says it was not recorded
        click.echo(f"The database cannot be set up or written: {explain_failure(err)}. Serving anyway: pages "
                   "that only read work; changes are refused with a message until it is fixed.", err=True)
    host, port = app.config["HOST"], app.config["PORT"]
    times = ", ".join(t.strftime("%H:%M") for t in scheduler.sweep_times(app))
    if dev:
        _serve_dev(app, host, port, times)
        return
    workers = app.config["WORKERS"]
    commands = {
        "scheduler": [sys.executable, "-m", "flask", "--app", "app", "scheduler"],
        "web": [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"{host}:{port}",
                "--chdir", ROOT, "--access-logfile", "-", "--graceful-timeout", "10", "app:app"],
    }
    click.echo(f"Serving with gunicorn ({workers} worker(s)) and one scheduler process: sweep at {times} "
               f"({app.config['TIMEZONE']}), reminders, notifications, label files.")
    _say_where(host, port)
    # /metrics adds up the request latencies of every worker through files in this folder (prometheus_client).
    metrics_dir = tempfile.mkdtemp(prefix="tracker-metrics-")
    try:
        status = supervise(commands, cwd=ROOT, env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": metrics_dir})
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)
    sys.exit(status)


def _say_where(host: str, port: int) -> None:
    click.echo(f"Open http://{host}:{port}/ and sign in (first admin: admin@example.com, password printed "
               "when it was created; `flask --app app users create` adds more).")
    click.echo("Press Ctrl+C to stop.")


def _serve_dev(app: Flask, host: str, port: int, times: str) -> None:
    from werkzeug.serving import run_simple

    sched = scheduler.start(app, blocking=False)
    click.echo(f"Development server (not for production). Scheduler running in this process: sweep at {times} "
               f"({app.config['TIMEZONE']}), reminders, notifications, label files.")
    _say_where(host, port)
    try:
        run_simple(host, port, app, threaded=True, use_reloader=False)
    finally:
        scheduler.stop(sched)


def _interrupt(_signum, _frame) -> None:
    """SIGTERM (systemd, kill) stops as Ctrl+C does; a second signal (Ctrl+C reaches every process of the terminal,
    then the supervisor sends SIGTERM) is ignored, so the clean-up it started is not cut short."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise KeyboardInterrupt


def supervise(commands: dict[str, list[str]], cwd: str | None = None, env: dict | None = None,
              stop_after: float = 15.0) -> int:
    """Start each command as a process and wait; when one ends, or on Ctrl+C (SIGINT) or SIGTERM, stop the others
    (SIGTERM, then SIGKILL after `stop_after` seconds). The exit status is the first ended process's, or 0."""
    procs = {name: subprocess.Popen(cmd, cwd=cwd, env=env) for name, cmd in commands.items()}  # noqa: S603 - our commands
    previous = signal.signal(signal.SIGTERM, _interrupt), signal.signal(signal.SIGINT, _interrupt)
    status = 0
    try:
        while True:
            ended = [(name, p.returncode) for name, p in procs.items() if p.poll() is not None]
            if ended:
                name, status = ended[0]
                click.echo(f"The {name} process stopped (status {status}); stopping the rest.", err=True)
                break
            with contextlib.suppress(subprocess.TimeoutExpired):  # wake up twice a second to look at all
                next(iter(procs.values())).wait(timeout=0.5)
    except KeyboardInterrupt:
        status = 0
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.terminate()
        for p in procs.values():
            try:
                p.wait(timeout=stop_after)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])
    return status


@click.command("labels", help="Write label files: PDF sheets, a PNG per label, or Brother QL raster.")
@click.option("--layout", "layout_name", default="jp-24", show_default=True,
              help="Layout name (see --list) or custom:page=210x297,label=50x30,grid=3x8,margin=10x12,pitch=60x34")
@click.option("--tag", "tags", multiple=True, help="Asset tag of an item to print; repeat for more.")
@click.option("--all", "all_items", is_flag=True, help="Every item in service.")
@click.option("--out", "out_dir", default=None, help="Output folder (default: TRACKER_LABELS_DIR, labels/).")
@click.option("--format", "fmt", type=click.Choice(["auto", "pdf", "png", "ql"]), default="auto", show_default=True,
              help="auto: PDF for sheets, PNG for label printers.")
@click.option("--start-at", default=1, show_default=True, help="First free label on a part-used sheet.")
@click.option("--show-name", is_flag=True, default=None, help="Print item names (off by default: labels reveal nothing).")
@click.option("--send", is_flag=True, help="Send QL raster to TRACKER_LABEL_PRINTER instead of writing files.")
@click.option("--list", "list_layouts", is_flag=True, help="List the layouts and exit.")
@with_appcontext
def labels_cmd(layout_name, tags, all_items, out_dir, fmt, start_at, show_name, send, list_layouts):
    if list_layouts:
        for layout in layouts.LAYOUTS.values():
            click.echo(f"{layout.name:14} {layout.title}  [{layout.fits}]")
        return
    if bool(tags) == bool(all_items):
        raise click.UsageError("give --tag TAG (one or more) or --all")
    try:
        layout = layouts.get(layout_name)
    except DomainError as err:
        _fail(err)
    per_sheet = layout.per_page if isinstance(layout, layouts.Sheet) else 1
    if not 1 <= start_at <= per_sheet:
        raise click.BadParameter(f"must be between 1 and {per_sheet} for {layout.name}", param_hint="--start-at")
    cfg = current_app.config
    opts = service.options_from(cfg, show_name)
    with _session() as s:
        stmt = select(Item).where(Item.retired_at.is_(None)).order_by(Item.asset_tag)
        if tags:
            wanted = [t.strip().upper() for t in tags]
            found = set(s.scalars(select(Item.asset_tag).where(Item.asset_tag.in_(wanted))))
            missing = [t for t in wanted if t not in found]
            if missing:
                raise click.ClickException("no item with tag: " + ", ".join(missing))
            stmt = select(Item).where(Item.asset_tag.in_(wanted)).order_by(Item.asset_tag)
        data = service.label_data(s, stmt, opts)
        if send:
            if not cfg.get("LABEL_PRINTER") or not isinstance(layout, layouts.Printer):
                raise click.ClickException("--send needs a Brother QL layout and TRACKER_LABEL_PRINTER")
            raster = render.ql_raster(list(data), layout, cfg["LABEL_PRINTER_MODEL"])
            render.send_to_printer(raster, cfg["LABEL_PRINTER"], cfg["LABEL_PRINTER_MODEL"])
            service.mark_printed(s, clock.now(), s.scalars(select(stmt.subquery().c.id)).all())
            s.commit()
            click.echo(f"Sent {len(raster)} bytes to {cfg['LABEL_PRINTER']}.")
            return
        try:
            written = service.write_files(data, layout, out_dir or cfg["LABELS_DIR"], fmt, start_at,
                                          progress=lambda n: click.echo(f"  {n} labels", err=True))
        except ValueError as exc:
            raise click.ClickException(str(exc)) from None
        service.mark_printed(s, clock.now(), s.scalars(select(stmt.subquery().c.id)).all())
        s.commit()
    for path in written:
        click.echo(path)


def run_scheduler(app: Flask) -> None:
    """The scheduler in the foreground, until Ctrl+C (or SIGTERM)."""
    click.echo(f"Scheduler: sweep at {', '.join(t.strftime('%H:%M') for t in scheduler.sweep_times(app))} "
               f"({app.config['TIMEZONE']}), each site at its own day end; the one holding the database lease runs the jobs, any other stands by "
               "and takes over when it stops; Ctrl+C to stop.")
    previous = signal.signal(signal.SIGTERM, _interrupt), signal.signal(signal.SIGINT, _interrupt)
    try:
        scheduler.start(app, blocking=True)
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        signal.signal(signal.SIGTERM, previous[0])
        signal.signal(signal.SIGINT, previous[1])


def sweep_now(app: Flask, now_text: str | None, site_name: str | None = None) -> None:
    """One sweep by hand, at the clock's time or a given one, of the main office or of the site named."""
    moment = clock.now()
    if now_text:
        try:
            moment = datetime.fromisoformat(now_text)
        except ValueError:
            raise click.BadParameter("use ISO 8601, e.g. 2026-06-01T19:00:00+09:00", param_hint="--now") from None
        if moment.tzinfo is None:
            raise click.BadParameter("give a UTC offset, e.g. +09:00", param_hint="--now")
    site_id = None
    if site_name:
        with app.extensions["tracker.read_sessionmaker"]() as s:
            site_id = s.scalar(select(Site.id).where(Site.name == site_name.strip()))
        if site_id is None:
            raise click.BadParameter(f"no site is called {site_name!r}", param_hint="--site")
    result = jobs.run_sweep(app, moment, site_id=site_id)
    click.echo(f"Sweep for {result.business_date}: {len(result.flags)} check-out(s) flagged.")
    for flag in result.flags:
        co = flag.checkout
        click.echo(f"  {co.item.asset_tag}  {co.holder.email}  due {co.due_at.isoformat()}")


@click.command("backup", help="Copy the live database to DEST (a file, or a folder for a dated file): SQLite through "
                             "its online backup API while the app runs, PostgreSQL through pg_dump (custom format; "
                             "restore with pg_restore). The copy holds personal data: it is written readable by its "
                             "owner only.")
@click.argument("dest", type=click.Path(file_okay=True, dir_okay=True, writable=True))
@with_appcontext
def backup_cmd(dest):
    try:
        path = ops_backup.backup(current_app.config["DATABASE_URL"], dest, clock.now())
    except (ops_backup.BackupError, sqlite3.Error, OSError) as err:
        raise click.ClickException(f"No backup written: {err}") from None
    click.echo(f"Backup written to {path}.")


api_token_cli = AppGroup("api-token", help="Personal API tokens (Authorization: Bearer ...).")


@api_token_cli.command("create", help="Make an API token for the user with this e-mail address and print it once; "
                                      "only its hash is kept.")
@click.argument("email")
@click.option("--name", default="cli", show_default=True, help="What the token is for.")
@click.option("--scopes", default="read", show_default=True, help="Comma list of read, act, admin.")
@click.option("--days", default=api_tokens.DEFAULT_DAYS, show_default=True, type=int, help="Days until it expires.")
def api_token_create(email, name, scopes, days):
    with _session() as s:
        user = users.find_by_email(s, email)
        if user is None:
            raise click.ClickException(f"No user has the e-mail address {email}.")
        try:
            issued = api_tokens.create(s, clock.now(), user=user, actor=None, name=name, scopes=scopes, days=days,
                                       source="cli")
        except DomainError as err:
            _fail(err)
        s.commit()
        click.echo(f"API token for {user.email} ({issued.token.scopes}), expires {issued.token.expires_at:%Y-%m-%d}:")
        click.echo(issued.secret)
        click.echo("Shown once: keep it in a secret store. Send it as 'Authorization: Bearer <token>'.")


def init_app(app: Flask) -> None:
    for command in (db_cli, users_cli, items_cli, audit_cli, api_token_cli, demo_cmd, bootstrap_cmd, labels_cmd,
                    backup_cmd):
        app.cli.add_command(command)

    # These run the app itself (in threads, or for as long as the process lives), so they close over it.
    @app.cli.command("serve", help="Set up the database, then serve with gunicorn (TRACKER_WORKERS workers on "
                                   "TRACKER_HOST:TRACKER_PORT) and one scheduler process, until Ctrl+C.")
    @click.option("--dev", is_flag=True, help="Flask's development server with the scheduler in a thread instead "
                                              "(never in production).")
    def serve_cmd(dev):
        serve(app, dev)

    @app.cli.command("scheduler", help="Run the scheduler (day-end sweep, reminders, notifications, label files) in the "
                                       "foreground.")
    def scheduler_cmd():
        run_scheduler(app)

    @app.cli.command("sweep", help="Run a sweep now: flag every check-out past its due time and notify.")
    @click.option("--now", "now_text", default=None, help="Pretend it is this time (ISO 8601 with offset).")
    @click.option("--site", "site_name", default=None, help="The site to sweep, by name (default: the main office).")
    def sweep_cmd(now_text, site_name):
        sweep_now(app, now_text, site_name)

