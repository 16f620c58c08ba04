"""Trust under attack and faults: headers, durable writes, chat text that stays text, dates out of range."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, text

from tests.helpers import EN, client_for, count, csrf_token, flashes, later, post, reread
from tracker import scheduler
from tracker.custody import operations as custody
from tracker.models import Checkout, DataClass, Flag, Kind
from tracker.notify.outbox import chat_text, webhook_format


def test_sqlite_writes_reach_the_disk_before_the_phone_is_told(app):
    if not app.config["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("a SQLite setting")
    with app.extensions["tracker.engine"].connect() as conn:
        assert conn.execute(text("PRAGMA synchronous")).scalar() == 2  # FULL


def test_https_sites_send_hsts_and_private_files_are_never_cached(app, make_user, make_item, session):
    admin = make_user("admin")
    item = make_item()
    c = client_for(app, admin)
    page = c.get("/desk/")
    assert page.headers["Strict-Transport-Security"].startswith("max-age=")
    for url in ("/desk/records/register.csv", f"/admin/labels/preview/{item.asset_tag}.png"):
        resp = c.get(url)
        assert resp.status_code == 200
        assert resp.headers["Cache-Control"] == "no-store", url
        assert "ETag" not in resp.headers and "Last-Modified" not in resp.headers
    app.config["BASE_URL"] = "http://127.0.0.1:5000"
    assert "Strict-Transport-Security" not in c.get("/desk/").headers


@pytest.mark.parametrize("raw, slack", [
    ("<!channel> please", "&lt;!channel&gt; please"),
    ("<https://evil.example|click here>", "&lt;https://evil.example|click here&gt;"),
    ("Tom & Jerry <@U123>", "Tom &amp; Jerry &lt;@U123&gt;"),
])
def test_chat_text_for_slack_cannot_mention_or_link(raw, slack):
    assert chat_text(raw, "slack") == slack


def test_chat_text_for_teams_cannot_format_or_link():
    shown = chat_text("[click](https://evil.example) **bold** <at>all</at> _x_", "teams")
    assert "[click](https" not in shown and "**bold**" not in shown and "<at>" not in shown
    assert shown == r"\[click\]\(https://evil.example\) \*\*bold\*\* &lt;at&gt;all&lt;/at&gt; \_x\_"


@pytest.mark.parametrize("url, fmt, kind", [
    ("https://hooks.slack.com/services/T/B/x", "auto", "slack"),
    ("https://example.webhook.office.com/webhookb2/x", "auto", "teams"),
    ("https://prod-00.japaneast.logic.azure.com/workflows/x", "auto", "teams"),
    ("https://hooks.slack.com/services/T/B/x", "teams", "teams"),
])
def test_the_chat_is_told_by_its_host_or_by_the_setting(url, fmt, kind):
    assert webhook_format({"WEBHOOK_URL": url, "WEBHOOK_FORMAT": fmt}) == kind


@pytest.mark.parametrize("month", ["0000-01", "9999-12", "2026-13", "1-1"])
def test_a_month_out_of_range_is_a_translated_400(app, make_user, month):
    c = client_for(app, make_user("security"))
    resp = c.get(f"/desk/records/?month={month}")
    assert resp.status_code == 400
    assert "outside the dates this system can use" in resp.get_data(as_text=True)


def test_a_month_that_is_not_a_month_shows_this_month(app, make_user):
    c = client_for(app, make_user("security"))
    assert c.get("/desk/records/?month=garbage").status_code == 200


@pytest.mark.parametrize("first, last", [("9999-12-30", "9999-12-31"), ("0001-01-01", "0001-01-02")])
def test_an_export_range_out_of_range_is_a_translated_400(app, make_user, first, last):
    c = client_for(app, make_user("security"))
    resp = c.get(f"/desk/records/checkouts.csv?from={first}&to={last}")
    assert resp.status_code == 400
    assert "outside the dates this system can use" in resp.get_data(as_text=True)


def test_a_take_out_due_in_year_one_is_refused_and_nothing_is_saved(app, make_user, make_item, session):
    staff = make_user()
    item = make_item(data_class="none")
    c = client_for(app, staff)
    resp = post(c, f"/items/{item.asset_tag}/checkout", {"due": "0001-01-01T00:00", "purpose": "x"},
                page=f"/items/{item.asset_tag}")
    assert resp.status_code == 400
    assert "outside the dates this system can use" in resp.get_data(as_text=True)
    assert count(session, Checkout) == 0


def test_a_new_due_time_out_of_range_is_refused_on_the_flag(app, make_user, make_item, session, frozen_clock):
    from tracker import jobs

    staff, desk = make_user(), make_user("security")
    item = make_item(data_class="none")
    custody.check_out(session, later(), item=item, holder=staff, actor=staff, due_at=later(hours=1))
    session.commit()
    frozen_clock["now"] = later(hours=2)
    jobs.run_sweep(app, later(hours=2))
    reread(session)
    flag = session.scalar(select(Flag))
    c = client_for(app, desk)
    resp = post(c, f"/desk/flags/{flag.id}/acknowledge", {"note": "calling", "new_due": "0001-01-01T00:00"},
                page=f"/desk/flags/{flag.id}", follow=True)
    assert resp.status_code == 200
    assert any("outside the dates" in text for _, text in flashes(resp))


def test_the_bag_page_title_holds_no_script(app, make_user, make_item, session):
    staff = make_user()
    bag = make_item(Kind.bag, data_class="none")
    make_item(bag=bag, data_class="none")
    custody.check_out(session, later(), item=bag, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    page = client_for(app, staff).get(f"/items/{bag.asset_tag}").get_data(as_text=True)
    title = page[page.index("<title>"):page.index("</title>")]
    assert "<script" not in title
    assert page.count("bag.js") == 1


def test_the_boards_own_refresh_does_not_keep_an_idle_desk_signed_in(app, make_user, frozen_clock):
    c = client_for(app, make_user("security"))
    for _ in range(4):  # an hour of the board refreshing itself, nobody at the desk
        frozen_clock["now"] += timedelta(minutes=15)
        c.get("/desk/?fragment=1", headers={"X-Background-Refresh": "1"})
    resp = c.get("/desk/")
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]


def _read_only(db_url: str) -> str:
    return f"sqlite:///file:{db_url.removeprefix('sqlite:///')}?mode=ro&uri=true"


def test_the_scheduler_starts_on_a_read_only_database_and_says_why(new_app, db_url, caplog):
    if not db_url.startswith("sqlite"):
        pytest.skip("opens the SQLite file read-only")
    app = new_app(DATABASE_URL=_read_only(db_url))
    with caplog.at_level(logging.ERROR):
        sched = scheduler.start(app, blocking=False)
    try:
        assert sched.running
        assert any("the database is read-only" in r.getMessage() for r in caplog.records)
    finally:
        scheduler.stop(sched)


def test_the_web_side_reads_a_read_only_database_and_refuses_changes_clearly(app, new_app, db_url, make_user,
                                                                               make_item):
    if not db_url.startswith("sqlite"):
        pytest.skip("opens the SQLite file read-only")
    staff = make_user()
    item = make_item(data_class="none")
    page = f"/items/{item.asset_tag}"
    phone = client_for(app, staff)
    token = csrf_token(phone, page)
    read_only = new_app(DATABASE_URL=_read_only(db_url), SECRET_KEY=app.config["SECRET_KEY"])
    same_phone = read_only.test_client()
    same_phone.set_cookie("session", phone.get_cookie("session").value)
    assert same_phone.get(page, headers=EN).status_code == 200  # reading works
    resp = same_phone.post(f"{page}/checkout", data={"csrf_token": token, "purpose": "visit"}, headers=EN)
    assert resp.status_code == 503
    assert "Nothing was recorded. Please try again" in resp.get_data(as_text=True)


# "²" and "٣" are digits to str.isdigit; int() refuses the first and reads the second as 3. Thirty nines overflow
# every integer column.
@pytest.mark.parametrize("raw", ["²", "٣", "9" * 30])
def test_an_id_in_other_digits_or_too_long_is_refused_or_ignored_never_a_crash(app, make_user, make_item, session,
                                                                              raw):
    app.config["PROPAGATE_EXCEPTIONS"] = False  # a crash would be a 500 page, not an exception in the test
    admin, desk, holder = make_user("admin"), make_user("security"), make_user()
    item = make_item(data_class=DataClass.none)
    page = f"/items/{item.asset_tag}"
    by_desk = client_for(app, desk)
    assert post(by_desk, f"{page}/checkout", {"holder": raw, "purpose": "Visit"}, page=page).status_code == 400
    co = custody.check_out(session, later(), item=item, holder=holder, actor=holder, due_at=later(hours=4))
    session.commit()
    assert post(by_desk, f"{page}/handover/direct", {"to": raw, "checkout": str(co.id)}, page=page).status_code == 400
    reread(session)
    assert session.scalar(select(Checkout.holder_id).where(Checkout.returned_at.is_(None))) == holder.id
    listing = client_for(app, admin).get(f"/admin/items/?site={raw}&place={raw}", headers=EN)
    assert listing.status_code == 200 and item.asset_tag in listing.get_data(as_text=True)  # an unknown filter: none
