"""The end-of-day sweep without HTTP: the rules, explicit local times, races and the day after downtime."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from apscheduler.triggers.cron import CronTrigger
from sqlalchemy import func, select

from tests.helpers import at_once, handed_over, tokyo
from tracker import clock, scheduler
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import sweep
from tracker.models import Checkout, Event, Flag, FlagStatus, Kind, Sweep
from tracker.notify import reminders

TOKYO = Policy(timezone="Asia/Tokyo", day_end=time(19, 0))
NEW_YORK = Policy(timezone="America/New_York", day_end=time(19, 0))

pytestmark = pytest.mark.postgres  # the sweep's SQL, its unique business date and two sweeps racing


def out(session, item, holder, now, due_at=None, policy=None):
    co = custody.check_out(session, now, item=item, holder=holder, actor=holder,
                           due_at=due_at or TOKYO.default_due(now), policy=policy, handling_ack=True)
    session.commit()
    return co


def flags(session) -> list[Flag]:
    session.expire_all()
    return list(session.scalars(select(Flag).order_by(Flag.id)))


def flag_of(session, co: Checkout) -> Flag | None:
    session.expire_all()
    return session.scalar(select(Flag).where(Flag.checkout_id == co.id))


def run(session, now, policy=TOKYO) -> sweep.SweepResult:
    result = sweep.sweep(session, now, policy)
    session.commit()
    return result


# --- the rule ----------------------------------------------------------------------------------------------------


def test_sweep_flags_what_is_due_at_or_before_now_once(session, make_user, make_item):
    alice, bob = make_user(), make_user()
    early, on_time, later_due, returned = make_item(), make_item(), make_item(), make_item()
    a = out(session, early, alice, tokyo(1, 9), due_at=tokyo(1, 18))
    b = out(session, on_time, bob, tokyo(1, 9), due_at=tokyo(1, 19))  # due exactly at the day end
    c = out(session, later_due, alice, tokyo(1, 9), due_at=tokyo(1, 20))
    out(session, returned, bob, tokyo(1, 9), due_at=tokyo(1, 18))
    custody.return_item(session, tokyo(1, 18, 30), item=returned, actor=bob)
    session.commit()

    result = run(session, tokyo(1, 19))
    assert result.business_date == date(2026, 6, 1) and result.first_run
    assert sorted(f.checkout_id for f in result.flags) == sorted([a.id, b.id])
    assert all(f.status == FlagStatus.open and f.created_at == tokyo(1, 19) for f in result.flags)
    assert {f.checkout.item.asset_tag for f in result.flags} == {early.asset_tag, on_time.asset_tag}

    again = run(session, tokyo(1, 19, 5))
    assert again.flags == [] and not again.first_run and again.business_date == date(2026, 6, 1)
    assert sorted(f.checkout_id for f in flags(session)) == sorted([a.id, b.id])
    assert flag_of(session, c) is None
    row = session.scalars(select(Sweep)).one()
    assert (row.business_date, row.runs, row.flagged) == (date(2026, 6, 1), 2, 2)
    flagged_events = list(session.scalars(select(Event).where(Event.action == "flagged")))
    assert sorted(e.checkout_id for e in flagged_events) == sorted([a.id, b.id])


def test_a_bags_contents_go_with_the_bag_until_one_is_missing(session, make_user, make_item):
    alice = make_user()
    bag = make_item(Kind.bag)
    laptop, usb = make_item(Kind.laptop, bag=bag), make_item(Kind.usb, bag=bag)
    bag_co = out(session, bag, alice, tokyo(1, 9), due_at=tokyo(1, 18))

    first = run(session, tokyo(1, 19))
    assert [f.checkout_id for f in first.flags] == [bag_co.id]  # one case for the bag, not three

    result = custody.return_item(session, tokyo(1, 19, 30), item=bag, actor=alice, present={laptop.id})
    session.commit()
    assert [i.id for i in result.missing] == [usb.id]
    bag_flag = flag_of(session, bag_co)
    assert bag_flag.status == FlagStatus.resolved and bag_flag.resolution == "returned"
    assert bag_flag.closed_at == tokyo(1, 19, 30) and bag_flag.closed_by_id == alice.id

    late = run(session, tokyo(2, 0))  # the midnight sweep: the missing USB drive is still out, on its own
    usb_co = custody.open_checkout(session, usb)
    assert [f.checkout_id for f in late.flags] == [usb_co.id]
    assert late.business_date == date(2026, 6, 1)
    assert custody.open_checkout(session, laptop) is None
    assert len(flags(session)) == 2


def test_a_return_resolves_the_open_flag_and_a_hand_over_moves_it(session, make_user, make_item):
    alice, bob, desk = make_user(), make_user(), make_user("security")
    laptop, usb = make_item(), make_item(Kind.usb)
    co1 = out(session, laptop, alice, tokyo(1, 9), due_at=tokyo(1, 17))
    co2 = out(session, usb, alice, tokyo(1, 9), due_at=tokyo(1, 17))
    run(session, tokyo(1, 19))

    custody.return_item(session, tokyo(1, 20), item=laptop, actor=desk)
    session.commit()
    f1 = flag_of(session, co1)
    assert (f1.status, f1.resolution, f1.closed_at, f1.closed_by_id) == (
        FlagStatus.resolved, "returned", tokyo(1, 20), desk.id)

    new = handed_over(session, tokyo(1, 20, 5), usb, alice, bob)
    session.commit()
    assert flag_of(session, co2) is None  # the desk's case went with the item to Bob, still open
    f2 = flag_of(session, new)
    assert (f2.status, f2.resolution, f2.closed_at) == (FlagStatus.open, None, None)
    assert session.scalar(select(func.count(Flag.id)).where(Flag.status == FlagStatus.open)) == 1


def _race_two_sweeps(app, session, make_user, make_item, second_run):
    """Two sweeps, each in its own thread, session and connection, start together at 00:00 on 2 June."""
    holders = [make_user() for _ in range(3)]
    cos = [out(session, make_item(), h, tokyo(1, 9), due_at=tokyo(1, 18)) for h in holders for _ in range(2)]
    if second_run:  # the day end already swept; a new overdue check-out waits for the midnight sweep
        run(session, tokyo(1, 19))
        cos.append(out(session, make_item(), holders[0], tokyo(1, 20), due_at=tokyo(1, 23)))
    maker = app.extensions["tracker.sessionmaker"]

    def attempt(s) -> list[int]:
        return [f.checkout_id for f in sweep.sweep(s, tokyo(2, 0), TOKYO).flags]

    results = at_once(app, attempt, attempt)
    assert all(isinstance(r, list) for r in results), results
    s = maker()
    try:
        rows = list(s.scalars(select(Sweep).where(Sweep.business_date == date(2026, 6, 1))))
        per_checkout = dict(s.execute(select(Flag.checkout_id, func.count(Flag.id)).group_by(Flag.checkout_id)).all())
    finally:
        s.close()
    return cos, results, rows, per_checkout


@pytest.mark.parametrize("second_run", [False, True], ids=["first-run", "later-run"])
def test_two_sweeps_racing_flag_each_checkout_once(app, session, make_user, make_item, second_run):
    cos, results, rows, per_checkout = _race_two_sweeps(app, session, make_user, make_item, second_run)
    expected = [cos[-1].id] if second_run else [c.id for c in cos]
    assert sorted(results[0] + results[1]) == sorted(expected)
    assert per_checkout == {c.id: 1 for c in cos}
    assert len(rows) == 1 and rows[0].flagged == len(cos)


def test_a_sweep_overlapping_a_later_run_counts_both_runs(app, session, make_user, make_item):
    """Two runs for one business date overlap: the second read the sweep record before the first committed."""
    if app.config["DATABASE_URL"].startswith("sqlite"):
        _, _, rows, _ = _race_two_sweeps(app, session, make_user, make_item, True)
        assert rows[0].runs == 3
        return
    # PostgreSQL (READ COMMITTED), interleaved by hand so the overlap happens every time.
    alice = make_user()
    out(session, make_item(), alice, tokyo(1, 9), due_at=tokyo(1, 18))
    run(session, tokyo(1, 19))
    maker = app.extensions["tracker.sessionmaker"]
    first, second = maker(), maker()
    try:
        seen = second.scalar(select(Sweep).where(Sweep.business_date == date(2026, 6, 1)))  # what sweep.py:38 reads
        assert seen.runs == 1
        sweep.sweep(first, tokyo(2, 0), TOKYO)
        first.commit()
        sweep.sweep(second, tokyo(2, 0, 1), TOKYO)
        second.commit()
    finally:
        first.close()
        second.close()
    session.expire_all()
    assert session.scalars(select(Sweep)).one().runs == 3  # 19:00, 00:00 and 00:00:01, none lost


def test_server_down_across_the_day_end_sweeps_once_at_0200(session, make_user, make_item):
    alice = make_user()
    co = out(session, make_item(), alice, tokyo(1, 10))  # default due: 19:00 today
    assert co.due_at == tokyo(1, 19)
    # Nothing ran at 19:00 or 00:00: the server was down. It comes back at 02:00.
    result = sweep.sweep_if_missed(session, tokyo(2, 2), TOKYO)
    session.commit()
    assert result is not None and result.business_date == date(2026, 6, 1)
    assert [f.checkout_id for f in result.flags] == [co.id]
    assert sweep.sweep_if_missed(session, tokyo(2, 2, 1), TOKYO) is None
    session.commit()
    assert sweep.sweep_if_missed(session, tokyo(2, 18, 59), TOKYO) is None  # still the 1 June business date
    session.commit()
    assert len(flags(session)) == 1
    assert session.scalar(select(func.count(Sweep.id))) == 1


def test_a_restart_after_a_normal_day_end_sweeps_nothing_more(session, make_user, make_item):
    alice = make_user()
    out(session, make_item(), alice, tokyo(1, 10))
    run(session, tokyo(1, 19))
    out(session, make_item(), alice, tokyo(1, 20), due_at=tokyo(1, 21))
    assert sweep.sweep_if_missed(session, tokyo(2, 2), TOKYO) is None  # the midnight sweep handles that one
    session.commit()
    assert len(flags(session)) == 1


# --- reminders ---------------------------------------------------------------------------------------------------


def test_claim_reminders_claims_each_checkout_once(session, make_user, make_item):
    alice, bob = make_user(), make_user()
    soon = out(session, make_item(), alice, tokyo(1, 9), due_at=tokyo(1, 19))
    soon_bob = out(session, make_item(), bob, tokyo(1, 9), due_at=tokyo(1, 19, 5))
    out(session, make_item(), alice, tokyo(1, 9), due_at=tokyo(1, 19, 7))  # beyond the 30 minutes
    out(session, make_item(), alice, tokyo(1, 9), due_at=tokyo(1, 18, 35))  # already overdue
    returned = make_item()
    out(session, returned, bob, tokyo(1, 9), due_at=tokyo(1, 19))
    custody.return_item(session, tokyo(1, 12), item=returned, actor=bob)
    bag = make_item(Kind.bag)
    make_item(Kind.usb, bag=bag)
    bag_co = out(session, bag, bob, tokyo(1, 9), due_at=tokyo(1, 19))

    claimed = reminders.claim_reminders(session, tokyo(1, 18, 36), timedelta(minutes=30))
    session.commit()
    assert sorted(c.id for c in claimed) == sorted([soon.id, soon_bob.id, bag_co.id])  # the bag once, not its USB
    assert reminders.claim_reminders(session, tokyo(1, 18, 36), timedelta(minutes=30)) == []
    session.commit()
    session.expire_all()
    assert session.get(Checkout, soon.id).reminder_sent_at == tokyo(1, 18, 36)


# --- local time edge cases ---------------------------------------------------------------------------------------


def test_out_2358_back_0001_is_flagged_at_midnight_and_resolved(app, session, make_user, make_item):
    assert time(0, 0) in scheduler.sweep_times(app)  # the late sweep is on by default
    alice, item = make_user(), make_item()
    run(session, tokyo(1, 19))  # the day end, before the late check-out
    co = out(session, item, alice, tokyo(1, 23, 58), policy=TOKYO)
    assert co.due_at == tokyo(2, 0)  # local midnight, not a time in the past
    assert co.due_at == clock.default_due(tokyo(1, 23, 58), "Asia/Tokyo", time(19, 0))

    result = run(session, tokyo(2, 0))
    assert [f.checkout_id for f in result.flags] == [co.id]
    assert result.business_date == date(2026, 6, 1)

    custody.return_item(session, tokyo(2, 0, 1), item=item, actor=alice)
    session.commit()
    f = flag_of(session, co)
    assert (f.status, f.resolution, f.closed_at) == (FlagStatus.resolved, "returned", tokyo(2, 0, 1))
    assert run(session, tokyo(2, 19)).flags == []


def test_out_at_0030_local_is_due_that_local_date(session, make_user, make_item):
    alice, item = make_user(), make_item()
    moment = tokyo(2, 0, 30)
    assert moment.date() == date(2026, 6, 1)  # still 1 June in UTC
    co = out(session, item, alice, moment, policy=TOKYO)
    assert co.due_at == tokyo(2, 19)  # 19:00 on 2 June local, not 1 June
    assert TOKYO.local_day_start(moment) == tokyo(2, 0)
    assert run(session, tokyo(2, 2)).flags == []
    result = run(session, tokyo(2, 19))
    assert [f.checkout_id for f in result.flags] == [co.id] and result.business_date == date(2026, 6, 2)


@pytest.mark.parametrize("now, expected", [
    (tokyo(2, 0), date(2026, 6, 1)),
    (tokyo(2, 2), date(2026, 6, 1)),
    (tokyo(1, 18, 59), date(2026, 5, 31)),
    (tokyo(1, 19), date(2026, 6, 1)),
    (tokyo(1, 23, 59), date(2026, 6, 1)),
], ids=["0000", "0200", "1859", "1900", "2359"])
def test_business_date_is_the_local_date_of_the_last_day_end(now, expected):
    assert sweep.business_date(now, TOKYO) == expected


@pytest.mark.parametrize("first, last", [(date(2026, 3, 6), date(2026, 3, 10)), (date(2026, 10, 30), date(2026, 11, 3))],
                         ids=["spring-forward", "fall-back"])
def test_new_york_has_one_day_end_per_date_across_dst(first, last):
    zone = ZoneInfo("America/New_York")
    days = [first + timedelta(days=n) for n in range((last - first).days + 1)]
    ends = [clock.day_end_on(d, "America/New_York", time(19, 0)) for d in days]
    assert len(set(ends)) == len(days)
    for d, end in zip(days, ends, strict=True):
        assert end.tzinfo is not None and end.astimezone(zone).date() == d
        assert end.astimezone(zone).time() == time(19, 0)
        assert sweep.business_date(end, NEW_YORK) == d
        assert sweep.business_date(end - timedelta(seconds=1), NEW_YORK) == d - timedelta(days=1)
        assert sweep.last_day_end(end + timedelta(hours=22), NEW_YORK) == end
    gaps = {days[i + 1]: ends[i + 1] - ends[i] for i in range(len(days) - 1)}
    change = date(2026, 3, 8) if first.month == 3 else date(2026, 11, 1)
    assert gaps[change] == (timedelta(hours=23) if first.month == 3 else timedelta(hours=25))
    assert all(gap == timedelta(hours=24) for d, gap in gaps.items() if d != change)

    trigger = CronTrigger(hour=19, minute=0, timezone="America/New_York")
    start = datetime.combine(first, time(0, 0), tzinfo=zone)
    stop = datetime.combine(last + timedelta(days=1), time(0, 0), tzinfo=zone)
    fires = []
    fire = trigger.get_next_fire_time(None, start)
    while fire is not None and fire < stop:
        fires.append(fire)
        fire = trigger.get_next_fire_time(fire, fire)
    assert [f.astimezone(zone).date() for f in fires] == days  # exactly once per local date
    assert [f.astimezone(UTC) for f in fires] == ends

