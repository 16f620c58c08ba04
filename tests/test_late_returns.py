"""The late-returns counts without HTTP, on SQLite and PostgreSQL: what counts as late, per person and department."""

from __future__ import annotations

from datetime import time

import pytest

from tests.helpers import handed_over, tokyo
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import sweep
from tracker.models import Kind
from tracker.reports import late

pytestmark = pytest.mark.postgres  # the UNION ALL of two kinds of lateness, grouped, and its ordering

JUNE = (tokyo(1, 0), tokyo(1, 0, month=7))


def trip(session, item, holder, day, back_hour, back_minute=0):
    custody.check_out(session, tokyo(day, 9), item=item, holder=holder, actor=holder, due_at=tokyo(day, 18))
    custody.return_item(session, tokyo(day, back_hour, back_minute), item=item, actor=holder,
                        erasure="nothing_written")
    session.commit()


def test_late_means_returned_after_the_due_time_or_flagged_and_the_most_often_late_come_first(
        session, make_user, make_item, make_department):
    sales = make_department("Sales")
    often = make_user(name="Often Late", department_id=sales.id)
    once = make_user(name="Once Late", department_id=sales.id)
    never = make_user(name="Never Late", department_id=sales.id)
    loose = make_user(name="No Dept")
    laptop = make_item()
    trip(session, laptop, often, 2, 18, 1)  # one minute late is late
    trip(session, laptop, often, 3, 19)
    trip(session, laptop, never, 4, 18)  # exactly on time is not
    trip(session, laptop, once, 5, 20)
    bag = make_item(Kind.bag)
    make_item(Kind.usb, bag=bag)
    trip(session, bag, loose, 6, 21)  # a bag and its contents: one late return
    kept = make_item()
    custody.check_out(session, tokyo(10, 9), item=kept, holder=often, actor=often, due_at=tokyo(10, 18))
    session.commit()
    sweep.sweep(session, tokyo(10, 19), Policy(timezone="Asia/Tokyo", day_end=time(19, 0)))
    session.commit()
    trip(session, laptop, once, 30, 20)  # the last evening of June in Tokyo (11:00 UTC): in June
    custody.check_out(session, tokyo(30, 22), item=laptop, holder=never, actor=never, due_at=tokyo(30, 23))
    custody.return_item(session, tokyo(1, 1, month=7), item=laptop, actor=never,
                        erasure="nothing_written")  # late, but back in July
    session.commit()

    people = [(p.name, p.department, p.returned_late, p.flagged, p.repeat) for p in late.by_person(session, *JUNE)]
    assert people == [("Often Late", "Sales", 2, 1, True), ("Once Late", "Sales", 2, 0, True),
                      ("No Dept", None, 1, 0, False)]
    departments = [(d.name, d.people, d.returned_late, d.flagged) for d in late.by_department(session, *JUNE)]
    assert departments == [("Sales", 2, 4, 1), (None, 1, 1, 0)]
    assert late.by_person(session, *JUNE, limit=1)[0].name == "Often Late"
    july = late.by_person(session, tokyo(1, 0, month=7), tokyo(1, 0, month=8))
    assert [(p.name, p.returned_late, p.repeat) for p in july] == [("Never Late", 1, False)]


def test_a_late_hand_over_is_not_a_return_but_the_taker_returning_late_is(session, make_user, make_item):
    giver, taker = make_user(name="Giver"), make_user(name="Taker")
    item = make_item()
    custody.check_out(session, tokyo(8, 9), item=item, holder=giver, actor=giver, due_at=tokyo(8, 18))
    handed_over(session, tokyo(8, 20), item, giver, taker)
    custody.return_item(session, tokyo(8, 21), item=item, actor=taker)
    session.commit()
    assert [(p.name, p.returned_late) for p in late.by_person(session, *JUNE)] == [("Taker", 1)]
