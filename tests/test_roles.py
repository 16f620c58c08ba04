"""Who may do what: every route of the app for anonymous, staff, security and admin, and the
object-level rules (whose item may be returned, handed over or checked out for whom)."""

from __future__ import annotations

from types import SimpleNamespace
from urllib.parse import urlsplit

import pytest
from flask import url_for
from sqlalchemy import func, select

from tests.helpers import NOW, csrf_token, flashes, later, open_checkout
from tests.helpers import client_for as browser
from tests.helpers import reread as fresh
from tracker.custody import operations as custody
from tracker.models import Checkout, Department, Event, HandoverOffer, Item, LabelToken, User

ROLES = ("anonymous", "staff", "security", "admin")
NOT_PERMITTED = "You are not permitted to do that."


# --- expectations ---------------------------------------------------------------------------------

LOGIN = ("login",)  # redirect to the sign-in page
DENY = 403


def to(path: str):
    """A redirect (302 or 303) to `path`; "{tag}" stands for the test item's asset tag."""
    return ("to", path)


def everyone(outcome):
    return dict.fromkeys(ROLES, outcome)


def signed_in(outcome):
    """Anonymous is sent to sign in; every signed-in role gets `outcome`."""
    return {"anonymous": LOGIN, "staff": outcome, "security": outcome, "admin": outcome}


def desk_only(outcome):
    return {"anonymous": LOGIN, "staff": DENY, "security": outcome, "admin": outcome}


def admin_only(outcome):
    return {"anonymous": LOGIN, "staff": DENY, "security": DENY, "admin": outcome}


HOMES = {"staff": "/my", "security": "/desk/", "admin": "/admin/items/"}
ITEM = "/items/{tag}"

# (endpoint, method) -> (form data for a POST, {role: expected outcome}).
# Form data is what the page's own form would send; POSTs always carry a valid CSRF token.
MATRIX: dict[tuple[str, str], tuple[dict, dict]] = {
    ("static", "GET"): ({}, everyone(200)),
    # For load balancers and monitors, no sign-in: 503 while a due sweep has not run (none has here), 200 otherwise.
    ("ops.healthz", "GET"): ({}, everyone(frozenset({200, 503}))),
    ("ops.metrics", "GET"): ({}, everyone(200)),  # the test client calls from 127.0.0.1 (see tests/test_ops.py)
    ("auth.home", "GET"): ({}, {"anonymous": to("/login"), **{r: to(h) for r, h in HOMES.items()}}),
    ("auth.login", "GET"): ({}, {"anonymous": 200, **{r: to(h) for r, h in HOMES.items()}}),
    ("auth.login", "POST"): ({}, everyone(200)),  # an empty form is shown again
    ("auth.logout", "POST"): ({}, signed_in(to("/login"))),
    ("auth.password", "GET"): ({}, signed_in(200)),
    ("auth.password", "POST"): ({}, signed_in(400)),  # empty form
    ("auth.account", "GET"): ({}, signed_in(200)),
    ("auth.people_suggest", "GET"): ({}, signed_in(200)),  # whom a "who" field may name: anyone signed in
    ("auth.account", "POST"): ({"language": "", "phone": "03-1234-5678"}, signed_in(to("/account"))),
    ("custody.item", "GET"): ({}, signed_in(200)),
    ("custody.find", "GET"): ({}, signed_in(200)),
    ("custody.handover_page", "GET"): ({}, signed_in(to(ITEM))),  # not out: back to the item page
    ("custody.scan", "GET"): ({}, everyone(200)),  # a stranger gets whom to call; staff the item page
    ("custody.found_message", "POST"): ({}, everyone(400)),  # a finder's message: public, empty refused
    ("custody.mine", "GET"): ({}, signed_in(200)),
    # "I still have it": only the holder, through the label's address; the test item is not out (an error, back).
    ("confirm.still_have_it", "POST"): ({}, signed_in(frozenset({303}))),
    ("confirm.how_to", "GET"): ({}, signed_in(200)),
    ("counts_due.index", "GET"): ({}, desk_only(200)),
    ("custody.checkout", "POST"): ({"purpose": "visit", "destination": "Osaka", "rules_ack": "1"},
                                   signed_in(to(ITEM))),
    ("custody.return_", "POST"): ({}, signed_in(to(ITEM))),  # not out: an error on the item page
    ("custody.handover", "POST"): ({"to": "me"}, signed_in(to(ITEM))),  # not out: an error on the item page
    ("custody.handover_direct", "POST"): ({"to": "me"}, desk_only(to(ITEM))),  # not out: an error on the item page
    ("custody.offer", "GET"): ({}, signed_in(404)),  # an offer that does not exist
    ("custody.offer_accept", "POST"): ({}, signed_in(404)),
    ("custody.offer_decline", "POST"): ({}, signed_in(404)),
    ("custody.offer_cancel", "POST"): ({}, signed_in(404)),
    # Not waiting for an inspection: an error on the item page.
    ("custody.inspection", "POST"): ({"erasure_method": "format"}, desk_only(to(ITEM))),
    # A take-out request: who sees and decides one is checked per request (tests/test_approval_pages.py).
    ("approvals.show", "GET"): ({}, signed_in(404)),
    ("approvals.decide", "POST"): ({"decision": "approve"}, signed_in(404)),
    ("approvals.cancel", "POST"): ({}, signed_in(404)),
    ("approvals.mine", "GET"): ({}, signed_in(200)),
    ("desk.board", "GET"): ({}, desk_only(200)),
    ("desk.flag_page", "GET"): ({}, desk_only(404)),  # ids that do not exist: the role check comes first
    ("desk.acknowledge", "POST"): ({}, desk_only(404)),
    ("desk.resolve", "POST"): ({}, desk_only(404)),
    ("desk.lost", "POST"): ({}, desk_only(404)),
    ("desk.decide", "POST"): ({"decision": "approve"}, desk_only(404)),
    ("desk.handle_found", "POST"): ({}, desk_only(404)),
    ("desk.handle_found_many", "POST"): ({}, desk_only(to("/desk/"))),  # nothing ticked: back to the board
    ("desk.scanner", "GET"): ({}, desk_only(200)),
    ("desk.scanner", "POST"): ({"code": ""}, desk_only(to("/desk/scanner"))),
    ("incidents.index", "GET"): ({}, desk_only(200)),
    ("incidents.show", "GET"): ({}, desk_only(404)),
    ("incidents.pdf", "GET"): ({}, desk_only(404)),
    ("incidents.by_flag", "GET"): ({}, desk_only(404)),
    ("incidents.action", "POST"): ({}, desk_only(404)),
    ("incidents.assess", "POST"): ({}, desk_only(404)),
    ("incidents.close", "POST"): ({}, desk_only(404)),
    ("stocktake.index", "GET"): ({}, desk_only(200)),
    ("stocktake.open_", "POST"): ({}, desk_only(to("/stocktakes/"))),  # no scope chosen: back to the list
    ("stocktake.show", "GET"): ({}, desk_only(404)),
    ("stocktake.count", "POST"): ({"code": ""}, desk_only(404)),
    ("stocktake.close", "POST"): ({}, desk_only(404)),
    ("stocktake.report_file", "GET"): ({}, desk_only(404)),
    ("reports.index", "GET"): ({}, desk_only(200)),
    ("reports.checkouts_csv", "GET"): ({}, desk_only(to("/desk/records/"))),  # no dates given: back
    ("reports.register_csv", "GET"): ({}, desk_only(200)),
    ("reports.ledger_file", "GET"): ({}, desk_only(200)),
    ("reports.media_register", "GET"): ({}, desk_only(200)),
    ("reports.history", "GET"): ({}, desk_only(200)),
    ("admin_notifications.index", "GET"): ({}, admin_only(200)),
    ("admin_notifications.retry", "POST"): ({}, admin_only(404)),
    ("admin_webhooks.index", "GET"): ({}, admin_only(200)),
    ("admin_webhooks.new", "GET"): ({}, admin_only(200)),
    ("admin_webhooks.new", "POST"): ({}, admin_only(400)),  # a name, an address and events are required
    ("admin_webhooks.edit", "GET"): ({}, admin_only(404)),  # no such webhook
    ("admin_webhooks.edit", "POST"): ({}, admin_only(404)),
    ("admin_webhooks.set_active", "POST"): ({"active": "0"}, admin_only(404)),
    ("admin_webhooks.rotate", "POST"): ({}, admin_only(404)),
    ("admin_webhooks.delete", "POST"): ({}, admin_only(404)),
    ("admin_items.index", "GET"): ({}, admin_only(200)),
    ("admin_items.new", "GET"): ({}, admin_only(200)),
    ("admin_items.new", "POST"): ({}, admin_only(400)),
    ("admin_items.edit", "GET"): ({}, admin_only(200)),
    ("admin_items.edit", "POST"): ({}, admin_only(400)),
    ("admin_items.retire", "POST"): ({}, admin_only(to(ITEM))),
    ("admin_items.dispose", "POST"): ({}, admin_only(to(ITEM))),  # no method chosen: an error on the item page
    ("admin_items.import_", "GET"): ({}, admin_only(200)),
    ("admin_items.import_", "POST"): ({}, admin_only(200)),  # no file: the upload page again
    ("admin_labels.index", "GET"): ({}, admin_only(200)),
    ("admin_labels.print_view", "GET"): ({}, admin_only(200)),  # nothing ticked: every item that matches
    ("admin_labels.preview", "GET"): ({}, admin_only(200)),
    ("admin_labels.download", "POST"): ({}, admin_only(200)),  # nothing ticked: every item that matches
    ("admin_labels.send", "POST"): ({}, admin_only(to("/admin/labels/"))),  # no printer: back
    ("admin_labels.job_status", "GET"): ({}, admin_only(404)),  # no such job
    ("admin_labels.job_file", "GET"): ({}, admin_only(404)),
    ("admin_labels.job_retry", "POST"): ({}, admin_only(404)),
    ("admin_labels.reissue", "POST"): ({}, admin_only(to(ITEM))),
    ("admin_departments.index", "GET"): ({}, admin_only(200)),
    ("admin_departments.new", "GET"): ({}, admin_only(200)),
    ("admin_departments.new", "POST"): ({}, admin_only(400)),  # a name is required
    ("admin_departments.edit", "GET"): ({}, admin_only(200)),
    ("admin_departments.edit", "POST"): ({}, admin_only(400)),
    ("admin_sites.index", "GET"): ({}, desk_only(200)),  # the desk reads the sites and their places
    ("admin_sites.new", "GET"): ({}, admin_only(200)),
    ("admin_sites.new", "POST"): ({}, admin_only(400)),  # a name, time zone and day end are required
    ("admin_sites.edit", "GET"): ({}, admin_only(404)),  # no such site
    ("admin_sites.edit", "POST"): ({}, admin_only(404)),
    ("admin_sites.add_place", "POST"): ({}, admin_only(to("/admin/sites/"))),  # no name: an error on the page
    ("admin_sites.rename_place", "POST"): ({}, admin_only(404)),  # no such place
    ("admin_sites.retire_place", "POST"): ({}, admin_only(404)),
    ("admin_rules.index", "GET"): ({}, desk_only(200)),  # the desk reads the take-out rules
    ("admin_rules.edit", "GET"): ({}, admin_only(200)),
    ("admin_rules.edit", "POST"): ({}, admin_only(400)),  # no approval chosen
    ("admin_rules.recommended", "POST"): ({}, admin_only(to("/admin/rules/"))),
    ("admin_users.index", "GET"): ({}, admin_only(200)),
    ("admin_users.new", "GET"): ({}, admin_only(200)),
    ("admin_users.new", "POST"): ({}, admin_only(400)),
    ("admin_users.edit", "GET"): ({}, admin_only(200)),
    ("admin_users.edit", "POST"): ({}, admin_only(400)),
    ("admin_users.set_active", "POST"): ({"active": "1"}, admin_only(to("/admin/users/"))),
    ("admin_users.reset_password", "POST"): ({}, admin_only(200)),  # shows the one-time password
    ("api_tokens.mine", "GET"): ({}, signed_in(200)),
    ("api_tokens.mine", "POST"): ({}, signed_in(400)),  # no name
    ("api_tokens.revoke_mine", "POST"): ({}, signed_in(404)),  # no such token
    ("api_tokens.of_user", "GET"): ({}, admin_only(200)),
    ("api_tokens.of_user", "POST"): ({}, admin_only(400)),
    ("api_tokens.revoke_of_user", "POST"): ({}, admin_only(404)),
    # The API's description is public; the API itself takes a bearer token only, never the session cookie.
    ("api-docs.openapi_json", "GET"): ({}, everyone(200)),
    **{(f"api.{name}", method): ({}, everyone(401)) for name, method in [
        ("list_items", "GET"), ("create_item", "POST"), ("get_item", "GET"), ("update_item", "PATCH"),
        ("retire_item", "POST"), ("check_out_by_tag", "POST"), ("check_out_by_label", "POST"),
        ("return_by_tag", "POST"), ("return_by_label", "POST"), ("hand_over_by_tag", "POST"),
        ("hand_over_by_label", "POST"), ("offers_for_me", "GET"), ("accept_offer", "POST"),
        ("decline_offer", "POST"), ("cancel_offer", "POST"), ("list_checkouts", "GET"), ("get_checkout", "GET"),
        ("list_flags", "GET"), ("acknowledge_flag", "POST"), ("resolve_flag", "POST"), ("list_events", "GET"), ("whoami", "GET"),
        ("list_users", "GET"), ("get_user", "GET"), ("get_label", "GET"), ("reissue_label", "POST"),
        ("label_file", "GET")]},
}

CASES = [(endpoint, method, role) for (endpoint, method) in MATRIX for role in ROLES]


def _routes(app) -> set[tuple[str, str]]:
    return {(rule.endpoint, method) for rule in app.url_map.iter_rules()
            for method in rule.methods - {"HEAD", "OPTIONS"}}


# --- fixtures and helpers ---------------------------------------------------------------------------


@pytest.fixture
def world(app, session, make_user, make_item, make_department):
    staff, other = make_user("staff", name="Alice"), make_user("staff", name="Bob")
    security, admin = make_user("security", name="Desk"), make_user("admin", name="Admin")
    item = make_item()
    dept = make_department("Sales")
    label = session.scalar(select(LabelToken).where(LabelToken.item_id == item.id))
    return SimpleNamespace(staff=staff, other=other, security=security, admin=admin, item=item, label=label, dept=dept,
                           users={"staff": staff, "security": security, "admin": admin})


def send(c, method: str, url: str, data: dict | None = None):
    """GET, or POST (PATCH) what the form would send with the CSRF token of the client's session."""
    if method == "GET":
        return c.get(url)
    return c.open(url, method=method, data={**(data or {}), "csrf_token": csrf_token(c)})


def snapshot(session) -> tuple:
    """Everything a refused request must leave alone."""
    fresh(session)
    return (
        session.scalar(select(func.count(Event.id)).where(Event.action != "refused")),
        sorted(session.execute(select(Checkout.id, Checkout.holder_id, Checkout.returned_at)).all()),
        sorted(session.execute(select(User.id, User.name, User.role, User.active, User.phone, User.password_hash,
                                      User.session_token, User.must_change_password)).all()),
        sorted(session.execute(select(Item.id, Item.asset_tag, Item.name, Item.retired_at)).all()),
        sorted(session.execute(select(LabelToken.id, LabelToken.replaced_at)).all()),
        sorted(session.execute(select(Department.id, Department.name, Department.parent_id)).all()),
    )


def url_of(app, endpoint: str, w) -> str:
    values = {"tag": w.item.asset_tag, "user_id": w.other.id, "dept_id": w.dept.id, "token": w.label.token, "filename": "app.css",
              "job_id": "0" * 32, "flag_id": 999999, "request_id": 999999, "report_id": 999999,
              "notification_id": 999999, "incident_id": 999999, "offer_id": 999999, "fmt": "csv", "kind": "usb",
              "data_class": "personal", "token_id": 999999, "checkout_id": 999999, "hook_id": 999999,
              "site_id": 999999, "place_id": 999999, "stocktake_id": 999999}
    with app.test_request_context():
        rule = next(r for r in app.url_map.iter_rules() if r.endpoint == endpoint)
        return url_for(endpoint, **{k: v for k, v in values.items() if k in rule.arguments})


def give(session, item, holder):
    """Check `item` out to `holder` directly through the rules."""
    custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=later(days=3650))
    session.commit()


# --- the route matrix --------------------------------------------------------------------------------


def test_matrix_lists_every_route(app):
    routes = _routes(app)
    missing = sorted(routes - MATRIX.keys())
    assert not missing, f"routes without an access rule in tests/test_roles.py MATRIX: {missing}"
    stale = sorted(MATRIX.keys() - routes)
    assert not stale, f"MATRIX lists routes the app no longer has: {stale}"


@pytest.mark.parametrize("endpoint, method, role", CASES, ids=[f"{e}-{m}-{r}" for e, m, r in CASES])
def test_route_access(app, session, world, endpoint, method, role):
    data, outcomes = MATRIX[(endpoint, method)]
    expected = outcomes[role]
    user = world.users.get(role)
    c = browser(app, user)
    url = url_of(app, endpoint, world)
    before = snapshot(session)
    resp = send(c, method, url, data)
    resp.close()  # a static file response holds the file open until closed
    where = f"{method} {url} as {role}"
    if expected == LOGIN:
        assert resp.status_code == 302, where
        assert urlsplit(resp.headers["Location"]).path == "/login", where
        assert snapshot(session) == before, f"{where} was refused but changed data"
    elif expected == DENY:
        assert resp.status_code == 403, where
        assert "not permitted to open this page" in resp.get_data(as_text=True)
        assert snapshot(session) == before, f"{where} was refused but changed data"
    elif isinstance(expected, tuple):
        assert resp.status_code in (302, 303), f"{where}: {resp.status_code}"
        target = expected[1].format(tag=world.item.asset_tag)
        assert urlsplit(resp.headers["Location"]).path == target, where
    elif isinstance(expected, frozenset):  # one of these, depending on the time of day
        assert resp.status_code in expected, where
    else:
        assert resp.status_code == expected, where
    if user is not None and (endpoint, method) != ("auth.logout", "POST"):
        # Refused or not, the request did not sign the user out.
        assert c.get("/account").status_code == 200


@pytest.mark.parametrize("role", ROLES)
def test_wrong_method_is_refused_on_every_route(app, session, world, role):
    c = browser(app, world.users.get(role))
    before = snapshot(session)
    checked = 0
    accepted: dict[str, set[str]] = {}  # an address may have a rule per method (the API's GET and POST /items)
    for rule in app.url_map.iter_rules():
        accepted.setdefault(url_of(app, rule.endpoint, world), set()).update(rule.methods)
    for url, methods in accepted.items():
        for method in ("GET", "POST"):
            if method not in methods:
                resp = c.get(url) if method == "GET" else c.post(url, data={"csrf_token": csrf_token(c)})
                assert resp.status_code == 405, f"{method} {url} as {role}"
                checked += 1
    assert checked >= 8
    assert snapshot(session) == before


def test_pages_for_signed_in_users_are_not_cached(app, world):
    c = browser(app, world.staff)
    assert c.get("/my").headers.get("Cache-Control") == "no-store"


# --- object-level rules ------------------------------------------------------------------------------


def item_page(w):
    return f"/items/{w.item.asset_tag}"


def test_staff_cannot_return_another_staffs_item(app, session, world):
    give(session, world.item, world.other)
    c = browser(app, world.staff)
    before = snapshot(session)
    resp = send(c, "POST", f"{item_page(world)}/return")
    assert resp.status_code == 303 and urlsplit(resp.headers["Location"]).path == item_page(world)
    assert ("error", NOT_PERMITTED) in flashes(c.get(item_page(world)))
    assert snapshot(session) == before
    co = open_checkout(session, world.item)
    assert co is not None and co.holder_id == world.other.id


def test_staff_page_does_not_offer_return_of_someone_elses_item(app, session, world):
    give(session, world.item, world.other)
    body = browser(app, world.staff).get(item_page(world)).get_data(as_text=True)
    assert f'action="{item_page(world)}/return"' not in body


def test_staff_cannot_hand_over_another_staffs_item_to_a_third(app, session, make_user, world):
    carol = make_user("staff", name="Carol")
    give(session, world.item, world.other)
    c = browser(app, world.staff)
    before = snapshot(session)
    resp = send(c, "POST", f"{item_page(world)}/handover", {"to": carol.email})
    assert resp.status_code == 303
    assert ("error", NOT_PERMITTED) in flashes(c.get(item_page(world)))
    assert snapshot(session) == before
    assert open_checkout(session, world.item).holder_id == world.other.id


def test_holder_can_offer_own_item_which_moves_when_the_receiver_accepts(app, session, world):
    give(session, world.item, world.other)
    c = browser(app, world.other)
    resp = send(c, "POST", f"{item_page(world)}/handover", {"to": world.staff.email})
    assert resp.status_code == 303
    assert open_checkout(session, world.item).holder_id == world.other.id  # until the receiver accepts
    offer_id = session.scalar(select(HandoverOffer.id))
    receiver = browser(app, world.staff)
    assert send(receiver, "POST", f"/handovers/{offer_id}/accept", {"rules_ack": "1"}).status_code == 303
    assert open_checkout(session, world.item).holder_id == world.staff.id


def test_holder_can_return_own_item(app, session, world):
    give(session, world.item, world.other)
    c = browser(app, world.other)
    assert send(c, "POST", f"{item_page(world)}/return").status_code == 303
    assert open_checkout(session, world.item) is None


def test_staff_cannot_check_out_for_another_holder(app, session, world):
    c = browser(app, world.staff)
    before = snapshot(session)
    resp = send(c, "POST", f"{item_page(world)}/checkout",
                {"holder": world.other.email, "purpose": "visit", "destination": "Kobe", "rules_ack": "1"})
    assert resp.status_code in (302, 303, 400)
    fresh(session)
    held_by_other = session.scalar(select(func.count(Checkout.id)).where(Checkout.holder_id == world.other.id))
    assert held_by_other == 0, "staff checked an item out in someone else's name"
    co = open_checkout(session, world.item)
    if co is None:  # refused outright: the form again with the message (400), or the page it redirects to
        assert snapshot(session) == before
        shown = resp if resp.status_code == 400 else c.get(item_page(world))
        assert any(cat == "error" for cat, _ in flashes(shown))
    else:  # or the field was ignored and the item went to the staff member themself
        assert co.holder_id == world.staff.id


def test_staff_checkout_form_has_no_holder_choice(app, world):
    body = browser(app, world.staff).get(item_page(world)).get_data(as_text=True)
    assert 'name="holder"' not in body
    body = browser(app, world.security).get(item_page(world)).get_data(as_text=True)
    assert 'name="holder"' in body


@pytest.mark.parametrize("role", ["security", "admin"])
def test_desk_can_check_out_for_another_holder(app, session, world, role):
    c = browser(app, world.users[role])
    resp = send(c, "POST", f"{item_page(world)}/checkout", {"holder": world.other.email, "purpose": "visit",
                                                              "rules_ack": "1"})
    assert resp.status_code == 303
    assert open_checkout(session, world.item).holder_id == world.other.id


@pytest.mark.parametrize("role", ["security", "admin"])
def test_desk_can_receive_anyones_return(app, session, world, role):
    give(session, world.item, world.other)
    c = browser(app, world.users[role])
    assert "Receive return" in c.get(item_page(world)).get_data(as_text=True)
    resp = send(c, "POST", f"{item_page(world)}/return")
    assert resp.status_code == 303
    assert open_checkout(session, world.item) is None
    fresh(session)
    done = session.scalar(select(Checkout).where(Checkout.item_id == world.item.id))
    assert done.holder_id == world.other.id and done.returned_by_id == world.users[role].id


@pytest.mark.parametrize("role", ["security", "admin"])
def test_desk_can_hand_over_anyones_item(app, session, world, role):
    give(session, world.item, world.other)
    c = browser(app, world.users[role])
    assert send(c, "POST", f"{item_page(world)}/handover/direct", {"to": world.staff.email}).status_code == 303
    assert open_checkout(session, world.item).holder_id == world.staff.id


ITEM_EDIT = {"asset_tag": "", "kind": "laptop", "name": "Renamed laptop", "serial": "", "department": "",
             "data_class": "personal", "people_count": "", "notes": "", "bag": ""}


@pytest.mark.parametrize("role", ["staff", "security"])
def test_only_admin_edits_and_retires_items_and_manages_users(app, session, world, role):
    c = browser(app, world.users[role])
    before = snapshot(session)
    tag, uid = world.item.asset_tag, world.other.id
    attempts = [
        (f"/admin/items/{tag}/edit", ITEM_EDIT),
        (f"/admin/items/{tag}/retire", {}),
        ("/admin/items/new", {**ITEM_EDIT, "name": "Sneaky"}),
        ("/admin/users/new", {"email": "x@example.com", "name": "X", "role": "admin", "language": "", "phone": ""}),
        (f"/admin/users/{uid}/edit", {"name": "Y", "role": "admin", "language": "", "phone": ""}),
        (f"/admin/users/{uid}/active", {"active": "0"}),
        (f"/admin/users/{uid}/reset-password", {}),
        (f"/admin/users/{world.users[role].id}/edit", {"name": "Me", "role": "admin", "language": "", "phone": ""}),
    ]
    for url, data in attempts:
        assert send(c, "POST", url, data).status_code == 403, url
    assert snapshot(session) == before
    fresh(session)
    assert session.get(User, world.users[role].id).role.value == role


def test_admin_edits_and_retires_items_and_manages_users(app, session, world):
    c = browser(app, world.admin)
    tag = world.item.asset_tag
    assert send(c, "POST", f"/admin/items/{tag}/edit", ITEM_EDIT).status_code == 302
    assert send(c, "POST", f"/admin/items/{tag}/retire").status_code == 303
    assert send(c, "POST", f"/admin/users/{world.other.id}/active", {"active": "0"}).status_code == 303
    fresh(session)
    item = session.get(Item, world.item.id)
    assert item.name == "Renamed laptop" and item.retired_at is not None
    assert session.get(User, world.other.id).active is False


def test_admin_cannot_disable_or_demote_themself(app, session, world):
    c = browser(app, world.admin)
    send(c, "POST", f"/admin/users/{world.admin.id}/active", {"active": "0"})
    send(c, "POST", f"/admin/users/{world.admin.id}/edit",
         {"email": world.admin.email, "name": "Admin", "role": "staff", "language": "", "phone": ""})
    fresh(session)
    me = session.get(User, world.admin.id)
    assert me.active is True and me.role.value == "admin"


def test_stranger_scanning_a_label_learns_nothing_about_item_or_holder(app, session, world):
    give(session, world.item, world.other)
    resp = browser(app).get(f"/S/{world.label.token}")
    assert resp.status_code == 200
    body = resp.get_data(as_text=True)
    for secret in (world.item.name, world.item.asset_tag, world.other.name, world.other.email):
        assert secret not in body, f"the finder's page shows {secret!r}"
    assert open_checkout(session, world.item).holder_id == world.other.id
