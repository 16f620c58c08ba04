"""The desk board's database work does not grow with the number of rows: 10, 100 and 10,000 check-outs."""

from __future__ import annotations

import html
import secrets
from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select, text

from tests.helpers import NOW, client_for, counting
from tracker.custody import approvals
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk.sweep import sweep
from tracker.items import departments
from tracker.items import register as items_mod
from tracker.models import Checkout, DataClass, Department, Flag, FlagStatus, Item, Kind, Role, User

KINDS = [Kind.laptop, Kind.usb, Kind.folder, Kind.other]
CLASSES = [DataClass.none, DataClass.personal, DataClass.sensitive]
DEPARTMENTS = ["Sales", "Legal", "HR", None]


# The point is the database's work (statements, plans on 10,000 rows): on PostgreSQL above all.
pytestmark = [pytest.mark.postgres, pytest.mark.usefixtures("english", "frozen_clock")]


@pytest.fixture
def desk_client(app, make_user):
    return client_for(app, make_user("security", name="Desk Officer", language="en"))


def board_statements(app, client, url="/desk/") -> tuple[int, str]:
    client.get(url)  # warm up: the connection pool, the compiled-statement cache
    with counting(app) as seen:
        resp = client.get(url)
    assert resp.status_code == 200
    return len(seen), resp.get_data(as_text=True)


def summary(page: str) -> str:
    return html.unescape(page.split('class="board-summary"', 1)[1].split("</p>", 1)[0])


def department_ids(session) -> dict[str | None, int | None]:
    """The departments the items are spread over, as records (made once)."""
    ids: dict[str | None, int | None] = {None: None}
    for name in filter(None, DEPARTMENTS):
        ids[name] = session.scalar(select(Department.id).where(Department.name == name))
        if ids[name] is None:
            ids[name] = departments.create(session, NOW, name=name, actor=None).id
    return ids


def add_overdue(session, holders, actor, start: int, count: int) -> None:
    """`count` overdue check-outs through the rules, in one transaction, then flagged by the sweep."""
    department_ids(session)
    for n in range(start, start + count):
        item = items_mod.create(session, NOW - timedelta(days=1), items_mod.ItemData(
            kind=KINDS[n % len(KINDS)], name=f"Item {n}", data_class=CLASSES[n % len(CLASSES)],
            department=DEPARTMENTS[n % len(DEPARTMENTS)], encrypted=n % 2 == 0), actor=None)
        custody.check_out(session, NOW - timedelta(hours=5), item=item, holder=holders[n % len(holders)],
                          actor=actor, due_at=NOW - timedelta(hours=4, minutes=-n), destination=f"Place {n}")
    sweep(session, NOW, Policy())
    session.commit()


def test_statements_per_board_page_do_not_grow_with_rows(app, session, make_user, desk_client):
    holders = [make_user(name=f"Holder {n}", language="en", phone=f"090-0000-000{n}") for n in range(3)]
    desk = make_user("security")
    add_overdue(session, holders, desk, 0, 10)
    ten, page = board_statements(app, desk_client)
    assert "10 out" in summary(page) and "10 overdue" in summary(page)
    assert page.count('href="/desk/flags/') == 10
    add_overdue(session, holders, desk, 10, 90)
    assert session.scalar(select(func.count(Flag.id)).where(Flag.status == FlagStatus.open)) == 100
    hundred, page = board_statements(app, desk_client)
    assert "100 out" in summary(page) and "100 overdue" in summary(page)
    assert page.count('href="/desk/flags/') == 100
    assert hundred == ten
    # The self-refreshing part does the same.
    fragment_hundred, _ = board_statements(app, desk_client, "/desk/?fragment=1")
    assert fragment_hundred <= hundred


def _bulk(session, start: int, count: int, holder_ids: list[int]) -> None:
    """Items, open check-outs (every other one overdue) and flags for the overdue ones, inserted in bulk."""
    stamp = NOW - timedelta(days=30)
    dept_ids = department_ids(session)
    session.execute(insert(Item), [
        {"asset_tag": f"BULK-{n:05d}", "kind": KINDS[n % len(KINDS)], "name": f"Bulk item {n}",
         "data_class": CLASSES[n % len(CLASSES)], "encrypted": n % 2 == 0,
         "department_id": dept_ids[DEPARTMENTS[n % len(DEPARTMENTS)]], "created_at": stamp, "updated_at": stamp}
        for n in range(start, start + count)])
    ids = dict(session.execute(select(Item.asset_tag, Item.id).where(
        Item.asset_tag.in_([f"BULK-{n:05d}" for n in range(start, start + count)]))).all())
    session.execute(insert(Checkout), [
        {"item_id": ids[f"BULK-{n:05d}"], "holder_id": holder_ids[n % len(holder_ids)],
         "out_at": NOW - timedelta(hours=6),
         # even n: overdue by up to a few days; odd n: due later
         "due_at": NOW - timedelta(minutes=n + 1) if n % 2 == 0 else NOW + timedelta(minutes=n + 1),
         "purpose": "", "destination": f"Site {n % 50}"}
        for n in range(start, start + count)])
    overdue = session.execute(select(Checkout.id, Checkout.item_id).where(
        Checkout.item_id.in_(list(ids.values())), Checkout.due_at <= NOW)).all()
    session.execute(insert(Flag), [{"checkout_id": co_id, "item_id": item_id, "created_at": NOW,
                                    "status": FlagStatus.open} for co_id, item_id in overdue])
    session.commit()
    # A live database has its statistics kept up to date (autovacuum); a bulk load in a test has not.
    session.execute(text("ANALYZE"))
    session.commit()


def test_ten_thousand_open_checkouts(app, session, desk_client):
    session.execute(insert(User), [
        {"email": f"bulk{n}@example.com", "name": f"Bulk holder {n}", "role": Role.staff, "language": "en",
         "phone": f"090-1111-{n:04d}", "active": True, "password_hash": "!", "must_change_password": False,
         "session_token": secrets.token_urlsafe(32), "created_at": NOW} for n in range(5)])
    holder_ids = list(session.scalars(select(User.id).where(User.email.like("bulk%@example.com"))))
    _bulk(session, 0, 10, holder_ids)
    ten, page = board_statements(app, desk_client)
    assert "10 out" in summary(page) and "5 overdue" in summary(page)
    _bulk(session, 10, 9990, holder_ids)
    many, page = board_statements(app, desk_client)
    assert "10000 out" in summary(page) and "5000 overdue" in summary(page)
    assert page.count('class="tag"') == 100
    assert page.count('href="/desk/flags/') == 100  # the first page is all overdue, most overdue first
    assert page.index("BULK-09998") < page.index("BULK-09996")
    assert many == ten
    last, page = board_statements(app, desk_client, "/desk/?page=100")
    assert last == ten and page.count('class="tag"') == 100
    assert "BULK-09999" in page  # due last


def _waiting(session, make_item, requester, start: int, count: int) -> None:
    """`count` labels with a finder's message, `count` scanned without one, and `count` requests to approve."""
    from tracker.custody import found
    from tracker.models import LabelToken

    for n in range(start, start + count):
        messaged, scanned, wanted = make_item(name=f"Found {n}"), make_item(name=f"Scanned {n}"), make_item()
        labels = {t.item_id: t for t in session.scalars(select(LabelToken).where(
            LabelToken.item_id.in_([messaged.id, scanned.id]), LabelToken.replaced_at.is_(None)))}
        found.leave_message(session, NOW, labels[messaged.id], f"Message {n}", "", f"198.51.100.{n}")
        found.record_scan(session, NOW, labels[scanned.id], f"203.0.113.{n}")
        approvals.request_checkout(session, NOW, item=wanted, holder=requester, due_at=NOW + timedelta(days=3),
                                 purpose="Audit", destination="Osaka", reason=f"Reason {n}", policy=Policy(),
                                 handling_ack=True)
    session.commit()


def test_the_refresh_brings_messages_and_requests_in_statements_that_do_not_grow(app, session, make_user,
                                                                                  make_item, desk_client):
    """What the board's refresh brings beside the list (finders' reports, approvals) costs a fixed number of
    statements: one report and request, or thirty of each."""
    holders = [make_user(name=f"Holder {n}", language="en") for n in range(3)]
    add_overdue(session, holders, make_user("security"), 0, 10)
    requester = make_user(name="Requester", language="en")
    _waiting(session, make_item, requester, 0, 1)
    one, part = board_statements(app, desk_client, "/desk/?fragment=1")
    assert "Message 0" in part and "Reason 0" in part and part.count('data-kind="scan"') == 1
    _waiting(session, make_item, requester, 1, 29)
    thirty, part = board_statements(app, desk_client, "/desk/?fragment=1")
    assert part.count('data-kind="message"') == 30 and part.count('data-kind="scan"') == 30
    assert part.count('data-kind="approval"') == 30 and "Reason 29" in part
    assert thirty == one
