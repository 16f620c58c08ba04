""""I still have it" (issue 15, item 5), the rules and the scheduler's side: holders of long take-outs asked once per
period, confirmations only by the holder through a current label, once a day, unanswered asks escalated to the
desk once; two taps at once and two scheduler runs at once do each thing once (SQLite and PostgreSQL); the
e-mails go through a real SMTP server, each in its reader's language."""

from __future__ import annotations

from datetime import time

import pytest
from sqlalchemy import select

from tests.helpers import NOW, at_once, events, reread, tokyo
from tests.listeners import SmtpServer, smtp_config
from tracker import jobs
from tracker.custody import confirmations, rules
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.errors import NotOut, NotPermitted
from tracker.items import register as items_mod
from tracker.models import Checkout, DataClass, Item, Kind, LabelToken, User

pytestmark = pytest.mark.postgres  # the conditional UPDATEs, the selection's SQL and the races

TOKYO = Policy(timezone="Asia/Tokyo", day_end=time(19, 0))


@pytest.fixture
def asks_every(session, admin):
    """Save a rule asking holders of `kind` × `data_class` to confirm every `days` (None: never)."""

    def save(days, kind=Kind.laptop, data_class=DataClass.personal):
        rules.save(session, NOW, rules.Rule(kind=kind.value, data_class=data_class.value, confirm_every_days=days),
                   actor=admin)
        session.commit()

    return save


def out(session, item, holder, at=None):
    """A long take-out: from 1 June 09:00 (Tokyo) until the 30th."""
    co = custody.check_out(session, at or tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=tokyo(30, 18),
                           reason="Long audit at the client")
    session.commit()
    return co


def label_of(session, item) -> LabelToken:
    reread(session)
    return session.scalar(select(LabelToken).where(LabelToken.item_id == item.id, LabelToken.replaced_at.is_(None)))


def prompts(session, now) -> list[int]:
    claimed = confirmations.claim_prompts(session, now, TOKYO)
    session.commit()
    return [co.item_id for co in claimed]


def escalate(session, now) -> list[int]:
    claimed = confirmations.claim_escalations(session, now)
    session.commit()
    return [co.item_id for co in claimed]


def confirm(session, now, item, user):
    co = confirmations.confirm(session, now, label=label_of(session, item), actor=session.get(User, user.id),
                               policy=TOKYO, source="10.0.0.7")
    session.commit()
    return co


# --- asking ------------------------------------------------------------------------------------------------------


def test_the_holder_is_asked_once_per_period_counted_from_the_take_out_then_from_each_confirmation(
        session, make_user, make_item, asks_every):
    asks_every(3)
    hana = make_user(name="Hana")
    laptop = make_item()
    out(session, laptop, hana)
    assert prompts(session, tokyo(4, 8, 59)) == []  # three days after 1 June 09:00 is 4 June 09:00
    assert prompts(session, tokyo(4, 9)) == [laptop.id]
    assert prompts(session, tokyo(6, 18)) == []  # the same period: asked already
    assert prompts(session, tokyo(7, 9)) == [laptop.id]  # still not confirmed: the next period asks again
    confirm(session, tokyo(7, 10), laptop, hana)
    assert prompts(session, tokyo(10, 9, 59)) == []  # three days from the confirmation, not from the take-out
    assert prompts(session, tokyo(10, 10)) == [laptop.id]


def test_only_rules_that_ask_and_only_open_take_outs_are_asked(session, make_user, make_item, asks_every):
    asks_every(3)
    asks_every(None, Kind.usb, DataClass.personal)
    hana = make_user(name="Hana")
    laptop, usb, returned = make_item(), make_item(Kind.usb), make_item()
    for item in (laptop, usb, returned):
        out(session, item, hana)
    custody.return_item(session, tokyo(2, 9), item=session.get(Item, returned.id), actor=session.get(User, hana.id))
    session.commit()
    assert prompts(session, tokyo(5, 9)) == [laptop.id]


# --- confirming --------------------------------------------------------------------------------------------------


def test_the_holder_confirms_once_a_day_and_the_item_counts_as_seen(session, make_user, make_item, asks_every):
    asks_every(3)
    hana = make_user(name="Hana")
    laptop = make_item()
    out(session, laptop, hana)
    prompts(session, tokyo(4, 9))
    co = confirm(session, tokyo(4, 12), laptop, hana)
    assert co.custody_confirmed_at == tokyo(4, 12)
    assert session.get(Item, laptop.id).last_counted_at == tokyo(4, 12)
    with pytest.raises(confirmations.AlreadyConfirmed):  # a double tap, or the same day again
        confirm(session, tokyo(4, 23, 59), laptop, hana)
    session.rollback()
    confirm(session, tokyo(5, 0, 0), laptop, hana)  # a new local day
    recorded = events(session, "custody_confirmed")
    assert [(e.actor_id, e.item_id, e.source, e.at) for e in recorded] == [
        (hana.id, laptop.id, "10.0.0.7", tokyo(4, 12)), (hana.id, laptop.id, "10.0.0.7", tokyo(5, 0))]


def test_nobody_but_the_holder_confirms_and_only_with_the_current_label(session, make_user, make_item, admin,
                                                                        asks_every):
    asks_every(3)
    hana, desk = make_user(name="Hana"), make_user("security", name="Desk")
    laptop, spare = make_item(), make_item()
    out(session, laptop, hana)
    old = label_of(session, laptop)
    items_mod.issue_label(session, tokyo(2, 9), session.get(Item, laptop.id), session.get(User, admin.id))
    session.commit()
    for label, who, refusal in ((label_of(session, laptop), desk, NotPermitted),  # even the desk: not in hand
                                (old, hana, confirmations.LabelReplaced),
                                (label_of(session, spare), hana, NotOut)):  # another item's label
        with pytest.raises(refusal):
            confirmations.confirm(session, tokyo(4, 10), label=label, actor=session.get(User, who.id), policy=TOKYO)
        session.rollback()
    assert events(session, "custody_confirmed") == []
    assert session.get(Item, laptop.id).last_counted_at is None
    assert session.scalar(select(Checkout.custody_confirmed_at).where(Checkout.item_id == laptop.id)) is None


# --- escalation to the desk --------------------------------------------------------------------------------------


def test_an_ask_unanswered_for_a_day_goes_to_the_desk_once_and_a_confirmation_takes_it_off(session, make_user,
                                                                                           make_item, asks_every):
    asks_every(3)
    hana, kenji = make_user(name="Hana"), make_user(name="Kenji")
    laptop, usb = make_item(name="Laptop"), make_item(name="Another laptop")
    out(session, laptop, hana)
    out(session, usb, kenji)
    assert sorted(prompts(session, tokyo(4, 9))) == sorted([laptop.id, usb.id])
    confirm(session, tokyo(4, 20), usb, kenji)  # answered in time
    assert escalate(session, tokyo(5, 8, 59)) == []
    assert escalate(session, tokyo(5, 9)) == [laptop.id]
    assert escalate(session, tokyo(5, 18)) == []  # once per ask
    assert [co.item_id for co in confirmations.unconfirmed(session)] == [laptop.id]
    unconfirmed = events(session, "custody_unconfirmed")
    assert [(e.item_id, e.subject_user_id, e.actor_id) for e in unconfirmed] == [(laptop.id, hana.id, None)]

    assert prompts(session, tokyo(7, 9)) == [laptop.id]  # the next period asks again, and may escalate again
    assert escalate(session, tokyo(8, 9)) == [laptop.id]
    confirm(session, tokyo(8, 10), laptop, hana)
    assert confirmations.unconfirmed(session) == []


# --- at once -----------------------------------------------------------------------------------------------------


def test_two_taps_at_once_record_one_confirmation(app, session, make_user, make_item, asks_every):
    asks_every(3)
    hana = make_user(name="Hana")
    laptop = make_item()
    out(session, laptop, hana)
    token = label_of(session, laptop).token

    def tap(s):
        label = s.scalar(select(LabelToken).where(LabelToken.token == token))
        return confirmations.confirm(s, tokyo(4, 10), label=label, actor=s.get(User, hana.id), policy=TOKYO).id

    results = at_once(app, tap, tap, refused=(confirmations.AlreadyConfirmed,))
    assert sorted(type(r).__name__ for r in results) == ["AlreadyConfirmed", "int"], results
    assert len(events(session, "custody_confirmed")) == 1


def test_two_scheduler_runs_at_once_ask_each_holder_once_and_escalate_once(app, session, make_user, make_item,
                                                                           asks_every):
    asks_every(3)
    holders = [make_user(name=f"Holder {n}") for n in range(3)]
    items = [make_item() for _ in holders]
    for item, holder in zip(items, holders, strict=True):
        out(session, item, holder)
    asked = at_once(app, *[lambda s: [co.item_id for co in confirmations.claim_prompts(s, tokyo(4, 9), TOKYO)]] * 2)
    assert all(isinstance(r, list) for r in asked), asked
    assert sorted(asked[0] + asked[1]) == sorted(i.id for i in items)
    escalated = at_once(app, *[lambda s: [co.item_id for co in confirmations.claim_escalations(s, tokyo(5, 9))]] * 2)
    assert all(isinstance(r, list) for r in escalated), escalated
    assert sorted(escalated[0] + escalated[1]) == sorted(i.id for i in items)
    assert len(events(session, "custody_unconfirmed")) == 3


# --- the e-mails -------------------------------------------------------------------------------------------------


def test_holders_are_asked_in_their_language_and_the_desk_told_of_the_unanswered(new_app, make_user, make_item,
                                                                                  session, asks_every):
    with SmtpServer() as smtp:
        app = new_app(**smtp_config(smtp), DESK_EMAILS="desk@example.com")
        asks_every(3)
        kenji, emma = make_user(name="Kenji Sato", language="ja"), make_user(name="Emma Stone", language="en")
        laptop, usb = make_item(name="営業ノートPC"), make_item(name="Sales laptop")
        out(session, laptop, kenji)
        out(session, usb, emma)
        assert jobs.run_custody_confirmations(app, tokyo(4, 9)) == (2, 0)
        assert jobs.run_custody_confirmations(app, tokyo(4, 10)) == (0, 0)  # asked already this period
        (ja,) = smtp.inbox.to(kenji.email)
        assert ja["Subject"] == "所持確認のお願い（1件）"
        body = ja.get_content()
        assert "営業ノートPC" in body and "「手元にあります」" in body and "https://track.example.com/still-have-it" in body
        (en,) = smtp.inbox.to(emma.email)
        assert en["Subject"] == "Please confirm you still have 1 item(s)"
        assert "Scan the label on each item" in en.get_content()
        assert smtp.inbox.to("desk@example.com") == []

        reread(session)
        confirm(session, tokyo(4, 18), usb, emma)
        assert jobs.run_custody_confirmations(app, tokyo(5, 9)) == (0, 1)
        (desk,) = smtp.inbox.to("desk@example.com")
        assert desk["Subject"] == "所持未確認：1名から所持の確認がありません"  # the site's default language
        assert "Kenji Sato" in desk.get_content() and "Emma Stone" not in desk.get_content()
        assert jobs.run_custody_confirmations(app, tokyo(5, 10)) == (0, 0)
        assert len(smtp.inbox.messages) == 3


def test_the_desk_gets_the_days_count_digest_once(new_app, make_user, make_item, make_site, session, admin):
    with SmtpServer() as smtp:
        app = new_app(**smtp_config(smtp), DESK_EMAILS="desk@example.com", DEFAULT_LANGUAGE="en")
        osaka = make_site("Osaka", desk_emails="osaka-desk@example.com")
        rules.save(session, NOW, rules.Rule(kind="laptop", data_class="personal", count_every_months=6), actor=admin)
        session.commit()
        main = make_item(name="Main laptop")
        branch = make_item(name="Osaka laptop")
        session.get(Item, branch.id).site_id = osaka.id
        session.commit()
        assert jobs.run_count_digest(app, tokyo(1, 9, month=12)) == 2
        assert jobs.run_count_digest(app, tokyo(1, 15, month=12)) == 0
        (desk,) = smtp.inbox.to("desk@example.com")
        assert desk["Subject"] == "1 item(s) due for a stock-take count"
        body = desk.get_content()
        assert f"{main.asset_tag} (Main laptop) Next count: 2026-12-01" in body and "Osaka laptop" not in body
        assert "https://track.example.com/desk/counts-due" in body
        (osaka_desk,) = smtp.inbox.to("osaka-desk@example.com")
        assert osaka_desk["Subject"] == "1 item(s) due for a stock-take count (Osaka)"
        assert "Osaka laptop" in osaka_desk.get_content()
        assert jobs.run_count_digest(app, tokyo(2, 9, month=12)) == 2  # the next day, still due
        assert "overdue by 1 day(s)" in smtp.inbox.to("desk@example.com")[-1].get_content()
