"""Stock-takes (棚卸) as rules: every list of the reconciliation, scopes, counting once, closing once with flags
for what is missing and a report whose hash the trail keeps; the desk's work on those flags."""

from __future__ import annotations

import hashlib
import json
import threading

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, later
from tracker.custody import operations as custody
from tracker.desk import flags
from tracker.errors import InvalidInput, NotPermitted
from tracker.items import register
from tracker.models import Event, Flag, FlagStatus, Incident, Item, StockCount, StockTake
from tracker.stocktake import reconcile, report, sessions


@pytest.fixture
def ctx(app):
    """Reports are written in the closer's language: English here."""
    with app.test_request_context(headers={"Accept-Language": "en"}):
        yield


@pytest.fixture
def desk(make_user):
    return make_user("security", name="Desk Sato")


def home(session, item: Item, place=None, site=None, department_id=None) -> Item:
    item.home_place_id = place.id if place is not None else None
    item.site_id = site.id if site is not None else (place.site_id if place is not None else None)
    if department_id is not None:
        item.department_id = department_id
    session.commit()
    return item


def tags(lines) -> set[str]:
    return {x.tag for x in lines}


def close(session, st, actor, at=None):
    done = sessions.close(session, at or later(hours=2), st, actor, report.render)
    session.commit()
    return done


def test_every_list_of_a_place_stocktake(session, ctx, desk, make_user, make_item, make_place):
    cabinet, safe = make_place("Cabinet A"), make_place("Safe B")
    holder = make_user(name="Holder Ito")
    counted, missing, out, disposed, retired, moved = (home(session, make_item(), cabinet) for _ in range(6))
    stranger = home(session, make_item(), safe)
    custody.check_out(session, NOW, item=out, holder=holder, actor=holder, due_at=later(hours=8), handling_ack=True)
    register.dispose(session, NOW, disposed, desk, method="destroyed")
    register.retire(session, NOW, retired, desk)
    session.commit()
    st = sessions.open_stocktake(session, NOW, desk, "place", cabinet.id)
    for item in (counted, stranger):
        sessions.count(session, later(minutes=5), st, item, desk, "scanner")
    sessions.count(session, later(minutes=6), st, moved, desk, "typed", place_id=safe.id)
    session.commit()

    rec = reconcile.reconcile(session, st)
    assert rec.expected == 4  # counted, missing, out, moved: not the disposed or retired ones
    assert tags(rec.counted) == {counted.asset_tag, moved.asset_tag}
    assert tags(rec.missing) == {missing.asset_tag}
    assert [(x.tag, x.holder, x.due_at) for x in rec.out] == [(out.asset_tag, "Holder Ito", later(hours=8))]
    assert tags(rec.disposed) == {disposed.asset_tag}
    why = {x.tag: x.why for x in rec.unexpected}
    assert why == {stranger.asset_tag: reconcile.OUT_OF_SCOPE, moved.asset_tag: reconcile.OTHER_PLACE}
    assert rec.accounted == 3
    line = next(x for x in rec.counted if x.tag == counted.asset_tag)
    assert (line.counted_by, line.counted_at, line.method, line.found_place) == ("Desk Sato", later(minutes=5),
                                                                               "scanner", "Cabinet A")


def test_a_disposed_or_retired_item_counted_is_unexpected(session, desk, make_item):
    gone, idle = make_item(), make_item()
    register.dispose(session, NOW, gone, desk, method="destroyed")
    register.retire(session, NOW, idle, desk)
    st = sessions.open_stocktake(session, NOW, desk, "all")
    for item in (gone, idle):
        sessions.count(session, NOW, st, item, desk, "phone")
    rec = reconcile.reconcile(session, st)
    assert {x.tag: x.why for x in rec.unexpected} == {gone.asset_tag: reconcile.DISPOSED,
                                                      idle.asset_tag: reconcile.RETIRED}
    assert rec.counted == [] and rec.expected == 0


def test_scope_by_site_main_office_and_department(session, desk, make_item, make_site, make_department):
    osaka = make_site("Osaka")
    sales = make_department("Sales")
    in_osaka = home(session, make_item(), site=osaka)
    in_main = home(session, make_item())
    in_sales = home(session, make_item(), site=osaka, department_id=sales.id)
    expected = {
        ("site", osaka.id): {in_osaka.asset_tag, in_sales.asset_tag},
        ("site", None): {in_main.asset_tag},  # no site: the main office
        ("department", sales.id): {in_sales.asset_tag},
    }
    for (scope, target), want in expected.items():
        st = sessions.open_stocktake(session, NOW, desk, scope, target)
        assert tags(reconcile.reconcile(session, st).missing) == want, (scope, target)


def test_a_scan_twice_counts_once_and_sets_the_last_count(session, desk, make_user, make_item):
    other = make_user("admin", name="Admin Kato")
    item = make_item()
    st = sessions.open_stocktake(session, NOW, desk, "all")
    first, new = sessions.count(session, later(minutes=1), st, item, desk, "scanner")
    again, new_again = sessions.count(session, later(minutes=2), st, item, other, "phone")
    session.commit()
    assert (new, new_again) == (True, False)
    assert again.id == first.id and again.counted_by.name == "Desk Sato" and again.counted_at == later(minutes=1)
    assert session.scalar(select(func.count(StockCount.id))) == 1
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "stocktake_counted")) == 1
    session.refresh(item)
    assert item.last_counted_at == later(minutes=1)


def test_only_the_desk_opens_counts_and_closes(session, desk, make_user, make_item):
    staff = make_user()
    with pytest.raises(NotPermitted):
        sessions.open_stocktake(session, NOW, staff, "all")
    st = sessions.open_stocktake(session, NOW, desk, "all")
    with pytest.raises(NotPermitted):
        sessions.count(session, NOW, st, make_item(), staff, "phone")
    with pytest.raises(NotPermitted):
        sessions.close(session, NOW, st, staff, report.render)


def test_bad_scopes_are_refused(session, desk, make_place):
    with pytest.raises(InvalidInput):
        sessions.open_stocktake(session, NOW, desk, "floor")
    with pytest.raises(InvalidInput):
        sessions.open_stocktake(session, NOW, desk, "place", 999)
    with pytest.raises(InvalidInput):
        sessions.open_stocktake(session, NOW, desk, "department", None)


def test_closing_freezes_flags_missing_items_once_and_hashes_the_pdf(session, ctx, desk, make_item):
    there, gone1, gone2 = make_item(), make_item(), make_item()
    st = sessions.open_stocktake(session, NOW, desk, "all")
    sessions.count(session, later(minutes=1), st, there, desk, "typed")
    session.commit()
    close(session, st, desk)

    missing = session.scalars(select(Flag).where(Flag.stocktake_id == st.id).order_by(Flag.item_id)).all()
    assert [(f.item_id, f.reason, f.status, f.checkout_id) for f in missing] == [
        (gone1.id, "stocktake_missing", FlagStatus.open, None), (gone2.id, "stocktake_missing", FlagStatus.open, None)]
    event = session.scalars(select(Event).where(Event.action == "stocktake_closed")).one()
    data = json.loads(event.data)
    assert data["sha256"] == hashlib.sha256(st.report_pdf).hexdigest() == st.report_sha256
    assert (data["expected"], data["counted"], data["missing"]) == (3, 1, 2)
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "stocktake_missing")) == 2

    with pytest.raises(sessions.Closed):
        sessions.close(session, later(hours=3), st, desk, report.render)
    session.rollback()
    with pytest.raises(sessions.Closed):
        sessions.count(session, later(hours=3), st, gone1, desk, "scanner")
    session.rollback()
    assert session.scalar(select(func.count(Flag.id)).where(Flag.stocktake_id == st.id)) == 2

    # Frozen: the item counted afterwards elsewhere, or now checked out, does not change the closed result.
    register.retire(session, later(hours=4), there, desk)
    session.commit()
    rec = reconcile.thaw(session.get(StockTake, st.id).result)
    assert tags(rec.counted) == {there.asset_tag} and tags(rec.missing) == {gone1.asset_tag, gone2.asset_tag}


def test_the_desk_works_a_missing_items_flag(session, ctx, desk, make_item, make_place):
    shelf = make_place("Shelf 3")
    found, lost, called = (home(session, make_item(), shelf) for _ in range(3))
    st = sessions.open_stocktake(session, NOW, desk, "place", shelf.id)
    close(session, st, desk)
    by_item = {f.item_id: f for f in session.scalars(select(Flag).where(Flag.stocktake_id == st.id))}

    with pytest.raises(InvalidInput):  # nothing is due: no new due time
        flags.acknowledge(session, later(hours=3), by_item[called.id], desk, "asking around", new_due=later(days=1))
    session.rollback()
    flags.acknowledge(session, later(hours=3), by_item[called.id], desk, "asking around")
    flags.resolve(session, later(hours=3), by_item[found.id], desk, "found", note="behind the binders")
    incident = flags.mark_lost(session, later(hours=4), by_item[lost.id], desk, "not in the shelf")
    session.commit()
    assert by_item[called.id].status == FlagStatus.acknowledged
    assert (by_item[found.id].status, by_item[found.id].resolution) == (FlagStatus.resolved, "found")
    incident = session.get(Incident, incident.id)
    assert (incident.checkout_id, incident.holder_id, incident.last_known_place) == (None, None, "Shelf 3")
    shown, n = flags.missing_flags(session, 10)
    assert [f.item_id for f in shown] == [called.id] and n == 1


def _count_in_threads(app, stocktake_id: int, counters: list[int], item_ids: list[list[int]]) -> list[str]:
    """Each counter in its own thread, session and connection, counting its items as fast as it can."""
    maker = app.extensions["tracker.sessionmaker"]
    barrier = threading.Barrier(len(counters))
    errors: list[str] = []

    def run(user_id: int, ids: list[int]) -> None:
        from tracker.models import User

        barrier.wait()
        for item_id in ids:
            s = maker()
            try:
                sessions.count(s, NOW, s.get(StockTake, stocktake_id), s.get(Item, item_id), s.get(User, user_id),
                               "scanner")
                s.commit()
            except Exception as exc:  # pragma: no cover - reported in the assertion
                errors.append(repr(exc))
            finally:
                s.close()

    threads = [threading.Thread(target=run, args=(u, ids)) for u, ids in zip(counters, item_ids, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return errors


@pytest.mark.postgres
def test_many_counters_at_once_count_each_item_once(app, session, make_user, make_item):
    counters = [make_user("security") for _ in range(6)]
    items = [make_item() for _ in range(12)]
    st = sessions.open_stocktake(session, NOW, counters[0], "all")
    session.commit()
    # Each counter scans 8 of the 12 items, starting at a different one: every item is scanned four times.
    ids = [[items[(n * 2 + k) % 12].id for k in range(8)] for n in range(len(counters))]
    errors = _count_in_threads(app, st.id, [u.id for u in counters], ids)
    assert errors == []
    s = app.extensions["tracker.sessionmaker"]()
    counted = s.execute(select(StockCount.item_id, func.count()).where(StockCount.stocktake_id == st.id)
                        .group_by(StockCount.item_id)).all()
    assert sorted(counted) == sorted((i.id, 1) for i in items)
    assert s.scalar(select(func.count(Event.id)).where(Event.action == "stocktake_counted")) == 12
    s.close()


@pytest.mark.postgres
def test_a_count_racing_the_close_is_in_the_report_or_refused(app, session, desk, make_item):
    with app.test_request_context(headers={"Accept-Language": "en"}):
        items = [make_item() for _ in range(6)]
        st = sessions.open_stocktake(session, NOW, desk, "all")
        session.commit()
        maker = app.extensions["tracker.sessionmaker"]
        outcomes: list[str] = []
        barrier = threading.Barrier(2)

        def counting() -> None:
            barrier.wait()
            for item in items:
                s = maker()
                try:
                    sessions.count(s, NOW, s.get(StockTake, st.id), s.get(Item, item.id), s.get(type(desk), desk.id),
                                   "typed")
                    s.commit()
                    outcomes.append("counted")
                except sessions.Closed:
                    s.rollback()
                    outcomes.append("refused")
                finally:
                    s.close()

        thread = threading.Thread(target=counting)
        thread.start()
        barrier.wait()
        s = maker()
        with app.test_request_context(headers={"Accept-Language": "en"}):
            sessions.close(s, later(minutes=1), s.get(StockTake, st.id), s.get(type(desk), desk.id), report.render)
            s.commit()
        s.close()
        thread.join(60)
    s = maker()
    frozen = reconcile.thaw(s.get(StockTake, st.id).result)
    in_db = s.scalar(select(func.count(StockCount.id)).where(StockCount.stocktake_id == st.id))
    assert len(frozen.counted) == in_db == outcomes.count("counted")
    assert len(frozen.missing) == 6 - in_db
    s.close()
