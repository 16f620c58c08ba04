"""Migrations go down and up again on a database that holds data of every kind."""

from __future__ import annotations

from datetime import timedelta

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import func, select, text

from tests.helpers import NOW
from tracker import migrate
from tracker.custody import approvals, found
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import flags, incidents, sweep
from tracker.models import Department, Flag, Item, LabelToken, StoragePlace

pytestmark = pytest.mark.postgres  # each database alters tables its own way


@pytest.fixture
def populated(app, session, make_user, make_item):
    """A check-out, an approval request, a flag marked lost with its incident, a finder's scan and message."""
    staff, desk = make_user(), make_user("security")
    laptop, usb, folder, spare = make_item(), make_item("usb"), make_item("folder"), make_item()
    for item in (laptop, usb):
        custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=NOW + timedelta(hours=2),
                          handling_ack=True)
    approvals.request_checkout(session, NOW, item=folder, holder=staff, due_at=NOW + timedelta(days=2), purpose="p",
                             destination="d", reason="trip", policy=Policy(approval_required=True), handling_ack=True)
    flagged = sweep.sweep(session, NOW + timedelta(hours=3), Policy()).flags
    incident = flags.mark_lost(session, NOW + timedelta(hours=4), flagged[0], desk, "gone")
    incidents.add_action(session, NOW + timedelta(hours=4), incident, desk, "called the station")
    label = session.scalar(select(LabelToken).where(LabelToken.item_id == spare.id))
    found.record_scan(session, NOW, label, "198.51.100.1")
    found.leave_message(session, NOW, label, "found on a bench", "", "198.51.100.1")
    _stocktake(app, session, desk, spare)
    session.commit()
    session.close()


def _stocktake(app, session, desk, counted) -> None:
    """A closed stock-take with its counts, a missing item's flag (no check-out) and the incident opened from it."""
    from tracker.stocktake import report, sessions

    st = sessions.open_stocktake(session, NOW, desk, "all")
    sessions.count(session, NOW, st, counted, desk, "scanner")
    with app.test_request_context():
        sessions.close(session, NOW + timedelta(hours=1), st, desk, report.render)
    missing = session.scalars(select(Flag).where(Flag.stocktake_id == st.id)).first()
    flags.mark_lost(session, NOW + timedelta(hours=2), missing, desk, "not in the cabinet")


def _down_to_before(app, db_url: str, doc: str):
    """Take the test's database down to just before the migration whose description starts with `doc`: the Alembic
    config and the app's engine (its connections closed), to look around and upgrade again."""
    cfg = migrate.alembic_config(db_url)
    made = next(r for r in ScriptDirectory.from_config(cfg).walk_revisions() if r.doc.startswith(doc))
    engine = app.extensions["tracker.engine"]
    engine.dispose()
    command.downgrade(cfg, made.down_revision)
    return cfg, engine


def test_every_migration_goes_down_and_up_on_a_populated_database(app, populated, db_url):
    cfg = migrate.alembic_config(db_url)
    revisions = [r.revision for r in ScriptDirectory.from_config(cfg).walk_revisions()]  # newest first
    app.extensions["tracker.engine"].dispose()
    try:
        for target in [*revisions[1:], "base"]:
            command.downgrade(cfg, target)
    finally:
        command.upgrade(cfg, "head")
    with app.extensions["tracker.sessionmaker"]() as s:
        assert s.scalar(select(func.count(Item.id))) == 0  # the first migration's downgrade dropped the register


def test_free_text_departments_become_records_and_come_back_on_downgrade(app, session, make_item, db_url):
    sales, sales2, hr, none = (make_item(department="営業部"), make_item(department="営業部"), make_item(department="HR"),
                               make_item())
    session.close()
    cfg, engine = _down_to_before(app, db_url, "departments as records")
    with engine.begin() as conn:
        assert dict(conn.execute(text("SELECT asset_tag, department FROM items")).all()) == {
            sales.asset_tag: "営業部", sales2.asset_tag: "営業部", hr.asset_tag: "HR", none.asset_tag: None}
        # free text as people typed it: a full-width spelling and a trailing space are the same department
        conn.execute(text("UPDATE items SET department = 'ＨＲ ' WHERE asset_tag = :tag"), {"tag": sales2.asset_tag})
    engine.dispose()
    command.upgrade(cfg, "head")
    with app.extensions["tracker.sessionmaker"]() as s:
        assert s.scalars(select(Department.name).order_by(Department.name)).all() == ["HR", "営業部"]
        by_tag = {i.asset_tag: i.department for i in s.scalars(select(Item))}
        assert by_tag == {sales.asset_tag: "営業部", sales2.asset_tag: "HR", hr.asset_tag: "HR", none.asset_tag: None}


def test_typed_storage_places_become_main_office_places_and_come_back_on_downgrade(app, session, make_item,
                                                                                  make_place, db_url):
    cabinet = make_place("Cabinet B-2")
    in_cabinet, in_cabinet2, nowhere = (make_item(home_place_id=str(cabinet.id)),
                                        make_item(home_place_id=str(cabinet.id)), make_item())
    session.close()
    cfg, engine = _down_to_before(app, db_url, "storage places as records chosen on items")
    with engine.begin() as conn:
        assert dict(conn.execute(text("SELECT asset_tag, storage_place FROM items")).all()) == {
            in_cabinet.asset_tag: "Cabinet B-2", in_cabinet2.asset_tag: "Cabinet B-2", nowhere.asset_tag: None}
        # free text as people typed it: a full-width spelling and spaces are the same place; a new one is made
        conn.execute(text("UPDATE items SET storage_place = ' Ｃａｂｉｎｅｔ B-2 ' WHERE asset_tag = :tag"),
                     {"tag": in_cabinet2.asset_tag})
        conn.execute(text("UPDATE items SET storage_place = '金庫' WHERE asset_tag = :tag"), {"tag": nowhere.asset_tag})
    engine.dispose()
    command.upgrade(cfg, "head")
    with app.extensions["tracker.sessionmaker"]() as s:
        places = {p.name: p for p in s.scalars(select(StoragePlace))}
        assert sorted(places) == ["Cabinet B-2", "金庫"] and {p.site_id for p in places.values()} == {None}
        assert places["Cabinet B-2"].id == cabinet.id  # the existing record, not a copy
        homes = {i.asset_tag: i.home_place_id for i in s.scalars(select(Item))}
        assert homes == {in_cabinet.asset_tag: cabinet.id, in_cabinet2.asset_tag: cabinet.id,
                         nowhere.asset_tag: places["金庫"].id}


def test_the_chains_head_learns_which_actions_the_active_webhooks_listen_to(app, session, make_user, db_url):
    from tracker.notify import hooks

    admin = make_user("admin")
    hooks.create(session, NOW, name="SIEM", url="https://siem.example.com/in", events=["return", "checkout"],
                 actor=admin)
    off = hooks.create(session, NOW, name="Old", url="https://old.example.com/in", events=["user_disabled"],
                       actor=admin)
    hooks.set_active(session, NOW, off, False, actor=admin)
    session.commit()
    session.close()
    cfg, engine = _down_to_before(app, db_url, "the chain's head names the audit actions")
    command.upgrade(cfg, "head")
    with engine.begin() as conn:
        assert conn.execute(text("SELECT listened FROM audit_head")).scalar() == "checkout,return"
