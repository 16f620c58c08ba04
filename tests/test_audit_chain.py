"""The audit trail as a hash chain: numbered and linked events, racing writers, tampering caught, checkpoints kept
outside the database, retention, shipping to a SIEM, and the events for refusals and exports."""

from __future__ import annotations

import importlib.util
import json
import socket
import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, update

from tests.helpers import NOW, client_for, count, post
from tests.listeners import SmtpServer
from tracker import audit, jobs, trail
from tracker.audit import GENESIS, digest
from tracker.custody import operations as custody
from tracker.models import AuditCheck, AuditHead, Event, Kind

pytestmark = pytest.mark.usefixtures("english")
MIGRATION = Path(__file__).resolve().parent.parent / "migrations" / "versions" / "0007_audit_chain.py"


def write(session, n: int, action: str = "test_event", at=NOW, **data) -> None:
    for i in range(n):
        audit.record(session, at + timedelta(seconds=i), action, source="192.0.2.1", n=i, **data)
    session.commit()


def chain(session) -> list[Event]:
    session.expire_all()
    return list(session.scalars(select(Event).order_by(Event.seq)))


# --- 1. the chain ------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_events_are_numbered_and_each_hash_covers_the_previous_one(session):
    write(session, 5, note="注記 <b>")
    audit.record_many(session, NOW, "bulk", actor=None, source=None, items=[])
    events = chain(session)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5]
    assert events[0].prev_hash == GENESIS
    for before, ev in zip([None, *events], events, strict=False):
        assert ev.prev_hash == (before.hash if before else GENESIS)
        assert ev.hash == digest(ev.prev_hash, ev) and len(ev.hash) == 64
    head = session.get(AuditHead, 1)
    assert (head.seq, head.hash) == (5, events[-1].hash)
    result = trail.verify(session)
    assert result.ok and result.events == 5 and result.head_hash == events[-1].hash


def test_the_migration_hashes_as_the_app_does(session):
    """Events written before the chain existed are hashed by the migration with its own copy of the form."""
    spec = importlib.util.spec_from_file_location("m0007", MIGRATION)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    write(session, 3, who="山田")
    for ev in chain(session):
        assert module._canonical_v1(ev) == audit.canonical(ev)


@pytest.mark.postgres
def test_racing_writers_never_fork_the_chain_or_reuse_a_number(app, new_app):
    """Four workers (separate apps, as gunicorn's processes) and two threads each append at the same moment."""
    apps = [app, *[new_app() for _ in range(3)]]
    start = threading.Barrier(len(apps) * 2)
    errors: list[BaseException] = []

    def worker(a, k):
        try:
            start.wait(timeout=30)
            for i in range(15):
                with a.extensions["tracker.sessionmaker"]() as s:
                    audit.record(s, NOW + timedelta(microseconds=i), "race", source=f"w{k}", i=i)
                    s.commit()
        except BaseException as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=worker, args=(a, k)) for k, a in enumerate(apps * 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    with app.extensions["tracker.sessionmaker"]() as s:
        seqs = list(s.scalars(select(Event.seq).order_by(Event.seq)))
        assert seqs == list(range(1, 8 * 15 + 1))
        assert trail.verify(s).ok


@pytest.mark.postgres
def test_a_change_and_its_event_commit_together_and_a_rollback_leaves_the_chain_as_it_was(session, make_user,
                                                                                            make_item):
    staff, item = make_user(), make_item()
    write(session, 2)
    before = session.get(AuditHead, 1).seq
    custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=NOW + timedelta(hours=2),
                      handling_ack=True)
    assert session.get(AuditHead, 1).seq == before + 1  # numbered in the transaction...
    session.rollback()
    assert session.get(AuditHead, 1).seq == before and count(session, Event) == before  # ...and undone with it
    write(session, 1)
    assert [e.seq for e in chain(session)] == list(range(1, before + 2)) and trail.verify(session).ok


# --- 2. tampering, done directly in the database, each caught -----------------------------------------------------


@pytest.fixture
def trail10(session):
    write(session, 10, who="someone")
    return session


def broken(session, checkpoints=()):
    session.expire_all()
    result = trail.verify(session, list(checkpoints))
    assert not result.ok
    return result


@pytest.mark.postgres
def test_an_edited_event_is_caught(trail10):
    trail10.execute(update(Event).where(Event.seq == 4).values(data='{"who": "someone else"}'))
    trail10.commit()
    result = broken(trail10)
    assert result.at_seq == 4 and "edited" in result.problem


@pytest.mark.postgres
def test_an_edited_time_is_caught(trail10):
    trail10.execute(update(Event).where(Event.seq == 6).values(at=NOW - timedelta(days=1)))
    trail10.commit()
    assert broken(trail10).at_seq == 6


@pytest.mark.postgres
def test_a_deleted_event_is_caught(trail10):
    trail10.execute(delete(Event).where(Event.seq == 5))
    trail10.commit()
    result = broken(trail10)
    assert result.at_seq == 5 and "missing" in result.problem


@pytest.mark.postgres
def test_an_inserted_event_is_caught_even_with_a_correct_hash_of_its_own(trail10):
    """Someone makes room at #5 and writes an event there, hashed properly on #4: event #6 no longer links."""
    four = trail10.scalars(select(Event).where(Event.seq == 4)).one()
    trail10.execute(update(Event).where(Event.seq >= 5).values(seq=Event.seq + 1000))
    trail10.execute(update(Event).where(Event.seq >= 1005).values(seq=Event.seq - 999))
    forged = {"at": NOW, "action": "checkout", "actor_id": None, "item_id": None, "checkout_id": None,
              "subject_user_id": None, "source": "10.0.0.1", "data": "{}", "seq": 5, "prev_hash": four.hash}
    forged["hash"] = digest(four.hash, forged)
    trail10.execute(Event.__table__.insert(), [forged])
    trail10.commit()
    result = broken(trail10)
    assert result.at_seq == 6 and "link" in result.problem


@pytest.mark.postgres
def test_reordered_events_are_caught(trail10):
    trail10.execute(update(Event).where(Event.seq == 3).values(seq=-3))
    trail10.execute(update(Event).where(Event.seq == 7).values(seq=3))
    trail10.execute(update(Event).where(Event.seq == -3).values(seq=7))
    trail10.commit()
    assert broken(trail10).at_seq == 3


@pytest.mark.postgres
def test_an_event_written_around_the_app_is_caught(trail10):
    trail10.execute(Event.__table__.insert(), [{"at": NOW, "action": "return", "source": None, "data": "{}",
                                                "seq": 11, "prev_hash": "f" * 64, "hash": "e" * 64}])
    trail10.commit()
    result = broken(trail10)
    assert result.at_seq == 11 and "link" in result.problem


@pytest.mark.postgres
def test_events_cut_off_the_end_are_caught_by_the_head(trail10):
    trail10.execute(delete(Event).where(Event.seq > 8))
    trail10.commit()
    result = broken(trail10)
    assert "cut off" in result.problem


@pytest.mark.postgres
def test_a_cut_end_with_a_rewritten_head_is_caught_by_the_checkpoint(trail10):
    cp = trail.head_checkpoint(trail10, NOW)
    last = trail10.scalars(select(Event).where(Event.seq == 7)).one()
    trail10.execute(delete(Event).where(Event.seq > 7))
    trail10.execute(update(AuditHead).values(seq=7, hash=last.hash))
    trail10.commit()
    assert trail.verify(trail10).ok  # the database alone cannot tell
    result = broken(trail10, [cp])
    assert "checkpoint" in result.problem and "#10" in result.problem


@pytest.mark.postgres
def test_a_wholly_rewritten_chain_is_caught_by_the_checkpoint(trail10):
    cp = trail.head_checkpoint(trail10, NOW)
    trail10.execute(update(Event).where(Event.seq == 2).values(data='{"who": "nobody"}'))
    prev = GENESIS
    for ev in chain(trail10):  # recompute every hash, as a careful forger would
        ev.prev_hash, ev.hash = prev, digest(prev, ev)
        prev = ev.hash
    trail10.execute(update(AuditHead).values(hash=prev))
    trail10.commit()
    assert trail.verify(trail10).ok
    result = broken(trail10, [cp])
    assert result.at_seq == 10 and "rewritten" in result.problem


# --- 2. the command, the daily checkpoint and what the desk sees ------------------------------------------------


def test_audit_verify_prints_ok_with_the_count_and_head_or_the_first_broken_event(app, runner, session, tmp_path):
    write(session, 4)
    head = session.get(AuditHead, 1)
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 0, result.output
    assert f"OK: 4 events verified, head #4 {head.hash}" in result.output
    session.rollback()  # end the read: on SQLite a write cannot start from an older snapshot
    session.execute(update(Event).where(Event.seq == 2).values(action="return"))
    session.commit()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert "BROKEN at event #2" in result.output and "edited" in result.output
    assert not session.scalars(select(AuditCheck).order_by(AuditCheck.id.desc())).first().ok


def test_the_daily_check_writes_a_checkpoint_outside_the_database_and_mails_it(app, new_app, session, tmp_path):
    path = tmp_path / "elsewhere" / "checkpoints.jsonl"
    with SmtpServer() as smtp:
        mailer = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, AUDIT_CHECKPOINT_FILE=str(path),
                         AUDIT_CHECKPOINT_MAIL="auditor@elsewhere.example")
        write(session, 3)
        assert jobs.run_audit_check(mailer, NOW).ok
        write(session, 2, at=NOW + timedelta(days=1))
        assert jobs.run_audit_check(mailer, NOW + timedelta(days=1)).ok
        (first, second) = trail.read_checkpoints(str(path))
        assert (first.seq, second.seq) == (3, 5)
        (mail, _) = smtp.inbox.to("auditor@elsewhere.example")[:2] or (None, None)
        assert mail is not None and "OK" in str(mail["Subject"])
        assert first.line() in mail.get_content()
    # Verifying against the file: the trail is cut back to 4 with a matching head: caught.
    session.rollback()
    four = session.scalars(select(Event).where(Event.seq == 4)).one()
    session.execute(delete(Event).where(Event.seq == 5))
    session.execute(update(AuditHead).values(seq=4, hash=four.hash))
    session.commit()
    result = app.test_cli_runner().invoke(args=["audit", "verify", "--checkpoint", str(path)])
    assert result.exit_code == 1 and "#5" in result.output


def test_the_records_page_shows_the_last_verification(app, session, make_user):
    desk = client_for(app, make_user("security"))
    assert "Not verified yet" in desk.get("/desk/records/").get_data(as_text=True)
    write(session, 2)
    jobs.run_audit_check(app, NOW)
    page = desk.get("/desk/records/").get_data(as_text=True)
    assert f"intact, {count(session, Event)} events" in page and session.get(AuditHead, 1).hash in page
    session.rollback()
    session.execute(update(Event).where(Event.seq == 1).values(source="203.0.113.9"))
    session.commit()
    jobs.run_audit_check(app, NOW + timedelta(days=1))
    page = desk.get("/desk/records/").get_data(as_text=True)
    assert "tampered with or damaged" in page and "BROKEN at event #1" in page


# --- 3. retention and shipping ----------------------------------------------------------------------------------


@pytest.mark.postgres
def test_retention_removes_only_what_is_older_and_the_rest_still_verifies(session):
    old = NOW - timedelta(days=int(5.2 * 365))
    young = NOW - timedelta(days=int(4.9 * 365))
    write(session, 3, at=old)
    write(session, 2, at=young)
    write(session, 1)
    assert trail.purge(session, NOW, 5) == 3
    session.commit()
    assert [e.seq for e in chain(session)] == [4, 5, 6]
    assert trail.verify(session).ok
    assert trail.purge(session, NOW, 5) == 0  # nothing younger, ever
    with pytest.raises(ValueError):
        trail.purge(session, NOW, 0.5)


def test_committed_events_are_shipped_as_json_lines_and_rolled_back_ones_are_not(new_app, tmp_path):
    siem = tmp_path / "siem.jsonl"
    app = new_app(AUDIT_SIEM_FILE=str(siem))
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as s:
        audit.record(s, NOW, "kept", source="192.0.2.7", who="山田")
        s.commit()
        audit.record(s, NOW, "undone")
        s.rollback()
    lines = [json.loads(line) for line in siem.read_text(encoding="utf-8").splitlines()]
    assert [(e["action"], e["seq"]) for e in lines] == [("kept", 1)]
    with maker() as s:
        ev = s.scalars(select(Event)).one()
        assert lines[0]["hash"] == ev.hash and lines[0]["prev_hash"] == GENESIS
        assert lines[0]["data"] == {"who": "山田"} and lines[0]["source"] == "192.0.2.7"


def test_committed_events_reach_a_syslog_listener(new_app):
    listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    listener.bind(("127.0.0.1", 0))
    listener.settimeout(10)
    try:
        app = new_app(AUDIT_SYSLOG=f"udp://127.0.0.1:{listener.getsockname()[1]}")
        with app.extensions["tracker.sessionmaker"]() as s:
            audit.record(s, NOW, "signin", source="192.0.2.8")
            s.commit()
        message = listener.recv(65536).decode("utf-8")
        for ship in app.extensions["tracker.audit_shippers"]:
            ship.close()
    finally:
        listener.close()
    assert message.startswith("<14>tracker-audit: ")  # facility user, severity info
    event = json.loads(message.split(": ", 1)[1])
    assert event["action"] == "signin" and event["seq"] == 1 and len(event["hash"]) == 64


# --- 1. refusals and exports are events ---------------------------------------------------------------------------


def test_refused_actions_and_exports_are_in_the_trail(app, session, make_user, make_item):
    staff, desk = make_user(), make_user("security")
    item = make_item(Kind.usb)
    client = client_for(app, staff)
    assert client.get("/admin/users/").status_code == 403
    page = f"/items/{item.asset_tag}"
    resp = post(client, f"{page}/checkout", {}, page=page)  # the handling rules were not ticked
    assert resp.status_code in (302, 303, 400)
    assert count(session, Event, Event.action == "checkout") == 0
    refused = session.scalars(select(Event).where(Event.action == "refused").order_by(Event.seq)).all()
    assert [r.actor_id for r in refused] == [staff.id] * len(refused) and len(refused) >= 2
    reasons = [json.loads(r.data) for r in refused]
    assert reasons[0]["reason"] == "not permitted" and reasons[0]["path"] == "/admin/users/"
    assert any(r["endpoint"] == "custody.checkout" and r["method"] == "POST" for r in reasons[1:]), reasons
    dc = client_for(app, desk)
    assert dc.get("/desk/records/register.csv").status_code == 200
    assert dc.get("/desk/records/checkouts.csv?from=2026-06-01&to=2026-06-02").status_code == 200
    session.rollback()  # a fresh snapshot: the downloads were recorded by the requests
    exports = [json.loads(e.data) for e in session.scalars(select(Event).where(Event.action == "export"))]
    assert [e["export"] for e in exports] == ["register.csv", "checkouts.csv"]
    assert session.scalar(select(func.count()).select_from(Event).where(Event.action == "export",
                                                                        Event.actor_id == desk.id)) == 2
    assert trail.verify(session).ok


def test_events_written_in_bulk_keep_their_moment_like_every_other_time(session, make_item):
    """A sweep writes its events in bulk. On the second exactly, they are stored as every other time is (with
    microseconds on SQLite), so "the events since the check-out" finds the one of that very moment."""
    item = make_item()
    moment = NOW.replace(microsecond=0) + timedelta(hours=1)
    audit.record_rows(session, moment, "flagged", actor=None, source=None, rows=[{"item_id": item.id, "data": {}}])
    audit.record(session, moment, "found_scan", item=item)
    session.commit()
    since = session.scalars(select(Event.action).where(Event.item_id == item.id, Event.at >= moment)).all()
    assert sorted(since) == ["flagged", "found_scan"]
