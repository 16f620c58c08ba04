"""The JSON API at /api/v1/: tokens (made, shown once, hashed, scoped, expiring, revoked, dead with their user),
each endpoint doing what the page does through the same rules, per-object authorisation, and problem+json errors."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import NOW, at_once, client_for, count, post, reread
from tracker.accounts import tokens
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk.sweep import sweep
from tracker.errors import InvalidInput
from tracker.items import register
from tracker.models import ApiToken, Checkout, DataClass, Event, Flag, FlagStatus, Item, Kind, LabelToken

pytestmark = pytest.mark.usefixtures("english", "frozen_clock")
API = "/api/v1"
PROBLEM = "application/problem+json"


@pytest.fixture
def token_for(session):
    """Make a token for a user through the rules (as the account page does); returns the secret."""

    def make(user, scopes="read,act", days=30):
        issued = tokens.create(session, NOW, user=user, actor=None, name="test", scopes=scopes, days=days)
        session.commit()
        return issued.secret

    return make


@pytest.fixture
def call(client):
    """A request to the API with a bearer token, in English unless told."""

    def send(method, path, secret=None, body=None, lang="en", **kw):
        headers = {"Accept-Language": lang, **kw.pop("headers", {})}
        if secret:
            headers["Authorization"] = f"Bearer {secret}"
        if body is not None:
            kw["json"] = body
        return client.open(API + path, method=method, headers=headers, **kw)

    return send


@pytest.fixture
def staff(make_user):
    return make_user(name="Hanako Yamada", email="hanako@example.com")


@pytest.fixture
def colleague(make_user):
    return make_user(name="Taro Sato", email="taro@example.com")


@pytest.fixture
def desk(make_user):
    return make_user("security", name="Desk Officer")


def is_problem(resp, status: int) -> dict:
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.mimetype == PROBLEM
    body = resp.get_json(force=True)
    assert body["status"] == status and body["title"] and body["detail"] and body["type"]
    return body


def out(session, item, holder, hours=8, at=NOW):
    co = custody.check_out(session, at, item=item, holder=holder, actor=holder, due_at=at + timedelta(hours=hours))
    session.commit()
    return co


# --- the description ---------------------------------------------------------------------------------------------


def test_the_description_is_openapi_3_1_generated_from_the_code(call):
    resp = call("GET", "/openapi.json")
    assert resp.status_code == 200
    spec = resp.get_json()
    assert spec["openapi"] == "3.1.0"
    assert {"/api/v1/items", "/api/v1/items/{tag}/checkout", "/api/v1/labels/{token}/return", "/api/v1/flags",
            "/api/v1/events", "/api/v1/users"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["bearer"] == {
        "type": "http", "scheme": "bearer", "description": "A personal API token (Your settings → API tokens)"}
    conflict = spec["components"]["responses"]["CONFLICT"]["content"]
    assert list(conflict) == [PROBLEM]


# --- tokens --------------------------------------------------------------------------------------------------------


def test_a_token_is_kept_only_as_its_hash(session, staff, token_for):
    secret = token_for(staff)
    row = session.scalars(select(ApiToken)).one()
    assert row.token_hash == hashlib.sha256(secret.encode()).hexdigest()
    assert secret not in json.dumps([row.name, row.prefix, row.scopes, row.token_hash])
    assert secret.startswith("trk_") and len(secret) > 40


def test_without_a_token_the_api_answers_401_with_www_authenticate(call):
    body = is_problem(call("GET", "/me"), 401)
    assert "Authorization: Bearer" in body["detail"]
    assert call("GET", "/me").headers["WWW-Authenticate"].startswith("Bearer")


def test_a_wrong_token_is_401(call, staff, token_for):
    token_for(staff)
    is_problem(call("GET", "/me", "trk_not-a-real-token"), 401)
    is_problem(call("GET", "/me", headers={"Authorization": "Basic abc"}), 401)


def test_a_token_acts_as_its_user_and_says_its_scopes(call, staff, token_for):
    resp = call("GET", "/me", token_for(staff, "read"))
    assert resp.status_code == 200
    assert resp.get_json()["email"] == "hanako@example.com" and resp.get_json()["scopes"] == ["read"]
    assert resp.headers["Cache-Control"] == "no-store"


def test_an_expired_token_stops_working(call, staff, token_for, frozen_clock):
    secret = token_for(staff, days=1)
    assert call("GET", "/me", secret).status_code == 200
    frozen_clock["now"] = NOW + timedelta(days=1)
    is_problem(call("GET", "/me", secret), 401)


def test_a_revoked_token_stops_working_at_once(call, session, staff, token_for):
    secret = token_for(staff)
    tokens.revoke(session, NOW, session.scalars(select(ApiToken)).one(), staff)
    session.commit()
    is_problem(call("GET", "/me", secret), 401)
    assert count(session, Event, Event.action == "api_token_revoked") == 1


def test_a_disabled_users_tokens_stop_working_at_once(call, session, staff, admin, token_for):
    from tracker.accounts import users

    secret = token_for(staff)
    assert call("GET", "/me", secret).status_code == 200
    users.set_active(session, NOW, staff, False, admin)
    session.commit()
    is_problem(call("GET", "/me", secret), 401)


def test_scopes_bound_what_a_token_may_do(call, staff, make_item, token_for):
    item = make_item()
    reader = token_for(staff, "read")
    body = is_problem(call("POST", f"/items/{item.asset_tag}/checkout", reader, {}), 403)
    assert "act scope" in body["detail"]
    with pytest.raises(InvalidInput):
        token_for(staff, "read,admin")  # the admin scope is for admins only


def test_an_admin_token_without_the_admin_scope_cannot_register(call, admin, token_for):
    is_problem(call("POST", "/items", token_for(admin, "read,act"), {"kind": "usb", "name": "Spare"}), 403)


def test_a_staff_account_cannot_manage_someone_elses_tokens(session, staff, colleague, token_for):
    from tracker.errors import NotPermitted

    token_for(colleague)
    with pytest.raises(NotPermitted):
        tokens.revoke(session, NOW, session.scalars(select(ApiToken)).one(), staff)


def test_every_use_is_an_audit_event(call, session, staff, token_for):
    secret = token_for(staff, "read")
    call("GET", "/items?kind=usb", secret)
    call("GET", "/me", secret)
    reread(session)
    uses = session.scalars(select(Event).where(Event.action == "api_request").order_by(Event.seq)).all()
    assert [json.loads(e.data)["path"] for e in uses] == ["/api/v1/items?kind=usb", "/api/v1/me"]
    assert {e.actor_id for e in uses} == {staff.id}
    assert session.scalars(select(ApiToken)).one().last_used_at == NOW


def test_requests_past_the_per_minute_limit_are_429(app, call, staff, token_for, frozen_clock):
    app.config["API_RATE_PER_MINUTE"] = 2
    secret = token_for(staff)
    assert call("GET", "/me", secret).status_code == 200
    assert call("GET", "/me", secret).status_code == 200
    resp = call("GET", "/me", secret)
    is_problem(resp, 429)
    assert 1 <= int(resp.headers["Retry-After"]) <= 60
    frozen_clock["now"] = NOW + timedelta(minutes=1)
    assert call("GET", "/me", secret).status_code == 200


def test_the_cli_makes_a_token_that_works(app, runner, call, staff):
    result = runner.invoke(args=["api-token", "create", staff.email, "--scopes", "read,act", "--days", "7"])
    assert result.exit_code == 0, result.output
    secret = next(line for line in result.output.splitlines() if line.startswith("trk_"))
    assert call("GET", "/me", secret).get_json()["scopes"] == ["act", "read"]
    bad = runner.invoke(args=["api-token", "create", staff.email, "--scopes", "root"])
    assert bad.exit_code != 0 and "Scopes must be among" in bad.output


def test_the_session_cookie_is_not_accepted(admin_client, make_item):
    item = make_item()
    resp = admin_client.post(f"{API}/items/{item.asset_tag}/checkout", json={}, headers={"Accept-Language": "en"})
    is_problem(resp, 401)
    assert "Set-Cookie" not in resp.headers


# --- custody -------------------------------------------------------------------------------------------------------


def test_check_out_and_return_by_asset_tag(call, session, staff, make_item, token_for):
    item = make_item(kind=Kind.laptop, data_class=DataClass.none)
    secret = token_for(staff)
    resp = call("POST", f"/items/{item.asset_tag}/checkout", secret, {"purpose": "Client demo"})
    assert resp.status_code == 201, resp.get_json()
    assert resp.get_json()["holder"]["email"] == staff.email and resp.get_json()["purpose"] == "Client demo"
    reread(session)
    event = session.scalars(select(Event).where(Event.action == "checkout")).one()
    assert event.actor_id == staff.id and event.item_id == item.id
    back = call("POST", f"/items/{item.asset_tag}/return", secret, {})
    assert back.status_code == 200 and back.get_json()["checkout"]["returned_at"]
    assert count(session, Checkout, Checkout.returned_at.is_(None)) == 0


def test_already_out_is_409_saying_by_whom_since_when(call, session, staff, colleague, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    out(session, item, colleague)
    body = is_problem(call("POST", f"/items/{item.asset_tag}/checkout", token_for(staff), {}), 409)
    assert body["detail"] == "Already out: Taro Sato since 2026-06-01 10:00."
    assert body["holder"] == "Taro Sato" and body["since"].startswith("2026-06-01T01:00")
    assert body["type"].endswith("/already-out")


def test_problem_detail_follows_accept_language(call, session, staff, colleague, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    out(session, item, colleague)
    body = is_problem(call("POST", f"/items/{item.asset_tag}/checkout", token_for(staff), {}, lang="ja"), 409)
    assert "Taro Sato" in body["detail"] and "2026/06/01 10:00" in body["detail"]
    assert body["detail"] != "Already out: Taro Sato since 2026-06-01 10:00."


def test_check_out_by_label_token_and_a_replaced_label(call, session, staff, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    label = session.scalars(select(LabelToken).where(LabelToken.item_id == item.id)).one()
    secret = token_for(staff)
    assert call("POST", f"/labels/{label.token.lower()}/checkout", secret, {}).status_code == 201
    register.issue_label(session, NOW, item, None)
    session.commit()
    body = is_problem(call("POST", f"/labels/{label.token}/return", secret, {}), 410)
    assert "replaced" in body["detail"]
    is_problem(call("POST", "/labels/NOSUCHLABEL/return", secret, {}), 404)


def test_a_staff_token_cannot_return_someone_elses_item(call, session, staff, colleague, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    out(session, item, colleague)
    is_problem(call("POST", f"/items/{item.asset_tag}/return", token_for(staff), {}), 403)
    assert count(session, Checkout, Checkout.returned_at.is_(None)) == 1


def test_a_staff_token_cannot_read_someone_elses_checkout_by_its_id(call, session, staff, colleague, make_item,
                                                                    token_for):
    theirs = out(session, make_item(data_class=DataClass.none), colleague)
    mine = out(session, make_item(data_class=DataClass.none), staff)
    secret = token_for(staff, "read")
    assert call("GET", f"/checkouts/{mine.id}", secret).status_code == 200
    is_problem(call("GET", f"/checkouts/{theirs.id}", secret), 404)
    listed = call("GET", "/checkouts", secret).get_json()
    assert [r["id"] for r in listed["rows"]] == [mine.id]
    item = call("GET", f"/items/{theirs.item.asset_tag}", secret).get_json()
    assert item["status"] == "out" and item["checkout"] is None  # out, but not whose


def test_the_desk_sees_everything_out(call, session, staff, colleague, desk, make_item, token_for):
    a = out(session, make_item(data_class=DataClass.none), colleague)
    b = out(session, make_item(data_class=DataClass.none), staff, hours=2)
    listed = call("GET", "/checkouts", token_for(desk, "read")).get_json()
    assert [r["id"] for r in listed["rows"]] == [b.id, a.id] and listed["total"] == 2


def test_a_hand_over_is_an_offer_that_moves_custody_when_the_receiver_accepts(call, session, staff, colleague,
                                                                              make_user, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    co = out(session, item, staff)
    offered = call("POST", f"/items/{item.asset_tag}/handover", token_for(staff),
                   {"to": colleague.email, "checkout_id": co.id})
    assert offered.status_code == 202, offered.get_data(as_text=True)
    offer = offered.get_json()
    assert offer["status"] == "pending" and offer["receiver"]["name"] == "Taro Sato" and offer["checkout_id"] == co.id
    assert call("GET", f"/checkouts/{co.id}", token_for(staff)).get_json()["holder"]["name"] == "Hanako Yamada"
    waiting = call("GET", "/handovers", token_for(colleague)).get_json()
    assert [o["id"] for o in waiting] == [offer["id"]]
    assert call("GET", "/handovers", token_for(staff)).get_json() == []  # offers *to* you, not from you
    is_problem(call("POST", f"/handovers/{offer['id']}/accept", token_for(staff), {}), 403)  # not the receiver
    stranger = token_for(make_user(name="Jiro Stranger"))
    is_problem(call("POST", f"/handovers/{offer['id']}/accept", stranger, {}), 404)  # nobody else sees it
    accepted = call("POST", f"/handovers/{offer['id']}/accept", token_for(colleague), {})
    assert accepted.status_code == 200 and accepted.get_json()["holder"]["name"] == "Taro Sato"
    stale = call("POST", f"/items/{item.asset_tag}/handover", token_for(colleague), {"to": staff.email,
                                                                                     "checkout_id": co.id})
    assert "changed hands" in is_problem(stale, 409)["detail"]


def test_a_take_out_the_rule_sends_for_approval_answers_202_with_the_request(call, session, staff, make_user,
                                                                              make_item, token_for):
    from tracker.custody import rules
    from tracker.models import Approval

    admin = make_user("admin")
    item = make_item(kind="usb", data_class=DataClass.sensitive)
    rules.save(session, NOW, replace(rules.recommended("usb", "sensitive"), approval=Approval.named,
                                     approvers=(admin.id,)), actor=admin)
    session.commit()
    resp = call("POST", f"/items/{item.asset_tag}/checkout", token_for(staff),
                {"purpose": "Audit", "destination": "Osaka", "handling_ack": True})
    assert resp.status_code == 202, resp.get_data(as_text=True)
    body = resp.get_json()
    assert body["status"] == "pending" and body["asset_tag"] == item.asset_tag and body["request_id"] > 0
    assert call("GET", f"/items/{item.asset_tag}", token_for(staff)).get_json()["checkout"] is None  # still in


def test_only_the_desk_moves_custody_directly(call, session, staff, colleague, desk, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    out(session, item, staff)
    is_problem(call("POST", f"/items/{item.asset_tag}/handover", token_for(staff),
                    {"to": colleague.email, "direct": True}), 403)
    moved = call("POST", f"/items/{item.asset_tag}/handover", token_for(desk), {"to": colleague.email, "direct": True})
    assert moved.status_code == 200 and moved.get_json()["holder"]["name"] == "Taro Sato"


def test_the_giver_cancels_and_the_receiver_declines(call, session, staff, colleague, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    out(session, item, staff)
    first = call("POST", f"/items/{item.asset_tag}/handover", token_for(staff), {"to": colleague.email}).get_json()
    cancelled = call("POST", f"/handovers/{first['id']}/cancel", token_for(staff))
    assert cancelled.status_code == 200 and cancelled.get_json()["status"] == "cancelled"
    again = call("POST", f"/items/{item.asset_tag}/handover", token_for(staff), {"to": colleague.email}).get_json()
    declined = call("POST", f"/handovers/{again['id']}/decline", token_for(colleague))
    assert declined.status_code == 200 and declined.get_json()["status"] == "declined"
    assert call("GET", f"/items/{item.asset_tag}", token_for(staff)).get_json()["checkout"]["holder"]["name"] \
        == "Hanako Yamada"


def test_checking_out_for_someone_else_is_for_the_desk(call, staff, colleague, desk, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    is_problem(call("POST", f"/items/{item.asset_tag}/checkout", token_for(staff), {"holder": colleague.email}), 403)
    resp = call("POST", f"/items/{item.asset_tag}/checkout", token_for(desk), {"holder": colleague.email})
    assert resp.status_code == 201 and resp.get_json()["holder"]["email"] == colleague.email


def test_a_rule_refusal_is_422_per_field(call, staff, make_item, token_for):
    item = make_item(data_class=DataClass.personal)  # the first take-out of the day asks for the handling rules
    body = is_problem(call("POST", f"/items/{item.asset_tag}/checkout", token_for(staff), {}), 422)
    assert "handling_ack" in body["errors"]


# --- items ---------------------------------------------------------------------------------------------------------


def test_items_list_filters_and_pages(call, staff, make_item, token_for):
    for _ in range(3):
        make_item(kind=Kind.usb)
    make_item(kind=Kind.laptop)
    secret = token_for(staff, "read")
    page = call("GET", "/items?kind=usb&per_page=2", secret).get_json()
    assert page["total"] == 3 and page["pages"] == 2 and len(page["rows"]) == 2
    assert {r["kind"] for r in page["rows"]} == {"usb"}
    second = call("GET", "/items?kind=usb&per_page=2&page=2", secret).get_json()
    assert len(second["rows"]) == 1
    body = is_problem(call("GET", "/items?kind=spaceship", secret), 422)
    assert "kind" in body["errors"]


def test_admins_register_edit_and_retire_items(call, session, admin, token_for):
    secret = token_for(admin, "read,admin")
    made = call("POST", "/items", secret, {"kind": "usb", "name": "Payroll USB", "data_class": "my_number"})
    assert made.status_code == 201, made.get_json()
    tag = made.get_json()["asset_tag"]
    assert tag.startswith("USB-")
    edited = call("PATCH", f"/items/{tag}", secret, {"name": "Payroll USB (2026)"})
    assert edited.get_json()["name"] == "Payroll USB (2026)" and edited.get_json()["data_class"] == "my_number"
    assert call("POST", f"/items/{tag}/retire", secret).get_json()["status"] == "retired"
    reread(session)
    assert [e.action for e in session.scalars(select(Event).where(Event.item_id.is_not(None)).order_by(Event.seq))] \
        == ["item_created", "label_issued", "item_updated", "item_retired"]
    assert session.scalars(select(Item)).one().retired


def test_admins_read_and_reissue_an_items_label(call, session, admin, staff, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    secret = token_for(admin, "read,act,admin")
    old = call("GET", f"/items/{item.asset_tag}/label", secret).get_json()
    assert old["url"].lower() == f"https://track.example.com/s/{old['token']}".lower()
    new = call("POST", f"/items/{item.asset_tag}/label", secret)
    assert new.status_code == 201 and new.get_json()["token"] != old["token"]
    is_problem(call("POST", f"/labels/{old['token']}/checkout", secret, {}), 410)
    assert call("POST", f"/labels/{new.get_json()['token']}/checkout", secret, {}).status_code == 201
    is_problem(call("GET", f"/items/{item.asset_tag}/label", token_for(staff, "read")), 403)


def test_admins_get_an_items_label_as_a_png(call, admin, staff, make_item, token_for):
    item = make_item(data_class=DataClass.none)
    resp = call("GET", f"/items/{item.asset_tag}/label.png?layout=jp-24", token_for(admin, "read,admin"))
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert resp.data.startswith(b"\x89PNG")
    assert "layout" in is_problem(call("GET", f"/items/{item.asset_tag}/label.png?layout=nope",
                                       token_for(admin, "read,admin")), 422)["errors"]
    is_problem(call("GET", f"/items/{item.asset_tag}/label.png", token_for(staff, "read")), 403)


def test_a_staff_token_cannot_register_items(call, staff, token_for):
    is_problem(call("POST", "/items", token_for(staff), {"kind": "usb", "name": "Mine"}), 403)


def test_invalid_values_are_422_per_field_and_nothing_changes(call, session, admin, token_for):
    secret = token_for(admin, "read,admin")
    body = is_problem(call("POST", "/items", secret, {"kind": "usb", "name": "x", "people_count": -1,
                                                      "encrypted": "perhaps"}), 422)
    assert {"people_count", "encrypted"} <= set(body["errors"])
    body = is_problem(call("POST", "/items", secret, {"kind": "usb", "name": "x", "bag": "BG-9999"}), 422)
    assert "BG-9999" in body["detail"]
    assert count(session, Item) == 0


def test_malformed_json_is_400(call, admin, token_for):
    resp = call("POST", "/items", token_for(admin, "read,admin"), data="{not json",
                headers={"Content-Type": "application/json"})
    assert "not valid JSON" in is_problem(resp, 400)["detail"]


def test_unknown_addresses_and_methods_are_problems(call, staff, token_for):
    is_problem(call("GET", "/nothing-here", token_for(staff)), 404)
    resp = call("DELETE", "/items", token_for(staff))
    is_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]
    is_problem(call("GET", "/items/NO-SUCH-TAG", token_for(staff)), 404)


# --- flags, events, users ------------------------------------------------------------------------------------------


@pytest.fixture
def flagged(session, staff, make_item):
    item = make_item(data_class=DataClass.none)
    out(session, item, staff, hours=1, at=NOW - timedelta(hours=3))
    result = sweep(session, NOW, Policy())
    session.commit()
    return result.flags[0]


def test_the_desk_lists_acknowledges_and_resolves_flags(call, session, desk, flagged, token_for):
    secret = token_for(desk)
    listed = call("GET", "/flags", secret).get_json()
    assert [f["id"] for f in listed["rows"]] == [flagged.id] and listed["rows"][0]["status"] == "open"
    ack = call("POST", f"/flags/{flagged.id}/acknowledge", secret, {"note": "Called: back tomorrow 9:00"})
    assert ack.status_code == 200 and ack.get_json()["status"] == "acknowledged"
    done = call("POST", f"/flags/{flagged.id}/resolve", secret, {"how": "returned"})
    assert done.get_json()["status"] == "resolved"
    reread(session)
    assert session.get(Flag, flagged.id).status == FlagStatus.resolved
    assert count(session, Checkout, Checkout.returned_at.is_(None)) == 0
    is_problem(call("POST", f"/flags/{flagged.id}/resolve", secret, {"how": "returned"}), 422)
    is_problem(call("POST", "/flags/999999999999/resolve", secret, {"how": "returned"}), 404)


def test_flags_are_for_the_desk(call, staff, flagged, token_for):
    is_problem(call("GET", "/flags", token_for(staff)), 403)
    is_problem(call("POST", f"/flags/{flagged.id}/acknowledge", token_for(staff), {"note": "mine"}), 403)


def test_events_carry_the_chain_hashes_and_filter_by_item_and_time(call, session, desk, staff, make_item, token_for):
    first = make_item(data_class=DataClass.none)
    out(session, first, staff, at=NOW + timedelta(minutes=5))
    secret = token_for(desk, "read")
    events = call("GET", f"/events?item={first.asset_tag}", secret).get_json()["rows"]
    assert [e["action"] for e in events] == ["item_created", "label_issued", "checkout"]
    chain = call("GET", "/events?per_page=100", secret).get_json()["rows"]
    assert all(b["prev_hash"] == a["hash"] for a, b in zip(chain, chain[1:], strict=False))
    later = call("GET", "/events?since=2026-06-01T01:04:00Z&until=2026-06-01T01:06:00%2B00:00", secret).get_json()
    assert [e["action"] for e in later["rows"]] == ["checkout"]
    is_problem(call("GET", "/events", token_for(staff, "read")), 403)


def test_users_are_for_admins(call, admin, staff, token_for):
    secret = token_for(admin, "read,admin")
    listed = call("GET", "/users", secret).get_json()
    assert {u["email"] for u in listed["rows"]} == {admin.email, staff.email}
    assert call("GET", f"/users/{staff.id}", secret).get_json()["role"] == "staff"
    is_problem(call("GET", "/users/99999", secret), 404)
    is_problem(call("GET", "/users", token_for(staff, "read")), 403)


# --- the token pages -----------------------------------------------------------------------------------------------


def _new_secret(page: str) -> str:
    match = re.search(r'id="new-token"[^>]*>(trk_[^<]+)<', page)
    assert match, "no new token on the page"
    return match.group(1)


def test_a_user_makes_a_token_on_their_page_and_it_is_shown_once(app, call, session, staff):
    c = client_for(app, staff)
    resp = post(c, "/account/tokens", {"name": "Chat bot", "scope_read": "y", "days": "30"}, page="/account/tokens")
    assert resp.status_code == 200
    secret = _new_secret(resp.get_data(as_text=True))
    assert call("GET", "/me", secret).get_json()["scopes"] == ["read"]
    again = c.get("/account/tokens").get_data(as_text=True)
    assert secret not in again and secret[:10] in again  # only its first characters, to tell tokens apart
    event = session.scalars(select(Event).where(Event.action == "api_token_created")).one()
    assert event.actor_id == staff.id and event.subject_user_id == staff.id and secret not in event.data


def test_a_staff_member_cannot_give_a_token_the_admin_scope(app, session, staff):
    c = client_for(app, staff)
    resp = post(c, "/account/tokens", {"name": "Sneaky", "scope_admin": "y"}, page="/account/tokens")
    assert resp.status_code == 400 and "only for admin accounts" in resp.get_data(as_text=True)
    assert count(session, ApiToken) == 0


def test_token_pages_keep_to_their_owner_or_an_admin(app, session, staff, colleague, admin, token_for):
    token_for(colleague)
    theirs = session.scalars(select(ApiToken)).one()
    c = client_for(app, staff)
    assert c.get(f"/admin/users/{colleague.id}/tokens").status_code == 403
    assert post(c, f"/account/tokens/{theirs.id}/revoke", page="/account/tokens").status_code == 404
    reread(session)
    assert session.get(ApiToken, theirs.id).revoked_at is None
    a = client_for(app, admin)
    assert colleague.name in a.get(f"/admin/users/{colleague.id}/tokens").get_data(as_text=True)
    assert post(a, f"/admin/users/{colleague.id}/tokens/{theirs.id}/revoke",
                page=f"/admin/users/{colleague.id}/tokens").status_code == 303
    reread(session)
    assert session.get(ApiToken, theirs.id).revoked_by_id == admin.id
    made = post(a, f"/admin/users/{colleague.id}/tokens", {"name": "HR sync", "scope_read": "y"},
                page=f"/admin/users/{colleague.id}/tokens")
    assert _new_secret(made.get_data(as_text=True)).startswith("trk_")


@pytest.mark.postgres
def test_the_rate_limit_holds_for_requests_racing_on_one_token(app, session, staff, token_for):
    """Eight requests at once on one token with room for three: the token's locked row lets exactly three through,
    each recorded once, on SQLite and PostgreSQL."""
    secret = token_for(staff, "read")

    def use(s) -> str:
        tokens.use(s, NOW, secret, 3, method="GET", path="/api/v1/me")
        return "used"

    results = ["throttled" if isinstance(r, tokens.Throttled) else r
               for r in at_once(app, *[use] * 8, refused=(tokens.Throttled,))]
    assert sorted(results) == ["throttled"] * 5 + ["used"] * 3, results
    reread(session)
    assert count(session, Event, Event.action == "api_request") == 3
    assert session.scalars(select(ApiToken)).one().window_requests == 3


def test_a_request_beyond_the_tokens_scope_is_kept_as_a_refusal(call, session, staff, token_for):
    is_problem(call("GET", "/users", token_for(staff, "read")), 403)
    reread(session)
    refusal = session.scalars(select(Event).where(Event.action == "refused")).one()
    assert refusal.actor_id == staff.id and json.loads(refusal.data)["path"] == "/api/v1/users"


def test_field_messages_follow_accept_language(call, admin, token_for):
    body = is_problem(call("POST", "/items", token_for(admin, "read,admin"), {"kind": "usb", "name": "x",
                                                                            "people_count": "many"}, lang="ja"), 422)
    assert body["errors"]["people_count"] == ["整数で指定してください。"]
    assert body["detail"] == "無効な値があります。"
