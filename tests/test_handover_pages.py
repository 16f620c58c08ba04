"""Hand-over offers through HTTP: the holder offers on the item page, the receiver is e-mailed in their language and
accepts or declines on the offer page, the giver sees the wait and can cancel, "my items" lists what waits; CSRF,
only the receiver accepts, strangers see nothing, bad ids, and the desk's direct move."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import (
    NOW,
    client_for,
    csrf_from,
    events,
    flashes,
    open_checkout,
    post,
    reread,
)
from tests.listeners import SmtpServer
from tracker import jobs
from tracker.custody import handover
from tracker.custody import operations as custody
from tracker.models import DataClass, HandoverOffer, Kind, Notification, OfferStatus

pytestmark = pytest.mark.usefixtures("frozen_clock")


@pytest.fixture
def giver(make_user):
    return make_user(name="Alice Aoki", language="en")


@pytest.fixture
def receiver(make_user):
    return make_user(name="Bob Baba", language="en")


def out_with(session, item, holder):
    co = custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=NOW.replace(hour=10))
    session.commit()
    return co


def offer_of(session, giver, receiver, item):
    offer = handover.offer(session, NOW, item=item, to=receiver, actor=giver)
    session.commit()
    return offer


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def the_offer(session) -> HandoverOffer:
    reread(session)
    return session.scalars(select(HandoverOffer)).one()


# --- the giver ---------------------------------------------------------------------------------------------------


def test_the_holder_offers_on_the_item_page_and_keeps_it_until_the_receiver_accepts(app, session, giver, receiver,
                                                                                     make_item):
    item = make_item(data_class=DataClass.none)
    co = out_with(session, item, giver)
    c = client_for(app, giver)
    item_page = text(c.get(f"/items/{item.asset_tag}"))
    assert "Hand over to a colleague" in item_page and "Bob Baba" not in item_page  # the people are on its own page
    page = c.get(f"/items/{item.asset_tag}/handover?next=/items/{item.asset_tag}")
    assert 'name="to"' in text(page) and "Bob Baba" not in text(page)  # typed, with suggestions: no list of people
    resp = c.post(f"/items/{item.asset_tag}/handover", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "to": receiver.email, "checkout": str(co.id)},
        follow_redirects=True)
    assert flashes(resp) == [("success", f"Offered to Bob Baba. {item.asset_tag} stays yours until they accept.")]
    assert "Waiting for Bob Baba to accept the hand-over." in text(resp)
    assert "Hand over to a colleague" not in text(resp)  # one offer at a time
    assert the_offer(session).status == OfferStatus.pending
    assert open_checkout(session, item).holder_id == giver.id
    assert session.scalar(select(Notification.id)) is None  # no mail server set up: nothing to send


def test_only_the_holder_and_the_desk_open_the_hand_over_page(app, session, giver, receiver, make_user, make_item):
    item = make_item(data_class=DataClass.none)
    url = f"/items/{item.asset_tag}/handover"
    assert client_for(app, giver).get(url).headers["Location"] == f"/items/{item.asset_tag}"  # not out: its page
    out_with(session, item, giver)
    assert client_for(app, receiver).get(url).status_code == 403
    desk = text(client_for(app, make_user("security")).get(url))
    assert "Move it to someone directly" in desk and "Offer it to" not in desk  # the desk does not hold it
    assert 'id="to" name="to"' in desk and "Bob Baba" not in desk
    mine = text(client_for(app, giver).get(f"{url}?next=https://evil.example/"))
    assert "evil.example" not in mine and f'href="/items/{item.asset_tag}"' in mine  # back to its page, only there


def test_an_offer_without_the_csrf_token_changes_nothing(app, session, giver, receiver, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    resp = client_for(app, giver).post(f"/items/{item.asset_tag}/handover", data={"to": receiver.email})
    assert resp.status_code == 400
    assert session.scalar(select(HandoverOffer.id)) is None
    offer = offer_of(session, giver, receiver, item)
    bob = client_for(app, receiver)
    for action in ("accept", "decline", "cancel"):
        assert bob.post(f"/handovers/{offer.id}/{action}").status_code == 400
    assert the_offer(session).status == OfferStatus.pending


def test_a_stale_item_page_cannot_offer_what_changed_hands(app, session, giver, receiver, make_user, make_item):
    desk = make_user("security")
    item = make_item(data_class=DataClass.none)
    shown = out_with(session, item, giver)
    c = client_for(app, giver)
    page = c.get(f"/items/{item.asset_tag}").get_data(as_text=True)
    custody.return_item(session, NOW, item=item, actor=desk)
    out_with(session, item, giver)  # out again: another check-out than the page showed
    resp = c.post(f"/items/{item.asset_tag}/handover", data={"csrf_token": csrf_from(page), "to": receiver.email,
                                                             "checkout": str(shown.id)}, follow_redirects=True)
    assert any(cat == "error" and "changed hands" in msg for cat, msg in flashes(resp))
    assert session.scalar(select(HandoverOffer.id)) is None


def test_the_giver_cancels_from_the_item_page(app, session, giver, receiver, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    offer = offer_of(session, giver, receiver, item)
    c = client_for(app, giver)
    page = f"/items/{item.asset_tag}"
    assert f'action="/handovers/{offer.id}/cancel"' in c.get(page).get_data(as_text=True)
    resp = post(c, f"/handovers/{offer.id}/cancel", {"next": page}, page=page, follow=True)
    assert flashes(resp) == [("success", f"The offer to Bob Baba is cancelled; {item.asset_tag} stays with Alice Aoki.")]
    assert the_offer(session).status == OfferStatus.cancelled
    assert open_checkout(session, item).holder_id == giver.id


# --- the receiver ------------------------------------------------------------------------------------------------


def test_the_receiver_is_emailed_in_their_language_with_the_link(new_app, make_user, make_item, session):
    with SmtpServer() as smtp:
        app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
        alice = make_user(name="Alice Aoki", language="en")
        kenji, emma = make_user(name="Kenji Sato", language="ja"), make_user(name="Emma Stone", language="en")
        usb, laptop = make_item(Kind.usb, name="Client USB"), make_item(Kind.laptop, name="Sales laptop")
        out_with(session, usb, alice)
        out_with(session, laptop, alice)
        c = client_for(app, alice)
        post(c, f"/items/{usb.asset_tag}/handover", {"to": kenji.email}, page=f"/items/{usb.asset_tag}")
        post(c, f"/items/{laptop.asset_tag}/handover", {"to": emma.email}, page=f"/items/{laptop.asset_tag}")
        reread(session)
        queued = session.scalars(select(Notification).order_by(Notification.id)).all()
        assert [n.recipient for n in queued] == [kenji.email, emma.email]  # queued with the offer itself
        jobs.run_delivery(app, NOW)
        offers = {o.to_user_id: o.id for o in session.scalars(select(HandoverOffer))}
        (ja,) = smtp.inbox.to(kenji.email)
        assert ja["Subject"] == f"Alice Aoki さんから {usb.asset_tag} の引き継ぎの申し出"
        body = ja.get_content()
        assert "受け入れた時点で" in body and "Client USB" in body
        assert f"https://track.example.com/handovers/{offers[kenji.id]}" in body
        (en,) = smtp.inbox.to(emma.email)
        assert en["Subject"] == f"Alice Aoki is handing {laptop.asset_tag} over to you"
        assert f"https://track.example.com/handovers/{offers[emma.id]}" in en.get_content()


def test_my_items_lists_the_offers_waiting_and_the_offer_page_accepts_with_the_rules_ticked(app, session, giver,
                                                                                           receiver, make_item):
    usb = make_item(Kind.usb, name="Client USB", data_class=DataClass.personal)
    out_with(session, usb, giver)
    offer = offer_of(session, giver, receiver, usb)
    bob = client_for(app, receiver)
    mine = text(bob.get("/my"))
    assert "Offered to you" in mine and "Alice Aoki offers to hand it over to you." in mine
    assert f'href="/handovers/{offer.id}"' in mine

    page = bob.get(f"/handovers/{offer.id}")
    assert page.status_code == 200
    shown = text(page)
    for part in (usb.asset_tag, "Client USB", "Alice Aoki", "Handling rules for personal data", "Accept", "Decline"):
        assert part in shown, part
    refused = bob.post(f"/handovers/{offer.id}/accept", data={"csrf_token": csrf_from(page.get_data(as_text=True))})
    assert refused.status_code == 400
    assert 'aria-invalid="true"' in refused.get_data(as_text=True)  # the message sits at the tick box
    assert open_checkout(session, usb).holder_id == giver.id

    resp = post(bob, f"/handovers/{offer.id}/accept", {"rules_ack": "1"}, page=f"/handovers/{offer.id}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/items/{usb.asset_tag}")
    assert flashes(bob.get(f"/items/{usb.asset_tag}")) == [("success", f"{usb.asset_tag} is now yours.")]
    assert open_checkout(session, usb).holder_id == receiver.id
    accepted = the_offer(session)
    assert accepted.status == OfferStatus.accepted and accepted.handling_ack is True
    assert "Offered to you" not in text(bob.get("/my"))
    assert "Accepted by Bob Baba on" in text(bob.get(f"/handovers/{offer.id}"))


def test_the_receiver_declines_and_the_giver_keeps_it(app, session, giver, receiver, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    offer = offer_of(session, giver, receiver, item)
    bob = client_for(app, receiver)
    resp = post(bob, f"/handovers/{offer.id}/decline", page=f"/handovers/{offer.id}")
    assert resp.status_code == 303 and resp.headers["Location"].endswith("/my")
    assert flashes(bob.get("/my")) == [("success", f"You declined {item.asset_tag}; Alice Aoki keeps it.")]
    assert open_checkout(session, item).holder_id == giver.id
    again = post(bob, f"/handovers/{offer.id}/accept", page=f"/handovers/{offer.id}")
    assert again.status_code == 400
    assert ("error", f"Bob Baba declined the hand-over of {item.asset_tag}.") in flashes(again)


def test_only_the_receiver_accepts_and_strangers_see_nothing(app, session, giver, receiver, make_user, make_item):
    carol = make_user(name="Carol Chiba", language="en")
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    offer = offer_of(session, giver, receiver, item)
    stranger = client_for(app, carol)
    assert stranger.get(f"/handovers/{offer.id}").status_code == 404
    for action in ("accept", "decline", "cancel"):
        assert post(stranger, f"/handovers/{offer.id}/{action}").status_code == 404
    alice = client_for(app, giver)
    assert "Waiting for Bob Baba to accept the hand-over." in text(alice.get(f"/handovers/{offer.id}"))
    resp = post(alice, f"/handovers/{offer.id}/accept", page=f"/handovers/{offer.id}")
    assert resp.status_code == 403
    assert ("error", "You are not permitted to do that.") in flashes(resp)
    post(alice, f"/handovers/{offer.id}/decline", page=f"/handovers/{offer.id}")
    assert the_offer(session).status == OfferStatus.pending
    assert open_checkout(session, item).holder_id == giver.id
    assert events(session, "handover") == []


def test_bad_offer_ids_are_not_found(app, receiver):
    bob = client_for(app, receiver)
    for path in ("/handovers/999999", "/handovers/abc", "/handovers/-1", "/handovers/0"):
        assert bob.get(path).status_code == 404, path
    assert post(bob, "/handovers/999999/accept").status_code == 404
    assert post(bob, "/handovers/abc/accept").status_code == 404


def test_an_offer_ended_by_a_return_says_so_to_the_receiver(app, session, giver, receiver, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    offer = offer_of(session, giver, receiver, item)
    custody.return_item(session, NOW, item=item, actor=giver)
    session.commit()
    bob = client_for(app, receiver)
    assert "This offer was cancelled on" in text(bob.get(f"/handovers/{offer.id}"))
    resp = post(bob, f"/handovers/{offer.id}/accept", page=f"/handovers/{offer.id}")
    assert resp.status_code == 400
    assert ("error", f"The offer to hand {item.asset_tag} over to Bob Baba ended: the item was returned or handed "
                     "over in the meantime.") in flashes(resp)
    assert open_checkout(session, item) is None


# --- the desk ------------------------------------------------------------------------------------------------------


def test_the_desk_moves_custody_directly_and_staff_cannot(app, session, giver, receiver, make_user, make_item):
    desk = make_user("security", name="Desk Officer", language="en")
    item = make_item(data_class=DataClass.none)
    co = out_with(session, item, giver)
    page = f"/items/{item.asset_tag}"
    assert post(client_for(app, receiver), f"{page}/handover/direct", {"to": "me"}, page=page).status_code == 403
    d = client_for(app, desk)
    assert "Move it to someone directly (security desk)" in text(d.get(page))
    assert "without the receiver's confirmation" in text(d.get(f"{page}/handover"))
    resp = post(d, f"{page}/handover/direct", {"to": receiver.email, "checkout": str(co.id)}, page=page, follow=True)
    assert flashes(resp) == [("success", f"{item.asset_tag} is now held by Bob Baba.")]
    assert open_checkout(session, item).holder_id == receiver.id
    data = json.loads(events(session, "handover")[-1].data)
    assert data["direct"] is True and data["receiver_confirmed"] is False


def test_staff_see_no_way_to_take_an_item_and_are_told_to_ask_for_an_offer(app, session, giver, receiver, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, giver)
    page = text(client_for(app, receiver).get(f"/items/{item.asset_tag}"))
    assert "To take it over, ask Alice Aoki to offer it to you." in page
    assert "Take over" not in page and "/handover" not in page
    offer_of(session, giver, receiver, item)
    page = text(client_for(app, receiver).get(f"/items/{item.asset_tag}"))
    assert "Alice Aoki offers to hand it over to you." in page
    assert re.search(r'href="/handovers/\d+"', page)


def test_the_next_day_an_unanswered_offer_shows_as_lapsed_even_before_the_scheduler_ran(app, session, giver, receiver,
                                                                                        make_item, frozen_clock):
    item = make_item(data_class=DataClass.none)
    co = custody.check_out(session, NOW, item=item, holder=giver, actor=giver, due_at=NOW + timedelta(days=2))
    session.commit()
    offer = offer_of(session, giver, receiver, item)
    frozen_clock["now"] = NOW + timedelta(days=1)
    bob = client_for(app, receiver)
    page = text(bob.get(f"/handovers/{offer.id}"))
    assert "This offer lapsed at the end of its day." in page and ">Accept<" not in page
    assert "Offered to you" not in text(bob.get("/my"))
    assert "Waiting for Bob Baba" not in text(client_for(app, giver).get(f"/items/{item.asset_tag}"))
    resp = post(bob, f"/handovers/{offer.id}/accept", page=f"/handovers/{offer.id}")
    assert resp.status_code == 400 and open_checkout(session, item).id == co.id


def test_the_giver_is_told_when_the_offer_is_declined_or_lapses(new_app, session, make_user, make_item):
    with SmtpServer() as smtp:
        app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port)
        alice, kenji = make_user(name="Alice Aoki", language="en"), make_user(name="Kenji Sato", language="ja")
        emma = make_user(name="Emma Stone", language="en")
        declined, forgotten = make_item(data_class=DataClass.none), make_item(data_class=DataClass.none)
        out_with(session, declined, alice)
        out_with(session, forgotten, kenji)
        first = offer_of(session, alice, emma, declined)
        offer_of(session, kenji, emma, forgotten)
        post(client_for(app, emma), f"/handovers/{first.id}/decline", page=f"/handovers/{first.id}")
        jobs.run_delivery(app, NOW)
        (no,) = smtp.inbox.to(alice.email)
        assert no["Subject"] == f"Emma Stone declined the hand-over of {declined.asset_tag}"
        assert "still checked out to you" in no.get_content()
        assert f"https://track.example.com/items/{declined.asset_tag}" in no.get_content()
        assert jobs.run_handover_expiry(app, NOW + timedelta(days=1)) == 1  # the next day: Kenji's offer lapsed
        (lapsed,) = smtp.inbox.to(kenji.email)
        assert forgotten.asset_tag in str(lapsed["Subject"]) and "Emma Stone" in str(lapsed["Subject"])
        assert "still checked out" not in lapsed.get_content()  # Kenji reads Japanese
        assert smtp.inbox.to(emma.email) == []  # the receiver, who did nothing or said no, hears nothing more
