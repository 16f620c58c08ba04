"""Next counts (issue 15, item 4): the date arithmetic, the list of items due and overdue for a count, the rules'
new intervals, and the desk's daily digest claimed once per site and local day, also by two runs at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, at_once, tokyo
from tracker.custody import rules
from tracker.custody.policy import Policy
from tracker.errors import InvalidInput
from tracker.models import CountDigest, DataClass, Item, Kind
from tracker.stocktake import schedule

pytestmark = pytest.mark.postgres  # the due list's SQL clauses, the digest's unique claim and the race

TOKYO = Policy(timezone="Asia/Tokyo", day_end=time(19, 0))


@pytest.fixture
def interval(session, admin):
    """Save a rule counting `kind` × `data_class` every `months` (None: no interval)."""

    def save(months, kind=Kind.laptop, data_class=DataClass.personal, confirm_days=None):
        rules.save(session, NOW, rules.Rule(kind=kind.value, data_class=data_class.value,
                                            count_every_months=months, confirm_every_days=confirm_days), actor=admin)
        session.commit()

    return save


def counted(session, item, at: datetime | None) -> None:
    """Set the item's last count as a stock-take would (tracker.stocktake's sessions set it)."""
    session.get(Item, item.id).last_counted_at = at
    session.commit()


def at_site(session, item, site):
    """Put the item at `site` (the sites admin's item form does this; here, directly)."""
    session.get(Item, item.id).site_id = site.id if site is not None else None
    session.commit()
    return item


def listed(session, now, **filters) -> list[tuple[str, date, bool]]:
    page = schedule.due_page(session, now, TOKYO, 1, **filters)
    return [(d.item.asset_tag, d.next_on, d.overdue) for d in page.rows]


# --- the arithmetic ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("start, months, expected", [
    (date(2026, 6, 1), 6, date(2026, 12, 1)),
    (date(2026, 11, 15), 3, date(2027, 2, 15)),  # across the year
    (date(2027, 1, 31), 1, date(2027, 2, 28)),  # a day February does not have: its last
    (date(2027, 8, 31), 6, date(2028, 2, 29)),  # a leap year's
    (date(2026, 3, 31), -1, date(2026, 2, 28)),
    (date(2026, 1, 10), -1, date(2025, 12, 10)),
])
def test_months_keep_the_day_or_take_the_months_last(start, months, expected):
    assert rules.add_months(start, months) == expected


def test_the_latest_count_date_due_by_a_day_is_the_exact_inverse_of_adding_months():
    """What the list's SQL compares against: for every day of two years and several intervals, the latest last
    count whose next count falls on or before that day, and not one day later."""
    day = date(2027, 1, 1)
    while day < date(2029, 1, 1):
        for months in (1, 3, 6, 12, 13):
            basis = schedule.latest_basis(day, months)
            assert rules.add_months(basis, months) <= day < rules.add_months(basis + timedelta(days=1), months), (
                day, months)
        day += timedelta(days=1)


def test_the_next_count_is_the_last_count_or_the_registration_plus_the_interval_in_the_sites_zone(
        session, make_item, make_site, interval):
    interval(6)
    singapore = make_site("Singapore", timezone="Asia/Singapore")
    never = make_item()
    tokyo_item = make_item()
    sg_item = at_site(session, make_item(), singapore)
    uncounted = make_item(data_class=DataClass.none)  # no rule: the defaults set no interval
    moment = datetime(2026, 8, 31, 15, 30, tzinfo=UTC)  # 1 September 00:30 in Tokyo, 31 August 23:30 in Singapore
    counted(session, tokyo_item, moment)
    counted(session, sg_item, moment)
    found = rules.table(session, TOKYO)

    def next_of(item):
        item = session.get(Item, item.id)
        return rules.next_count_on(rules.lookup(found, item), item, TOKYO.for_item(item).timezone)

    assert next_of(never) == date(2026, 12, 1)  # registered 1 June (NOW), never counted
    assert next_of(tokyo_item) == date(2027, 3, 1)
    assert next_of(sg_item) == date(2027, 2, 28)  # the same moment is still 31 August there
    assert next_of(uncounted) is None


# --- the list ----------------------------------------------------------------------------------------------------


def test_the_list_shows_what_is_due_within_30_days_and_what_is_overdue_first(session, make_item, interval):
    interval(6)
    interval(3, Kind.usb, DataClass.sensitive)
    registered = make_item(name="Registered 1 June")  # next count 1 December
    soon = make_item(name="Counted 20 June")
    counted(session, soon, tokyo(20, 10))  # next count 20 December: within 30 days of 5 December
    later = make_item(name="Counted 1 August")
    counted(session, later, tokyo(1, 10, month=8))  # next count 1 February: not yet
    sensitive = make_item(Kind.usb, name="Sensitive stick", data_class=DataClass.sensitive)
    counted(session, sensitive, tokyo(15, 10, month=8))  # every 3 months: 15 November, the oldest
    make_item(name="No personal data", data_class=DataClass.none)  # no interval
    retired = make_item(name="Retired")
    session.get(Item, retired.id).retired_at = NOW
    session.commit()

    now = tokyo(5, 9, month=12)
    assert listed(session, now) == [(sensitive.asset_tag, date(2026, 11, 15), True),
                                    (registered.asset_tag, date(2026, 12, 1), True),
                                    (soon.asset_tag, date(2026, 12, 20), False)]
    page = schedule.due_page(session, now, TOKYO, 1)
    assert [d.days_overdue for d in page.rows] == [20, 4, -15]


def test_the_day_of_the_next_count_is_due_the_day_after_overdue_also_at_a_months_end(session, make_item, interval):
    interval(6)
    item = make_item()
    counted(session, item, tokyo(31, 10, month=8))  # 31 August + 6 months: 28 February
    assert listed(session, tokyo(28, 23, 59, month=1, year=2027)) == []  # 31 days before
    assert listed(session, tokyo(29, 0, 0, month=1, year=2027)) == [(item.asset_tag, date(2027, 2, 28), False)]
    assert listed(session, tokyo(28, 23, 59, month=2, year=2027)) == [(item.asset_tag, date(2027, 2, 28), False)]
    assert listed(session, tokyo(1, 0, 0, month=3, year=2027)) == [(item.asset_tag, date(2027, 2, 28), True)]


def test_a_site_in_another_zone_is_due_on_its_own_local_date(session, make_item, make_site, interval):
    interval(1)
    singapore = make_site("Singapore", timezone="Asia/Singapore")
    item = at_site(session, make_item(), singapore)
    counted(session, item, datetime(2026, 6, 30, 15, 30, tzinfo=UTC))  # 30 June in Singapore (1 July in Tokyo)
    # 31 July 00:30 in Tokyo is still 30 July in Singapore: the next count (30 July there) is due, not overdue.
    now = datetime(2026, 7, 30, 15, 30, tzinfo=UTC)
    assert listed(session, now) == [(item.asset_tag, date(2026, 7, 30), False)]


def test_the_list_filters_by_site_and_department_and_pages(session, make_item, make_site, interval):
    interval(6)
    osaka = make_site("Osaka")
    main = [make_item(name=f"Main {n}") for n in range(3)]
    at_osaka = at_site(session, make_item(name="Osaka laptop", department="Sales"), osaka)
    sales = session.get(Item, at_osaka.id).department_id
    now = tokyo(5, 9, month=12)
    assert {t for t, _, _ in listed(session, now, site=schedule.MAIN)} == {i.asset_tag for i in main}
    assert [t for t, _, _ in listed(session, now, site=str(osaka.id))] == [at_osaka.asset_tag]
    assert [t for t, _, _ in listed(session, now, department_id=sales)] == [at_osaka.asset_tag]
    assert len(listed(session, now)) == 4
    first, second = (schedule.due_page(session, now, TOKYO, n, size=3) for n in (1, 2))
    assert (first.total, first.pages, len(first.rows), len(second.rows)) == (4, 2, 3, 1)
    assert {d.item.id for d in first.rows + second.rows} == {i.id for i in [*main, at_osaka]}


# --- the rules' intervals ----------------------------------------------------------------------------------------


def test_the_intervals_are_saved_as_a_new_version_and_bad_numbers_are_refused(session, admin):
    saved = rules.save(session, NOW, rules.Rule(kind="usb", data_class="personal", count_every_months=6,
                                                confirm_every_days=7), actor=admin)
    session.commit()
    assert (saved.count_every_months, saved.confirm_every_days, saved.version) == (6, 7, 1)
    assert rules.Rule.from_snapshot(saved.snapshot()) == saved
    for bad, about in (({"count_every_months": 0}, "count_every_months"), ({"count_every_months": 61},
                       "count_every_months"), ({"confirm_every_days": 0}, "confirm_every_days"),
                       ({"confirm_every_days": 366}, "confirm_every_days")):
        with pytest.raises(InvalidInput) as refused:
            rules.save(session, NOW, rules.Rule(kind="usb", data_class="personal", **bad), actor=admin)
        assert refused.value.about == about
        session.rollback()
    assert rules.table(session, TOKYO)[("usb", "personal")].version == 1


def test_the_recommended_set_counts_personal_data_twice_a_year_and_sensitive_classes_quarterly():
    assert [(c.value, rules.recommended("laptop", c.value).count_every_months) for c in DataClass] == [
        ("none", None), ("personal", 6), ("sensitive", 3), ("my_number", 3)]
    assert [rules.recommended("usb", c.value).confirm_every_days for c in DataClass] == [None, 7, 3, 1]


# --- the desk's daily digest -------------------------------------------------------------------------------------


def digests(session) -> list[tuple[int | None, date, int]]:
    session.rollback()
    return [tuple(r) for r in session.execute(select(CountDigest.site_id, CountDigest.on_date, CountDigest.items)
                                              .order_by(CountDigest.id))]


def claim(session, now) -> list[schedule.Digest]:
    found = schedule.claim_digests(session, now, TOKYO)
    session.commit()
    return found


def test_one_digest_per_site_and_local_day_from_nine_and_only_when_something_is_due(session, make_item, make_site,
                                                                                    interval):
    interval(6)
    singapore = make_site("Singapore", timezone="Asia/Singapore")
    make_item(name="Main laptop")  # registered 1 June: due 1 December
    at_site(session, make_item(name="Singapore laptop"), singapore)
    assert claim(session, tokyo(1, 10, month=11)) == []  # nothing due yet: nothing claimed either
    assert digests(session) == []
    assert claim(session, tokyo(1, 8, 59, month=12)) == []  # before nine
    first = claim(session, tokyo(1, 9, month=12))  # 08:00 in Singapore: not yet there
    assert [(d.site, d.on_date, d.total, [x.item.name for x in d.due]) for d in first] == [
        (None, date(2026, 12, 1), 1, ["Main laptop"])]
    assert [(d.site.name, d.total) for d in claim(session, tokyo(1, 10, month=12))] == [("Singapore", 1)]
    assert claim(session, tokyo(1, 18, month=12)) == []  # the same day at both: already sent
    assert [d.site for d in claim(session, tokyo(2, 10, month=12))] == [None, singapore]  # a new day at both
    assert digests(session) == [(None, date(2026, 12, 1), 1), (singapore.id, date(2026, 12, 1), 1),
                                (None, date(2026, 12, 2), 1), (singapore.id, date(2026, 12, 2), 1)]


def test_two_runs_at_once_send_the_days_digest_once(app, session, make_item, interval):
    interval(6)
    make_item()
    def run(s) -> int:
        return len(schedule.claim_digests(s, tokyo(1, 9, month=12), TOKYO))

    results = at_once(app, run, run)
    assert sorted(results, key=str) == [0, 1], results
    session.rollback()
    assert session.scalar(select(func.count(CountDigest.id))) == 1
