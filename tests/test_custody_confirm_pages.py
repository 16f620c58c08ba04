""""I still have it" and the counts-due list through HTTP: the scan page offers the confirmation to the holder only,
one POST to the label's own address records it (another user, an old label, another item's label, a GET or a
missing CSRF token record nothing); the e-mail's link explains how; the desk's list filters, pages and shows the
holders who did not confirm; the item page shows the last and next count. English and Japanese."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from tests.helpers import NOW, client_for, events, flashes, label_token, post, reread, tokyo
from tracker.custody import confirmations, rules
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.items import register as items_mod
from tracker.models import Checkout, DataClass, Item, Kind, User

pytestmark = pytest.mark.usefixtures("frozen_clock")
BUTTON = "I still have it"


@pytest.fixture
def asking(session, admin):
    """Laptops with personal data: counted every 6 months, holders confirm every 3 days."""
    rules.save(session, NOW, rules.Rule(kind="laptop", data_class="personal", count_every_months=6,
                                        confirm_every_days=3), actor=admin)
    session.commit()


@pytest.fixture
def hana(make_user):
    return make_user(name="Hana Holder", language="en")


@pytest.fixture
def laptop(session, make_item, hana, asking):
    """A laptop out with Hana since 1 June 10:00 until the 30th."""
    item = make_item(name="Audit laptop")
    custody.check_out(session, NOW, item=item, holder=hana, actor=hana, due_at=tokyo(30, 18), reason="Audit")
    session.commit()
    return item


def speaks(session, user, language: str) -> None:
    """The person chose `language` on their account page: it wins over the browser's."""
    reread(session)
    session.get(User, user.id).language = language
    session.commit()


def text(resp) -> str:
    return resp.get_data(as_text=True)


def test_the_holder_scans_the_label_and_confirms_in_one_tap(app, session, hana, laptop, frozen_clock):
    frozen_clock["now"] = tokyo(4, 10)
    c = client_for(app, hana)
    scan = f"/S/{label_token(session, laptop)}"
    page = text(c.get(scan))
    assert BUTTON in page and "Please confirm from time to time that you still have it." in page
    assert BUTTON not in text(c.get(f"/items/{laptop.asset_tag}"))  # only the label's page is proof
    resp = post(c, f"{scan}/still-have-it", page=scan)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(scan)
    after = c.get(resp.headers["Location"])
    assert ("success", f"Thank you: you confirmed you still have {laptop.asset_tag}.") in flashes(after)
    assert "You last confirmed you have it on 2026-06-04 10:00." in text(after)
    again = post(c, f"{scan}/still-have-it", page=scan, follow=True)  # a second tap: done already
    assert ("info", f"Thank you: you confirmed you still have {laptop.asset_tag}.") in flashes(again)
    (event,) = events(session, "custody_confirmed")
    assert (event.actor_id, event.item_id) == (hana.id, laptop.id)
    assert session.get(Item, laptop.id).last_counted_at == tokyo(4, 10)


def test_nobody_else_no_old_label_no_get_and_no_forged_form_records_anything(app, session, make_user, make_item,
                                                                              admin, hana, laptop, frozen_clock):
    frozen_clock["now"] = tokyo(4, 10)
    desk, colleague = make_user("security"), make_user(name="Colleague")
    spare = make_item(name="Spare")
    scan = f"/S/{label_token(session, laptop)}"
    for who in (colleague, desk):
        c = client_for(app, who)
        assert BUTTON not in text(c.get(scan))
        refused = post(c, f"{scan}/still-have-it", page=scan, follow=True)
        assert ("error", f"Only the person who holds {laptop.asset_tag} can confirm they still have it.") in flashes(
            refused)
    mine = client_for(app, hana)
    assert mine.get(f"{scan}/still-have-it").status_code == 405  # no change on GET
    assert mine.post(f"{scan}/still-have-it").status_code == 400  # no CSRF token
    other = f"/S/{label_token(session, spare)}"
    assert ("error", f"{spare.asset_tag} is not checked out.") in flashes(
        post(mine, f"{other}/still-have-it", page=other, follow=True))
    reread(session)  # write from a fresh snapshot, after the requests
    items_mod.issue_label(session, tokyo(3, 9), session.get(Item, laptop.id), session.get(User, admin.id))
    session.commit()
    old = post(mine, f"{scan}/still-have-it", page="/my", follow=True)
    assert old.status_code == 410 and "replaced" in text(old)
    assert post(mine, "/S/not-a-token/still-have-it", page="/my").status_code == 404
    assert events(session, "custody_confirmed") == []
    reread(session)
    assert session.scalar(select(Checkout.custody_confirmed_at).where(Checkout.item_id == laptop.id)) is None
    assert session.get(Item, laptop.id).last_counted_at is None


def test_no_button_where_the_rule_asks_for_no_confirmation(app, session, make_item, hana, asking):
    usb = make_item(Kind.usb, name="Stick")  # no rule saved for USB drives: never asked
    custody.check_out(session, NOW, item=usb, holder=hana, actor=hana, due_at=tokyo(30, 18), reason="Audit")
    session.commit()
    assert BUTTON not in text(client_for(app, hana).get(f"/S/{label_token(session, usb)}"))


def test_the_emails_link_explains_how_and_lists_what_waits(app, session, hana, laptop, frozen_clock):
    c = client_for(app, hana)
    assert "Nothing is waiting for your confirmation." in text(c.get("/still-have-it"))
    frozen_clock["now"] = tokyo(4, 10)
    page = text(c.get("/still-have-it"))
    assert "Scan the QR label on the item with your phone" in page and laptop.asset_tag in page
    speaks(session, hana, "ja")
    page = text(c.get("/still-have-it"))
    assert "所持の確認" in page and "「手元にあります」をタップしてください" in page


def test_the_scan_page_in_japanese(app, session, make_user, laptop, frozen_clock):
    frozen_clock["now"] = tokyo(4, 10)
    holder = session.get(User, session.scalar(select(Checkout.holder_id).where(Checkout.item_id == laptop.id)))
    speaks(session, holder, "ja")
    c = client_for(app, holder)
    scan = f"/S/{label_token(session, laptop)}"
    assert "手元にあります" in text(c.get(scan))
    done = post(c, f"{scan}/still-have-it", page=scan, follow=True)
    assert ("success", f"ありがとうございます。{laptop.asset_tag}がお手元にあることを確認しました。") in flashes(done)


def test_the_item_page_shows_the_last_and_next_count(app, session, make_item, admin, asking):
    item = make_item(name="Counted laptop")
    c = client_for(app, admin)
    page = text(c.get(f"/items/{item.asset_tag}"))
    assert "Last counted</dt><dd>Not counted yet" in page and "Next count</dt><dd>2026-12-01" in page
    session.get(Item, item.id).last_counted_at = tokyo(20, 10, month=7)
    session.commit()
    page = text(c.get(f"/items/{item.asset_tag}"))
    assert "Last counted</dt><dd>2026-07-20 10:00" in page and "Next count</dt><dd>2027-01-20" in page
    none = make_item(name="Plain", data_class=DataClass.none)
    assert "Next count" not in text(c.get(f"/items/{none.asset_tag}"))


# --- the desk's list ---------------------------------------------------------------------------------------------


def test_the_desk_lists_counts_due_overdue_first_by_site_and_department(app, session, make_item, make_site,
                                                                         make_user, asking, frozen_clock):
    osaka = make_site("Osaka")
    old = make_item(name="Old laptop", department="Sales")
    session.get(Item, old.id).last_counted_at = tokyo(1, 10, month=5)  # next 1 November: overdue
    fresh = make_item(name="Fresh laptop")  # registered 1 June: next 1 December, due
    branch = make_item(name="Osaka laptop")
    session.get(Item, branch.id).site_id = osaka.id
    session.commit()
    frozen_clock["now"] = tokyo(20, 10, month=11)
    c = client_for(app, make_user("security"))
    page = text(c.get("/desk/counts-due/"))
    assert page.index(old.asset_tag) < page.index(fresh.asset_tag)
    assert "Overdue by 19 day(s)" in page and branch.asset_tag in page
    only_main = text(c.get("/desk/counts-due/?site=main"))
    assert old.asset_tag in only_main and branch.asset_tag not in only_main
    only_osaka = text(c.get(f"/desk/counts-due/?site={osaka.id}"))
    assert branch.asset_tag in only_osaka and old.asset_tag not in only_osaka
    sales = session.get(Item, old.id).department_id
    only_sales = text(c.get(f"/desk/counts-due/?department={sales}"))
    assert old.asset_tag in only_sales and fresh.asset_tag not in only_sales
    assert c.get("/desk/counts-due/?site=x&department=;drop&page=-4").status_code == 200  # nonsense filters nothing
    c.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    ja = text(c.get("/desk/counts-due/"))
    assert "棚卸予定" in ja and "19日超過" in ja


def test_the_desk_sees_the_holders_who_did_not_confirm(app, session, make_user, hana, laptop, frozen_clock):
    policy = Policy(timezone="Asia/Tokyo")
    assert confirmations.claim_prompts(session, tokyo(4, 10), policy)  # three days out
    assert confirmations.claim_escalations(session, tokyo(5, 10))  # a day unanswered
    session.commit()
    frozen_clock["now"] = tokyo(5, 11)
    desk = client_for(app, make_user("security"))
    page = text(desk.get("/desk/counts-due/"))
    assert "Custody not confirmed" in page and "Hana Holder" in page and laptop.asset_tag in page
    scan = f"/S/{label_token(session, laptop)}"
    post(client_for(app, hana), f"{scan}/still-have-it", page=scan)
    assert "Custody not confirmed" not in text(desk.get("/desk/counts-due/"))
    assert client_for(app, hana).get("/desk/counts-due/").status_code == 403


def test_the_rules_page_sets_and_shows_the_intervals(app, session, admin):
    c = client_for(app, admin)
    form = {"approval": "nobody", "overnight": "allowed", "count_every_months": "6", "confirm_every_days": "7"}
    resp = post(c, "/admin/rules/usb/personal", form, page="/admin/rules/usb/personal")
    assert resp.status_code == 302
    page = text(c.get("/admin/rules/"))
    assert "6 months" in page and "7 days" in page
    bad = post(c, "/admin/rules/usb/personal", {**form, "count_every_months": "0"}, page="/admin/rules/usb/personal")
    assert bad.status_code == 400 and "Give a number of months between 1 and 60." in text(bad)
    assert rules.table(session, Policy())[("usb", "personal")].version == 1


def test_a_stick_in_a_bag_out_is_asked_for_and_confirmed_by_its_own_label(app, session, make_item, hana, admin,
                                                                          frozen_clock):
    """The bag's rule asks nothing, the stick's does: the stick is asked for, and its own label confirms it."""
    rules.save(session, NOW, rules.Rule(kind="usb", data_class="my_number", confirm_every_days=1), actor=admin)
    session.commit()
    bag = make_item(Kind.bag, name="Audit bag", data_class=DataClass.none)
    stick = make_item(Kind.usb, name="My Number stick", data_class=DataClass.my_number, bag=bag)
    custody.check_out(session, NOW, item=bag, holder=hana, actor=hana, due_at=tokyo(30, 18), reason="Audit")
    session.commit()
    assert [co.item_id for co in confirmations.claim_prompts(session, tokyo(2, 10), Policy())] == [stick.id]
    session.commit()
    frozen_clock["now"] = tokyo(2, 11)
    c = client_for(app, hana)
    scan = f"/S/{label_token(session, stick)}"
    page = text(c.get(scan))
    assert "This item is inside bag" in page and BUTTON in page
    assert BUTTON not in text(c.get(f"/S/{label_token(session, bag)}"))
    done = post(c, f"{scan}/still-have-it", page=scan, follow=True)
    assert ("success", f"Thank you: you confirmed you still have {stick.asset_tag}.") in flashes(done)
    assert [e.item_id for e in events(session, "custody_confirmed")] == [stick.id]
