"""Each site on its own clock: a company with offices in Tokyo (the main office, the settings), Osaka (Asia/Tokyo,
day end 18:00) and Singapore (Asia/Singapore, 19:00 there = 20:00 in Tokyo), and London for daylight-saving time.

Each office is swept at its own day end and not at another's, take-outs get their site's default due time, the
curfew sweep dates a flag in its site's zone, each desk is told of its own items, and the board and /healthz show
each site."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from tests.helpers import reread, tokyo
from tracker import clock, jobs, scheduler
from tracker.custody import approvals, handover, policy, rules
from tracker.custody import operations as custody
from tracker.desk import sweep
from tracker.errors import ReasonRequired
from tracker.models import Event, Flag, Kind, Sweep

pytestmark = pytest.mark.postgres  # sweep records unique per site and date, and sweeps racing, on both databases

LONDON = ZoneInfo("Europe/London")


@pytest.fixture
def offices(make_site):
    """The two other offices (Tokyo, the main office, is the settings: Asia/Tokyo, 19:00, a late sweep at 00:00)."""
    return {"Osaka": make_site("Osaka", timezone="Asia/Tokyo", day_end=time(18, 0)),
            "Singapore": make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))}


def at(session, item, site):
    """Move `item` to `site` (None: the main office), as the item form will."""
    item.site_id = site.id if site is not None else None
    session.commit()
    return item


def out(session, item, holder, taken, due=None, **kw):
    """A take-out at `taken`; without `due`, the rules' default (the item's site's day end)."""
    pol = kw.pop("pol", None if due is not None else policy.Policy())
    co = custody.check_out(session, taken, item=item, holder=holder, actor=holder, due_at=due, policy=pol,
                           handling_ack=True, **kw)
    session.commit()
    return co


def flagged(session, names: dict[int, str]) -> set[str]:
    """The offices (by the check-out ids in `names`) whose check-outs carry a flag now."""
    reread(session)
    return {names[i] for i in session.scalars(select(Flag.checkout_id)) if i in names}


def sweep_rows(session) -> set[tuple[int | None, date]]:
    reread(session)
    return {tuple(row) for row in session.execute(select(Sweep.site_id, Sweep.business_date))}


# --- swept at each office's own day end ---------------------------------------------------------------------------


def test_each_office_is_swept_at_its_own_day_end_and_not_at_anothers(app, session, offices, make_user, make_item):
    holder = make_user()
    cos = {}
    for name, site in {"Tokyo": None, **offices}.items():
        cos[out(session, at(session, make_item(), site), holder, tokyo(1, 10), due=tokyo(1, 17)).id] = name
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))  # the main office's midnight sweep; the sites did not exist then
    assert flagged(session, cos) == set()

    for moment, expected in [(tokyo(1, 17, 59), set()), (tokyo(1, 18), {"Osaka"}), (tokyo(1, 18, 59), {"Osaka"}),
                             (tokyo(1, 19), {"Osaka", "Tokyo"}), (tokyo(1, 19, 59), {"Osaka", "Tokyo"}),
                             (tokyo(1, 20), {"Osaka", "Tokyo", "Singapore"})]:
        jobs.run_sweeps_if_missed(app, moment)  # the scheduler's minute job
        assert flagged(session, cos) == expected, moment

    osaka, singapore = offices["Osaka"].id, offices["Singapore"].id
    may31, june1 = date(2026, 5, 31), date(2026, 6, 1)
    assert sweep_rows(session) == {(None, may31), (None, june1), (osaka, june1), (singapore, june1)}
    runs = dict(session.execute(select(Sweep.site_id, Sweep.started_at).where(Sweep.business_date == june1)).all())
    assert runs == {osaka: tokyo(1, 18), None: tokyo(1, 19), singapore: tokyo(1, 20)}
    events = session.scalars(select(Event).where(Event.action == "flagged")).all()
    assert {e.checkout_id: json.loads(e.data)["business_date"] for e in events} == {i: "2026-06-01" for i in cos}


def test_a_sites_sweep_flags_only_its_own_items(app, session, offices, make_user, make_item):
    holder = make_user()
    mine = out(session, at(session, make_item(), offices["Osaka"]), holder, tokyo(1, 10), due=tokyo(1, 17))
    theirs = [out(session, at(session, make_item(), site), holder, tokyo(1, 10), due=tokyo(1, 17))
              for site in (None, offices["Singapore"])]
    result = sweep.sweep(session, tokyo(1, 23), policy.for_site(app.config, offices["Osaka"]))
    session.commit()
    assert [f.checkout_id for f in result.flags] == [mine.id] and result.site_id == offices["Osaka"].id
    main = sweep.sweep(session, tokyo(1, 23), policy.for_site(app.config, None))
    session.commit()
    assert [f.checkout_id for f in main.flags] == [theirs[0].id] and main.business_date == date(2026, 6, 1)


def test_a_sites_sweep_runs_once_per_due_moment(app, session, offices, make_user, make_item):
    holder = make_user()
    osaka = offices["Osaka"]
    first = out(session, at(session, make_item(), osaka), holder, tokyo(1, 10), due=tokyo(1, 17))
    assert len(jobs.run_sweep(app, tokyo(1, 18), site_id=osaka.id).flags) == 1
    second = out(session, at(session, make_item(), osaka), holder, tokyo(1, 10), due=tokyo(1, 18, 2))
    again = jobs.run_sweep(app, tokyo(1, 18, 5), site_id=osaka.id)  # by hand: runs, flags only what is new
    assert [f.checkout_id for f in again.flags] == [second.id] and not again.first_run
    assert [r.site_id for r in jobs.run_sweeps_if_missed(app, tokyo(1, 18, 10))] == [None]  # the main office's 00:00
    assert [r.site_id for r in jobs.run_sweeps_if_missed(app, tokyo(1, 18, 11))] == []  # nothing due since
    reread(session)
    row = session.scalars(select(Sweep).where(Sweep.site_id == osaka.id,
                                              Sweep.business_date == date(2026, 6, 1))).one()
    assert (row.runs, row.flagged) == (2, 2)
    assert session.scalar(select(func.count(Flag.id)).where(Flag.checkout_id.in_([first.id, second.id]))) == 2


def test_two_sweeps_of_one_site_at_once_flag_each_checkout_once(app, session, offices, make_user, make_item):
    """Two schedulers' minute jobs (each in its own thread and connection) reach Osaka's day end together."""
    holders = [make_user() for _ in range(3)]
    osaka = offices["Osaka"]
    cos = [out(session, at(session, make_item(), osaka), h, tokyo(1, 10), due=tokyo(1, 17)) for h in holders
           for _ in range(2)]
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))
    barrier = threading.Barrier(2)
    errors: list[BaseException] = []

    def minute_job() -> None:
        try:
            barrier.wait()
            jobs.run_sweeps_if_missed(app, tokyo(1, 18))
        except BaseException as exc:  # pragma: no cover - shown by the assertion
            errors.append(exc)

    threads = [threading.Thread(target=minute_job) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    reread(session)
    per_checkout = dict(session.execute(select(Flag.checkout_id, func.count(Flag.id)).group_by(Flag.checkout_id)).all())
    assert per_checkout == {c.id: 1 for c in cos}
    rows = session.scalars(select(Sweep).where(Sweep.site_id == osaka.id,
                                               Sweep.business_date == date(2026, 6, 1))).all()
    assert len(rows) == 1 and rows[0].flagged == len(cos)
    assert session.scalar(select(func.count(Event.id)).where(Event.action == "flagged")) == len(cos)


def test_a_site_added_while_the_scheduler_runs_is_swept_without_a_restart(app, session, make_site, make_user,
                                                                          make_item, monkeypatch):
    moment = [tokyo(1, 12)]
    monkeypatch.setattr(clock, "now", lambda: moment[0])
    sched = scheduler.build(app, blocking=False)
    catch_up = sched.get_job("sweep-catch-up")
    assert {"sweep-1900", "sweep-0000"} <= {job.id for job in sched.get_jobs()}  # the main office's, as before
    catch_up.func()
    singapore = make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))
    co = out(session, at(session, make_item(), singapore), make_user(), tokyo(1, 13), due=tokyo(1, 17))
    for minute, swept in ((tokyo(1, 19, 59), False), (tokyo(1, 20), True)):
        moment[0] = minute
        catch_up.func()
        assert flagged(session, {co.id: "Singapore"}) == ({"Singapore"} if swept else set())


def test_the_sweep_command_sweeps_the_site_named(runner, session, offices, make_user, make_item):
    holder = make_user()
    osaka = out(session, at(session, make_item(), offices["Osaka"]), holder, tokyo(1, 10), due=tokyo(1, 17))
    main = out(session, at(session, make_item(), None), holder, tokyo(1, 10), due=tokyo(1, 17))
    result = runner.invoke(args=["sweep", "--site", "Osaka", "--now", "2026-06-01T18:00:00+09:00"])
    assert result.exit_code == 0, result.output
    assert "Sweep for 2026-06-01: 1 check-out(s) flagged." in result.output
    assert osaka.item.asset_tag in result.output and main.item.asset_tag not in result.output
    refused = runner.invoke(args=["sweep", "--site", "Nagoya"])
    assert refused.exit_code != 0 and "Nagoya" in refused.output


# --- the site's clock at take-out ---------------------------------------------------------------------------------


@pytest.mark.parametrize("office, taken, due", [
    ("Tokyo", tokyo(1, 10), tokyo(1, 19)),
    ("Osaka", tokyo(1, 10), tokyo(1, 18)),
    ("Singapore", tokyo(1, 10), tokyo(1, 20)),  # 19:00 in Singapore
    ("Osaka", tokyo(1, 18, 30), tokyo(2, 0)),  # after its day end: the end of its local day
    ("Singapore", tokyo(1, 20, 30), tokyo(2, 1)),  # midnight in Singapore
], ids=["tokyo", "osaka", "singapore", "osaka-after-day-end", "singapore-after-day-end"])
def test_default_due_time_is_the_day_end_of_the_items_site(app, session, offices, make_user, make_item,
                                                           office, taken, due):
    item = at(session, make_item(), offices.get(office))
    co = out(session, item, make_user(), taken, pol=policy.from_config(app.config))
    assert co.due_at == due and not co.strict_due


def test_overnight_is_past_the_day_end_of_the_items_site(app, session, offices, make_user, make_item):
    holder, pol = make_user(), policy.from_config(app.config)
    with pytest.raises(ReasonRequired):  # past Osaka's 18:00: overnight, so a reason is needed
        out(session, at(session, make_item(), offices["Osaka"]), holder, tokyo(1, 10), due=tokyo(1, 18, 30), pol=pol)
    session.rollback()
    for site in (None, offices["Singapore"]):  # before Tokyo's 19:00 and Singapore's 20:00 (Tokyo time)
        assert out(session, at(session, make_item(), site), holder, tokyo(1, 10), due=tokyo(1, 18, 30), pol=pol)


def test_a_curfew_is_local_to_the_site_and_its_flag_dated_there(app, session, make_site, make_user, make_item,
                                                                 admin):
    """A USB drive's 17:00 curfew at the London office is 17:00 in London; flagged that minute, on London's date
    (in Tokyo it is already the next day)."""
    rules.save(session, tokyo(1, 9), rules.Rule(kind="usb", data_class="personal", handling_ack=True,
                                                curfew=time(17, 0)), actor=admin)
    session.commit()
    london = make_site("London", timezone="Europe/London", day_end=time(18, 0))
    taken = datetime(2026, 6, 1, 10, 0, tzinfo=LONDON).astimezone(UTC)
    co = out(session, at(session, make_item(Kind.usb), london), make_user(), taken, pol=policy.from_config(app.config))
    curfew = datetime(2026, 6, 1, 17, 0, tzinfo=LONDON).astimezone(UTC)
    assert co.due_at == curfew and co.strict_due
    assert not jobs.run_curfew_sweep(app, curfew - timedelta(minutes=1)).flag_ids
    assert len(jobs.run_curfew_sweep(app, curfew).flag_ids) == 1
    event = session.scalars(select(Event).where(Event.action == "flagged")).one()
    assert json.loads(event.data)["business_date"] == "2026-06-01" and clock.local(curfew, "Asia/Tokyo").date() == date(2026, 6, 2)


def test_a_hand_over_offer_lapses_at_midnight_at_the_items_site(app, session, make_site, make_user, make_item):
    singapore = make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))
    giver, receiver = make_user(), make_user()
    item = at(session, make_item(), singapore)
    out(session, item, giver, tokyo(1, 10), due=tokyo(2, 19), reason="trip")
    offer = handover.offer(session, tokyo(1, 22), item=item, to=receiver, actor=giver)
    session.commit()
    pol = policy.from_config(app.config)
    assert handover.lapses_at(offer, pol) == tokyo(2, 1)  # midnight in Singapore, 01:00 in Tokyo
    assert handover.waiting_for(session, receiver, tokyo(2, 0, 30), pol) == [offer]  # past Tokyo's midnight: open
    assert handover.expire(session, tokyo(2, 0, 30), pol) == []
    assert handover.expire(session, tokyo(2, 1), pol) == [offer]
    session.commit()


def test_a_take_out_request_expires_at_midnight_at_the_items_site(app, session, make_site, make_user, make_item):
    singapore = make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))
    item = at(session, make_item(), singapore)
    req = approvals.request_checkout(session, tokyo(1, 10), item=item, holder=make_user(), due_at=tokyo(2, 17),
                                     purpose="p", destination="d", reason="trip",
                                     policy=policy.Policy(approval_required=True), handling_ack=True)
    session.commit()
    assert req.expires_at == tokyo(2, 1)  # the end of 1 June in Singapore
    assert approvals.expire(session, tokyo(2, 0, 30)) == []
    assert approvals.expire(session, tokyo(2, 1)) == [req]


# --- daylight-saving time ------------------------------------------------------------------------------------------


def in_london(day: date, hour: int) -> datetime:
    return datetime.combine(day, time(hour, 0), tzinfo=LONDON).astimezone(UTC)


@pytest.mark.parametrize("days, day_ends_utc", [
    ([date(2026, 3, 28), date(2026, 3, 29), date(2026, 3, 30)], ["18:00", "17:00", "17:00"]),  # clocks go forward
    ([date(2026, 10, 24), date(2026, 10, 25), date(2026, 10, 26)], ["17:00", "18:00", "18:00"]),  # and back
], ids=["spring-forward", "fall-back"])
def test_a_site_with_daylight_saving_is_swept_at_its_local_day_end_each_day(app, session, make_site, make_user,
                                                                           make_item, days, day_ends_utc):
    """London's 18:00 day end is 18:00 UTC in winter and 17:00 UTC in summer; the change day itself is swept at its
    own local 18:00, once."""
    london = make_site("London", timezone="Europe/London", day_end=time(18, 0))
    london.created_at = datetime(2026, 1, 5, tzinfo=UTC)  # in use since January
    holder = make_user()
    for day, utc in zip(days, day_ends_utc, strict=True):
        day_end = datetime.combine(day, time.fromisoformat(utc), tzinfo=UTC)
        assert in_london(day, 18) == day_end
        co = out(session, at(session, make_item(), london), holder, in_london(day, 9), due=in_london(day, 17))
        jobs.run_sweeps_if_missed(app, in_london(day, 12))
        jobs.run_sweeps_if_missed(app, day_end - timedelta(minutes=1))
        assert flagged(session, {co.id: "London"}) == set(), day
        jobs.run_sweeps_if_missed(app, day_end)
        assert flagged(session, {co.id: "London"}) == {"London"}, day
        row = session.scalars(select(Sweep).where(Sweep.site_id == london.id, Sweep.business_date == day)).one()
        assert (row.started_at, row.runs) == (day_end, 1)


def test_a_site_whose_zone_cannot_be_read_does_not_stop_the_others(app, session, make_site, make_user, make_item,
                                                                    caplog):
    make_site("Atlantis", timezone="Atlantic/Atlantis")  # not a zone: the admin pages refuse it; a typo in the data
    singapore = make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))
    co = out(session, at(session, make_item(), singapore), make_user(), tokyo(1, 10), due=tokyo(1, 17))
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))
    results = jobs.run_sweeps_if_missed(app, tokyo(1, 20))
    assert [r.site_id for r in results] == [None, singapore.id] and flagged(session, {co.id: "Singapore"}) == {"Singapore"}
    assert "could not be swept" in caplog.text
