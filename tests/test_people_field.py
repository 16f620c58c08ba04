"""A "who" field: the desk's "for whom" on the take-out form and the receiver of a hand-over are typed (a name or
an e-mail address), with suggestions from /people/suggest as one types; no page lists every person in the company.
A name that is no one's, or two people's, is refused next to the field and nothing changes; a number is never taken
for an account's id (it may be someone's employee number)."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import select

from tests.helpers import client_for, count, events, flashes, open_checkout, post
from tests.test_handover_pages import out_with
from tracker.models import Checkout, DataClass, HandoverOffer

pytestmark = pytest.mark.usefixtures("frozen_clock")


def text(resp) -> str:
    return html.unescape(resp.get_data(as_text=True))


def field_tag(resp, field_id: str) -> str:
    """The <input> of the field with that id, as sent (its values escaped)."""
    return re.search(rf'<input [^>]*id="{field_id}"[^>]*>', resp.get_data(as_text=True)).group(0)


def counts(session) -> tuple[int, int, int]:
    """Check-outs, offers and audit events (refusals aside) as committed now."""
    return count(session, Checkout), count(session, HandoverOffer), len(events(session))


@pytest.fixture
def people(make_user):
    return {
        "desk": make_user("security", name="Desk Officer", language="en"),
        "hanako": make_user(name="山田 花子", email="hanako@example.com"),
        "bob": make_user(name="Bob Baba", email="bob@example.com"),
        "ken1": make_user(name="Ken Mori", email="ken.mori@example.com"),
        "ken2": make_user(name="Ken Mori", email="ken.mori2@example.com"),
        "gone": make_user(name="Gone Person", email="gone@example.com", active=False),
        "pct": make_user(name="100% Sato", email="sato@example.com"),
    }


# --- the desk's "for whom" -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["Bob Baba <bob@example.com>", "BOB@example.com", "  bob   baba "])
def test_the_desk_takes_out_for_the_person_it_types(app, session, people, make_item, typed):
    item = make_item(data_class=DataClass.none)
    page = f"/items/{item.asset_tag}"
    resp = post(client_for(app, people["desk"]), f"{page}/checkout", {"holder": typed, "purpose": "Visit"}, page=page)
    assert resp.status_code == 303
    assert open_checkout(session, item).holder_id == people["bob"].id


def test_empty_for_whom_is_the_desk_itself(app, session, people, make_item):
    item = make_item(data_class=DataClass.none)
    page = f"/items/{item.asset_tag}"
    desk = client_for(app, people["desk"])
    shown = text(desk.get(page))
    assert 'id="holder" list="holder-suggestions"' in shown and "Bob Baba" not in shown  # typed, not a list of everyone
    assert post(desk, f"{page}/checkout", {"holder": "", "purpose": "Visit"}, page=page).status_code == 303
    assert open_checkout(session, item).holder_id == people["desk"].id


@pytest.mark.parametrize(("typed", "message"), [
    ("Nobody Here", "No one with an active account is called Nobody Here."),
    ("gone@example.com", "No one with an active account is called gone@example.com."),  # disabled account
    ("Ken Mori", "More than one person is called Ken Mori: choose one by e-mail address."),
    ("3", "No one with an active account is called 3."),  # an employee number, not our id
])
def test_a_for_whom_that_names_no_one_or_two_is_refused_at_the_field(app, session, people, make_item, typed,
                                                                       message):
    item = make_item(data_class=DataClass.none)
    page = f"/items/{item.asset_tag}"
    desk = client_for(app, people["desk"])
    before = counts(session)
    resp = post(desk, f"{page}/checkout", {"holder": typed, "purpose": "Visit"}, page=page)
    assert resp.status_code == 400
    shown = text(resp)
    assert message in shown and f'value="{typed}"' in shown  # next to the field, as typed
    assert 'aria-invalid="true"' in field_tag(resp, "holder")
    assert counts(session) == before


def test_staff_cannot_take_out_for_someone_else(app, session, people, make_item):
    item = make_item(data_class=DataClass.none)
    page = f"/items/{item.asset_tag}"
    resp = post(client_for(app, people["hanako"]), f"{page}/checkout", {"holder": "bob@example.com"}, page=page)
    assert resp.status_code == 303
    assert open_checkout(session, item).holder_id == people["hanako"].id  # the field is the desk's only


# --- the receiver of a hand-over -----------------------------------------------------------------------------------


def test_the_holder_offers_to_a_typed_name(app, session, people, make_item):
    item = make_item(data_class=DataClass.none)
    out_with(session, item, people["hanako"])
    page = f"/items/{item.asset_tag}/handover"
    resp = post(client_for(app, people["hanako"]), page, {"to": "bob baba"}, page=page, follow=True)
    assert flashes(resp) == [("success", f"Offered to Bob Baba. {item.asset_tag} stays yours until they accept.")]
    assert session.scalar(select(HandoverOffer.to_user_id)) == people["bob"].id


@pytest.mark.parametrize(("endpoint", "field"), [("", "offer-to"), ("/direct", "to")])
def test_a_receiver_that_names_no_one_is_refused_on_the_hand_over_page(app, session, people, make_item, endpoint,
                                                                       field):
    item = make_item(data_class=DataClass.none)
    holder = people["desk"] if endpoint == "" else people["hanako"]
    out_with(session, item, holder)
    page = f"/items/{item.asset_tag}/handover"
    desk = client_for(app, people["desk"])
    before = counts(session)
    resp = post(desk, page + endpoint, {"to": "Ken Mori <nobody@example.com>"}, page=page)
    assert resp.status_code == 400
    shown = text(resp)
    assert "No one with an active account is called Ken Mori <nobody@example.com>." in shown
    tag = field_tag(resp, field)
    assert 'aria-invalid="true"' in tag and 'value="Ken Mori <nobody@example.com>"' in html.unescape(tag)
    assert counts(session) == before
    assert open_checkout(session, item).holder_id == holder.id


# --- suggestions ---------------------------------------------------------------------------------------------------


def suggested(client, q: str) -> list[str]:
    resp = client.get("/people/suggest", query_string={"q": q})
    assert resp.status_code == 200 and resp.headers["Cache-Control"] == "no-store"  # names: kept by no cache
    return resp.get_json()["suggestions"]


def test_suggestions_match_a_part_of_a_name_or_an_address_in_any_case(app, people):
    c = client_for(app, people["hanako"])
    assert suggested(c, "ken") == ["Ken Mori <ken.mori@example.com>", "Ken Mori <ken.mori2@example.com>"]
    assert suggested(c, "BOB@") == ["Bob Baba <bob@example.com>"]
    assert suggested(c, "花子") == ["山田 花子 <hanako@example.com>"]
    assert suggested(c, "gone") == []  # a disabled account is no one's to hand to
    assert suggested(c, "%") == ["100% Sato <sato@example.com>"]  # the character, not a wildcard
    assert suggested(c, "_") == []
    assert suggested(c, "   ") == []


def test_suggestions_are_a_few_and_for_signed_in_people_only(app, people, make_user):
    for n in range(12):
        make_user(name=f"Tanaka {n:02d}")
    assert len(suggested(client_for(app, people["hanako"]), "tanaka")) == 8
    anonymous = app.test_client().get("/people/suggest?q=bob")
    assert anonymous.status_code == 302 and "/login" in anonymous.headers["Location"]
