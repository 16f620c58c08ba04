"""Each site's security desk: told of its own overdue items (its addresses, its desk lead), its own site first on the
board (every site on request), times on its own clock, and each site's sweep on /healthz and /metrics against its
own day end."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select

from tests.helpers import client_for, csrf_from, tokyo
from tests.listeners import smtp_config
from tracker import jobs
from tracker.custody import approvals, rules
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import escalation, sweep
from tracker.models import Checkout

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


@pytest.fixture
def offices(make_site):
    """Tokyo is the main office (the settings: Asia/Tokyo, day end 19:00)."""
    return {"Osaka": make_site("Osaka", timezone="Asia/Tokyo", day_end=time(18, 0),
                               desk_emails="osaka-desk@example.com, osaka-guard@example.com"),
            "Singapore": make_site("Singapore", timezone="Asia/Singapore", day_end=time(19, 0))}


def out_at(session, make_item, holder, site, due=None, **item):
    """An item of `site` (None: the main office), out with `holder` since 10:00 until `due` (17:00)."""
    it = make_item(**item)
    it.site_id = site.id if site is not None else None
    session.commit()
    custody.check_out(session, tokyo(1, 10), item=it, holder=holder, actor=holder, due_at=due or tokyo(1, 17))
    session.commit()
    return it


# --- each desk is told of its own items ---------------------------------------------------------------------------


def test_each_sites_desk_is_mailed_its_own_overdue_items_at_its_own_day_end(new_app, session, offices, make_user,
                                                                             make_item, smtp):
    app = new_app(**smtp_config(smtp), DESK_EMAILS="tokyo-desk@example.com")
    holder = make_user(language="en")
    tags = {name: out_at(session, make_item, holder, site).asset_tag
            for name, site in {"Tokyo": None, **offices}.items()}

    def desk_mail(address: str) -> list[str]:
        return [m.get_content() for m in smtp.inbox.to(address)]

    jobs.run_sweeps_if_missed(app, tokyo(1, 12))  # the main office's midnight sweep: nothing was due then
    jobs.run_sweeps_if_missed(app, tokyo(1, 18))  # Osaka's day end
    (osaka,) = desk_mail("osaka-desk@example.com")
    assert desk_mail("osaka-guard@example.com") == [osaka]
    assert tags["Osaka"] in osaka and tags["Tokyo"] not in osaka and tags["Singapore"] not in osaka
    assert f"/desk/?site={offices['Osaka'].id}" in osaka  # the link opens the board on Osaka
    assert desk_mail("tokyo-desk@example.com") == []

    jobs.run_sweeps_if_missed(app, tokyo(1, 19))  # Tokyo's
    (tokyo_mail,) = desk_mail("tokyo-desk@example.com")
    assert tags["Tokyo"] in tokyo_mail and tags["Osaka"] not in tokyo_mail and tags["Singapore"] not in tokyo_mail

    jobs.run_sweeps_if_missed(app, tokyo(1, 20))  # Singapore's 19:00: it has no addresses of its own
    assert len(desk_mail("osaka-desk@example.com")) == 1
    singapore = desk_mail("tokyo-desk@example.com")[1]
    assert tags["Singapore"] in singapore and tags["Tokyo"] not in singapore
    assert [len(smtp.inbox.to(holder.email))] == [3]  # the holder: one digest per sweep that flagged theirs


def test_escalation_goes_to_the_desk_lead_of_the_items_site(session, offices, make_user, make_item, admin):
    rules.save(session, tokyo(1, 9), rules.Rule(kind="laptop", data_class="personal", handling_ack=True,
                                                escalate_after_hours=1), actor=admin)
    osaka_lead = make_user("security", name="Osaka Lead", desk_lead=True)
    osaka_lead.site_id = offices["Osaka"].id
    session.commit()
    make_user("security", name="Tokyo Lead", desk_lead=True)
    holder = make_user()  # no department, so no manager: straight to the desk lead
    osaka_item = out_at(session, make_item, holder, offices["Osaka"])
    singapore_item = out_at(session, make_item, holder, offices["Singapore"])
    tokyo_item = out_at(session, make_item, holder, None)
    for site in (None, *offices.values()):
        sweep.sweep(session, tokyo(1, 21), Policy().at(site))
    session.commit()
    result = escalation.escalate(session, tokyo(1, 23), Policy())
    session.commit()
    told = {step.flag.item.asset_tag: [u.name for u in step.told] for step in result.steps}
    assert told == {osaka_item.asset_tag: ["Osaka Lead"], tokyo_item.asset_tag: ["Tokyo Lead"],
                    # Singapore has no lead of its own: every lead hears of it, so it never goes unheard
                    singapore_item.asset_tag: ["Osaka Lead", "Tokyo Lead"]}


# --- the board ----------------------------------------------------------------------------------------------------


@pytest.fixture
def board_items(session, offices, make_user, make_item):
    holder = make_user()
    return {name: out_at(session, make_item, holder, site).asset_tag
            for name, site in {"Tokyo": None, **offices}.items()}


def shown(page: str, board_items: dict[str, str]) -> set[str]:
    return {name for name, tag in board_items.items() if tag in page}


def test_the_desk_sees_its_own_site_first_and_every_site_on_request(app, session, offices, board_items, make_user):
    osaka_guard = make_user("security")
    osaka_guard.site_id = offices["Osaka"].id  # as the user form will
    session.commit()
    desk = client_for(app, osaka_guard)
    page = desk.get("/desk/").get_data(as_text=True)
    assert shown(page, board_items) == {"Osaka"}
    assert '<option value="{}" selected>Osaka</option>'.format(offices["Osaka"].id) in page
    assert "<th>Site</th>" in page
    everything = desk.get("/desk/?site=all").get_data(as_text=True)
    assert shown(everything, board_items) == {"Tokyo", "Osaka", "Singapore"}
    assert shown(desk.get("/desk/?site=main").get_data(as_text=True), board_items) == {"Tokyo"}
    live = desk.get(f"/desk/?site={offices['Singapore'].id}&fragment=1").get_data(as_text=True)  # the page's own refresh
    assert shown(live, board_items) == {"Singapore"}
    assert shown(desk.get("/desk/?site=999999").get_data(as_text=True), board_items) == {"Tokyo", "Osaka",
                                                                                         "Singapore"}


def test_an_admin_without_a_site_sees_the_main_office_first(app, board_items, admin):
    page = client_for(app, admin).get("/desk/").get_data(as_text=True)
    assert shown(page, board_items) == {"Tokyo"}
    assert '<option value="main" selected>' in page


def test_staff_may_not_see_any_sites_board(app, board_items, make_user):
    staff = client_for(app, make_user())
    for url in ("/desk/", "/desk/?site=all", "/desk/?site=main&fragment=1"):
        assert staff.get(url).status_code == 403


def test_a_one_office_company_sees_no_site_filter_or_column(app, session, make_user, make_item):
    holder = make_user()
    tag = out_at(session, make_item, holder, None).asset_tag
    page = client_for(app, make_user("security")).get("/desk/").get_data(as_text=True)
    assert tag in page and 'name="site"' not in page and "<th>Site</th>" not in page


# --- /healthz and /metrics ----------------------------------------------------------------------------------------


def test_healthz_reports_each_sites_sweep_against_its_own_day_end(app, client, session, offices, make_user,
                                                                  frozen_clock):
    make_user()  # in use since 10:00
    frozen_clock["now"] = tokyo(1, 12)
    body = client.get("/healthz").get_json()  # the sites were set up at 10:00: no day end of theirs missed yet
    assert body["status"] == "ok" and {s["name"]: s["late"] for s in body["sites"]} == {"Osaka": False,
                                                                                        "Singapore": False}
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))
    frozen_clock["now"] = tokyo(1, 18, 6)  # Osaka's 18:00 sweep has not run
    resp = client.get("/healthz")
    body = resp.get_json()
    assert resp.status_code == 503 and body["status"] == "late"
    assert body["sweep"]["late"] is False  # the main office's is not due until 19:00
    sites = {s["name"]: s for s in body["sites"]}
    assert sites["Osaka"]["late"] is True and sites["Osaka"]["due"].startswith("2026-06-01T09:00")
    assert sites["Singapore"]["late"] is False
    page = client.get("/metrics", environ_base=LOCAL).get_data(as_text=True)
    assert 'tracker_site_sweep_late{site="Osaka"} 1.0' in page
    assert 'tracker_site_sweep_late{site="Singapore"} 0.0' in page
    assert "tracker_sweep_late 0.0" in page

    jobs.run_sweeps_if_missed(app, tokyo(1, 18, 6))
    assert client.get("/healthz").status_code == 200
    frozen_clock["now"] = tokyo(1, 20, 6)  # Tokyo's 19:00 ran (below); Singapore's 19:00 (20:00 here) did not
    jobs.run_sweep(app, tokyo(1, 19))
    body = client.get("/healthz").get_json()
    assert body["sweep"]["late"] is False
    assert {s["name"]: s["late"] for s in body["sites"]} == {"Osaka": False, "Singapore": True}


def test_the_board_warns_of_the_chosen_sites_late_sweep(app, session, offices, make_user, frozen_clock):
    guard = make_user("security")
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))
    frozen_clock["now"] = tokyo(1, 18, 30)
    desk = client_for(app, guard)
    assert "sweep-late" not in desk.get("/desk/").get_data(as_text=True)  # the main office's: not due yet
    osaka = desk.get(f"/desk/?site={offices['Osaka'].id}").get_data(as_text=True)
    assert "The end-of-day sweep of Osaka is late" in osaka
    assert "The end-of-day sweep of Osaka is late" in desk.get("/desk/?site=all").get_data(as_text=True)


def test_a_request_waiting_for_the_desk_mails_the_desk_of_the_items_site(new_app, session, offices, make_user,
                                                                        make_item, smtp):
    app = new_app(**smtp_config(smtp), DESK_EMAILS="tokyo-desk@example.com")
    item = make_item()
    item.site_id = offices["Osaka"].id
    session.commit()
    holder = make_user()
    with app.app_context():  # an overnight take-out the desk approves: the desk's turn, no approver by name
        approvals.request_checkout(session, tokyo(1, 10), item=item, holder=holder, due_at=tokyo(2, 17), purpose="p",
                                   destination="d", reason="trip", policy=Policy(approval_required=True),
                                   handling_ack=True)
        session.commit()
    jobs.run_delivery(app, tokyo(1, 10))
    assert len(smtp.inbox.to("osaka-desk@example.com")) == 1 and len(smtp.inbox.to("osaka-guard@example.com")) == 1
    assert smtp.inbox.to("tokyo-desk@example.com") == []


def test_each_reader_sees_times_in_their_own_offices_zone(app, session, offices, make_user, make_item, admin):
    """Singapore's day end is 19:00 there and 20:00 in Tokyo: each desk reads it on its own clock."""
    guard = make_user("security")
    guard.site_id = offices["Singapore"].id
    session.commit()
    tag = out_at(session, make_item, make_user(), offices["Singapore"], due=tokyo(1, 20)).asset_tag
    singapore = client_for(app, guard).get("/desk/?site=all").get_data(as_text=True)
    tokyo_page = client_for(app, admin).get("/desk/?site=all").get_data(as_text=True)
    assert tag in singapore and "2026-06-01 19:00" in singapore and "2026-06-01 20:00" not in singapore
    assert tag in tokyo_page and "2026-06-01 20:00" in tokyo_page


def test_the_take_out_form_offers_and_reads_times_on_the_holders_clock(app, session, offices, make_user, make_item,
                                                                       frozen_clock):
    holder = make_user()
    holder.site_id = offices["Singapore"].id
    item = make_item()
    item.site_id = offices["Singapore"].id
    session.commit()
    phone = client_for(app, holder)
    page = phone.get(f"/items/{item.asset_tag}").get_data(as_text=True)
    assert 'value="2026-06-01T19:00"' in page  # Singapore's day end, in Singapore time
    resp = phone.post(f"/items/{item.asset_tag}/checkout", data={
        "csrf_token": csrf_from(page), "purpose": "visit", "destination": "client", "due": "2026-06-01T18:30",
        "rules_ack": "1"})
    assert resp.status_code in (302, 303)
    session.rollback()
    co = session.scalars(select(Checkout).where(Checkout.item_id == item.id)).one()
    assert co.due_at == tokyo(1, 19, 30)  # 18:30 in Singapore


# --- mail on its reader's clock -----------------------------------------------------------------------------------


def test_each_mail_gives_times_on_its_readers_office_clock(new_app, session, offices, make_site, make_user, make_item,
                                                          smtp):
    """Bangkok's 19:00 is 21:00 in Tokyo. The holder at Bangkok and the one at the main office each read the due time
    on their own clock; Bangkok's own desk on Bangkok's; Singapore has no desk addresses, so the main office's desk
    is told, on the main office's clock."""
    app = new_app(**smtp_config(smtp), DESK_EMAILS="tokyo-desk@example.com", DEFAULT_LANGUAGE="en")
    bangkok = make_site("Bangkok", timezone="Asia/Bangkok", day_end=time(19, 0), desk_emails="bkk-desk@example.com")
    away, home = make_user(language="en"), make_user(language="en")
    away.site_id = bangkok.id
    session.commit()
    tags = {"bkk": out_at(session, make_item, away, bangkok, due=tokyo(1, 21)).asset_tag,
            "bkk-home": out_at(session, make_item, home, bangkok, due=tokyo(1, 21)).asset_tag,
            "sg": out_at(session, make_item, away, offices["Singapore"], due=tokyo(1, 20)).asset_tag}
    jobs.run_sweeps_if_missed(app, tokyo(1, 12))
    jobs.run_sweeps_if_missed(app, tokyo(1, 20))  # Singapore's day end
    jobs.run_sweeps_if_missed(app, tokyo(1, 21))  # Bangkok's

    def due(address: str) -> dict[str, str]:
        """The due time each item's line gives, by the item's tag, in every mail to `address`."""
        return {tag: line.split("Due back: ")[1][:16] for m in smtp.inbox.to(address)
                for line in m.get_content().splitlines() for tag in tags.values() if f"- {tag} (" in line}

    assert due(away.email) == {tags["bkk"]: "2026-06-01 19:00", tags["sg"]: "2026-06-01 18:00"}
    assert due(home.email) == {tags["bkk-home"]: "2026-06-01 21:00"}
    assert due("bkk-desk@example.com") == {tags["bkk"]: "2026-06-01 19:00", tags["bkk-home"]: "2026-06-01 19:00"}
    assert due("tokyo-desk@example.com") == {tags["sg"]: "2026-06-01 20:00"}


def test_a_mail_queued_in_someones_request_is_on_its_readers_clock_not_theirs(new_app, session, offices, make_user,
                                                                              make_item, smtp):
    """A holder at Singapore asks for an overnight take-out of a main-office item: the desk that decides is told the
    due time on the main office's clock, not on the asker's, whose request wrote the mail."""
    from flask_login import login_user

    app = new_app(**smtp_config(smtp), DESK_EMAILS="tokyo-desk@example.com")
    holder = make_user(language="en")
    holder.site = offices["Singapore"]
    item = make_item()
    session.commit()
    with app.test_request_context("/"):
        login_user(holder)
        approvals.request_checkout(session, tokyo(1, 10), item=item, holder=holder, due_at=tokyo(2, 17), purpose="p",
                                   destination="d", reason="trip", policy=Policy(approval_required=True),
                                   handling_ack=True)
        session.commit()
    jobs.run_delivery(app, tokyo(1, 10))
    (mail,) = smtp.inbox.to("tokyo-desk@example.com")
    assert "返却期限: 2026/06/02 17:00" in mail.get_content()  # the default language, Japanese
