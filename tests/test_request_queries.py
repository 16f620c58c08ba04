"""The phone's busiest requests send a fixed number of statements: the scan page and the take-out / return
POSTs do not grow with the register, the person's history or anyone else's."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tests.helpers import EN, NOW, client_for, counting, csrf_from, label_token, open_checkout, reread
from tracker.custody import handover
from tracker.custody import operations as custody
from tracker.models import DataClass

pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("english", "frozen_clock")]


def add_history(session, people, make_item, rounds: int) -> None:
    """More items, each taken out and returned by every person `rounds` times, a few still out."""
    reread(session)  # after the client's requests: write from a fresh snapshot
    for n in range(10):
        item = make_item(data_class=DataClass.none)
        for r in range(rounds):
            for p in people:
                when = NOW - timedelta(days=r + 1, hours=len(people)) + timedelta(minutes=5 * p.id)
                custody.check_out(session, when, item=item, holder=p, actor=p, due_at=when + timedelta(hours=1),
                                  purpose=f"Visit {r}", destination="Client")
                custody.return_item(session, when + timedelta(minutes=1), item=item, actor=p)
        if n % 3 == 0:
            custody.check_out(session, NOW - timedelta(hours=1), item=item, holder=people[0], actor=people[0],
                              due_at=NOW + timedelta(hours=2), purpose="Audit", destination="Osaka")
    session.commit()


def scan_statements(app, client, url) -> tuple[int, str]:
    client.get(url, headers=EN)  # warm-up: the pool, the compiled-statement cache
    with counting(app) as seen:
        page = client.get(url, headers=EN)
    assert page.status_code == 200
    return len(seen), page.get_data(as_text=True)


def test_the_scan_page_sends_the_same_statements_however_much_history(app, session, make_user, make_item):
    me, other = make_user(name="Hanako Yamada", language="en"), make_user(name="Taro Suzuki", language="en")
    item = make_item(data_class=DataClass.none)
    url = f"/S/{label_token(session, item)}"
    client = client_for(app, me)
    before, page = scan_statements(app, client, url)
    assert item.asset_tag in page and "Take out" in page
    add_history(session, [me, other], make_item, rounds=5)
    after, page = scan_statements(app, client, url)
    assert after == before, "the scan page's statements grew with the history"
    assert 'value="Audit"' in page  # still prefilled from the person's last take-out
    # BEGIN, the user, the label with its item, its open check-out, a return awaiting inspection, whether a request
    # may be shown and the item's saved rule (one read), the last take-out, and the approvals waiting for the
    # reader (the header's link)
    assert before <= 5


def test_the_scan_of_an_item_to_return_does_not_read_for_the_take_out_form(app, session, make_user, make_item):
    """Half the scans are to bring something back: the take-out form is not on that page, so the person's last trip
    (its prefill) is not read, and the people it could be handed over to are not listed."""
    me = make_user(name="Hanako Yamada", language="en")
    held, free = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    custody.check_out(session, NOW - timedelta(hours=1), item=held, holder=me, actor=me,
                      due_at=NOW + timedelta(hours=2), purpose="Audit", destination="Osaka")
    session.commit()
    client = client_for(app, me)

    def scan(item) -> tuple[list[str], str]:
        url = f"/S/{label_token(session, item)}"
        client.get(url, headers=EN)
        with counting(app) as seen:
            page = client.get(url, headers=EN)
        return seen, page.get_data(as_text=True)

    def reads_last_trip(seen: list[str]) -> bool:
        return any(" ".join(s.split()).startswith("SELECT checkouts.purpose, checkouts.destination") for s in seen)

    seen, page = scan(free)
    assert 'value="Audit"' in page and reads_last_trip(seen)
    seen, page = scan(held)
    assert ">Return</button>" in page and "Take out" not in page
    assert not reads_last_trip(seen)
    # Nor everyone who could be handed the item: they are on the hand-over page, not on every scan to return.
    assert not any("WHERE users.active" in " ".join(s.split()) for s in seen)
    # A hand-over offer waiting on it comes with the label (BEGIN, the user, the label with all the page shows of
    # the item, the header's count), and the page shows it.
    assert len(seen) <= 4 and not any(s.lstrip().startswith("SELECT handover_offers.") for s in seen)
    colleague = make_user(name="Taro Suzuki", language="en")
    handover.offer(session, NOW, item=held, to=colleague, actor=me)
    session.commit()
    seen, page = scan(held)
    assert "Waiting for Taro Suzuki to accept the hand-over." in page
    assert not any(s.lstrip().startswith("SELECT handover_offers.") for s in seen)


def test_take_out_and_return_send_the_same_statements_however_much_history(app, session, make_user, make_item):
    me, other = make_user(name="Hanako Yamada", language="en"), make_user(name="Taro Suzuki", language="en")
    first, second = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    client = client_for(app, me)
    token = csrf_from(client.get(f"/S/{label_token(session, first)}", headers=EN).get_data(as_text=True))

    def statements(item, action) -> int:
        url = f"/items/{item.asset_tag}/{action}"
        with counting(app) as seen:
            resp = client.post(url, data={"csrf_token": token}, headers=EN)
        assert resp.status_code == 303
        return len(seen)

    statements(first, "checkout")  # warm-up
    statements(first, "return")
    out, back = statements(first, "checkout"), statements(first, "return")
    add_history(session, [me, other], make_item, rounds=5)
    assert statements(second, "checkout") == out
    reread(session)
    assert open_checkout(session, second).holder_id == me.id
    assert statements(second, "return") == back
    reread(session)
    assert open_checkout(session, second) is None
    # On SQLite: BEGIN, the person; BEGIN IMMEDIATE, the item with its rule (once: read locked by its tag), whether
    # a request waits with the open and inspected check-outs, the INSERT, the chain's head read and moved, the event
    # (no event webhook is read: the head says nobody listens). A return: the open check-out with whether a bag's
    # contents are out under it, the UPDATE, a waiting offer and an open flag instead.
    assert out <= 9 and back <= 11


def test_the_desks_scan_and_hand_over_pages_do_not_read_everyone(app, session, make_user, make_item):
    """The desk's item page (the take-out form with its "for whom") and a hand-over page read no list of people:
    the person is typed, and suggested by /people/suggest, a few at a time."""
    desk, holder = make_user("security", language="en"), make_user(language="en")
    for _ in range(5):
        make_user()
    free, held = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
    custody.check_out(session, NOW - timedelta(hours=1), item=held, holder=holder, actor=holder,
                      due_at=NOW + timedelta(hours=2))
    session.commit()
    client = client_for(app, desk)
    for url, shown in ((f"/S/{label_token(session, free)}", 'name="holder"'),
                       (f"/items/{held.asset_tag}/handover", 'id="to" name="to"')):
        client.get(url, headers=EN)
        with counting(app) as seen:
            page = client.get(url, headers=EN).get_data(as_text=True)
        assert shown in page
        # Rows of people chosen by nothing but being active: the list of everyone these pages used to carry.
        assert not [s for s in seen if s.lstrip().startswith("SELECT users.") and "WHERE users.active" in s], seen


def test_the_take_out_forms_prefill_reads_by_index_not_the_whole_history(app, session):
    """The person's last own trip (read on every scan of a free item) walks their take-outs newest first and asks
    about hand-overs by check-out: no sort of their history, no pass over the trail's hand-overs."""
    from tracker.queries import _LAST_OWN_TRIP

    if session.get_bind().dialect.name != "sqlite":
        pytest.skip("PostgreSQL plans by the tables' statistics: on a test's few rows it reads them whole")
    sql = str(_LAST_OWN_TRIP.compile(session.get_bind()))
    plan = " | ".join(row[-1] for row in session.connection().exec_driver_sql("EXPLAIN QUERY PLAN " + sql, (1, 1, 0)))
    assert "ix_checkouts_holder_trips" in plan and "ix_events_handover_checkouts" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
