"""SCIM 2.0 provisioning as an identity provider (Entra ID, Okta) drives it: create, find, change, deactivate."""

from __future__ import annotations

import html
import json
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import NOW, at_once, client_for, make_app, reread
from tracker.accounts import users
from tracker.custody import operations as custody
from tracker.models import Event, Role, User
from tracker.sso import provisioning

pytestmark = pytest.mark.usefixtures("english", "frozen_clock")

TOKEN = "scim-token-0123456789abcdef"
SCIM_JSON = "application/scim+json"
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
PATCH = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR = "urn:ietf:params:scim:api:messages:2.0:Error"


@pytest.fixture
def app(db_url, tmp_path):
    """The test's app with SCIM on (overrides the plain app of tests/conftest.py)."""
    app = make_app(db_url, tmp_path, SCIM_TOKEN=TOKEN)
    yield app
    app.extensions["tracker.engine"].dispose()


class Scim:
    """The identity provider's side: JSON requests with the bearer token."""

    def __init__(self, client, token=TOKEN):
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}", "Content-Type": SCIM_JSON}

    def __call__(self, method, path, body=None, raw=None):
        data = raw if raw is not None else (json.dumps(body) if body is not None else None)
        return self.client.open("/scim/v2" + path, method=method, data=data, headers=self.headers)


@pytest.fixture
def scim(client):
    return Scim(client)


def new_user(scim, email="taro.sato@example.com", **extra):
    body = {"schemas": [USER], "userName": email, "name": {"givenName": "Taro", "familyName": "Sato"},
            "emails": [{"value": email, "type": "work", "primary": True}], "active": True, **extra}
    resp = scim("POST", "/Users", body)
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()


def patch(scim, user_id, *operations):
    return scim("PATCH", f"/Users/{user_id}", {"schemas": [PATCH], "Operations": list(operations)})


def assert_scim_error(resp, status, scim_type=None):
    assert resp.status_code == status
    assert resp.mimetype == SCIM_JSON
    body = resp.get_json()
    assert body["schemas"] == [ERROR] and body["status"] == str(status) and body["detail"]
    if scim_type:
        assert body["scimType"] == scim_type


@pytest.mark.postgres  # the filter's SQL: addresses compared whatever their case
def test_create_read_and_filter_by_user_name(scim, session):
    made = new_user(scim)
    assert made["userName"] == "taro.sato@example.com"
    assert made["name"] == {"formatted": "Taro Sato"} and made["active"] is True
    assert made["emails"] == [{"value": "taro.sato@example.com", "type": "work", "primary": True}]
    assert made["meta"]["resourceType"] == "User"
    assert made["meta"]["location"].endswith(f"/scim/v2/Users/{made['id']}")
    reread(session)
    user = session.get(User, int(made["id"]))
    assert (user.role, user.active, user.must_change_password) == (Role.staff, True, False)

    got = scim("GET", f"/Users/{made['id']}")
    assert got.status_code == 200 and got.mimetype == SCIM_JSON and got.get_json() == made

    new_user(scim, "someone.else@example.com")
    found = scim("GET", '/Users?filter=userName eq "Taro.Sato@Example.com"').get_json()
    assert found["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:ListResponse"]
    assert found["totalResults"] == 1 and [r["id"] for r in found["Resources"]] == [made["id"]]
    none = scim("GET", '/Users?filter=userName eq "nobody@example.com"').get_json()
    assert (none["totalResults"], none["Resources"]) == (0, [])
    everyone = scim("GET", "/Users?startIndex=2&count=1").get_json()
    assert (everyone["totalResults"], everyone["startIndex"], everyone["itemsPerPage"]) == (2, 2, 1)


def test_creating_an_existing_address_is_a_uniqueness_conflict(scim, make_user):
    make_user("staff", email="taro.sato@example.com")
    assert_scim_error(scim("POST", "/Users", {"schemas": [USER], "userName": "TARO.SATO@example.com"}), 409,
                      "uniqueness")


def test_patch_active_false_disables_and_ends_the_session_at_its_next_request(app, scim, session):
    made = new_user(scim)
    person = session.get(User, int(made["id"]))
    # The person signs in through a password set for the test (provisioned accounts sign in through the provider).
    users.change_password(session, NOW, person, "correct-horse-battery", actor=person)
    session.commit()
    phone = client_for(app, person)
    assert phone.get("/my").status_code == 200

    resp = patch(scim, made["id"], {"op": "Replace", "path": "active", "value": "False"})  # as Entra ID sends it
    assert resp.status_code == 200 and resp.get_json()["active"] is False
    assert phone.get("/my").status_code == 302  # the next request finds the session ended
    reread(session)
    disabled = session.scalars(select(Event).where(Event.action == "user_disabled")).one()
    assert disabled.subject_user_id == person.id and json.loads(disabled.data)["via"] == "scim"

    again = patch(scim, made["id"], {"op": "replace", "value": {"active": True}})  # as Okta sends it
    assert again.get_json()["active"] is True


def test_patch_changes_name_and_address(scim):
    made = new_user(scim)
    resp = patch(scim, made["id"], {"op": "replace", "path": "name.formatted", "value": "Taro Sato-Kimura"},
                 {"op": "replace", "path": 'emails[type eq "work"].value', "value": "taro.kimura@example.com"},
                 {"op": "add", "path": "title", "value": "Engineer"})  # kept elsewhere: accepted, ignored
    body = resp.get_json()
    assert resp.status_code == 200
    assert (body["name"]["formatted"], body["userName"]) == ("Taro Sato-Kimura", "taro.kimura@example.com")


def test_put_replaces_the_user(scim):
    made = new_user(scim)
    body = {"schemas": [USER], "userName": "taro.s@example.com", "displayName": "Sato Taro", "active": False}
    resp = scim("PUT", f"/Users/{made['id']}", body)
    assert resp.status_code == 200
    got = scim("GET", f"/Users/{made['id']}").get_json()
    assert (got["userName"], got["displayName"], got["active"]) == ("taro.s@example.com", "Sato Taro", False)


def test_delete_deactivates_and_the_open_check_out_stays_on_the_board_as_a_leavers(app, scim, session, make_item,
                                                                                   make_user):
    made = new_user(scim)
    person = session.get(User, int(made["id"]))
    laptop = make_item(name="Sato's laptop")
    custody.check_out(session, NOW - timedelta(hours=2), item=laptop, holder=person, actor=person,
                      due_at=NOW + timedelta(hours=4))
    session.commit()

    assert scim("DELETE", f"/Users/{made['id']}").status_code == 204
    got = scim("GET", f"/Users/{made['id']}").get_json()
    assert got["active"] is False  # deactivated, not erased: the records of what they held stay theirs

    desk = client_for(app, make_user("security"))
    board = html.unescape(desk.get("/desk/").get_data(as_text=True))
    row = next(r for r in re.findall(r"<tr[^>]*>(.*?)</tr>", board, re.S) if laptop.asset_tag in r)
    assert "Taro Sato" in row and ">leaver<" in row
    assert ">leaver<" not in board.replace(row, "")


def test_a_wrong_or_missing_token_is_refused(client, scim):
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        resp = client.get("/scim/v2/Users", headers=headers)
        assert_scim_error(resp, 401)
        assert resp.headers["WWW-Authenticate"].startswith("Bearer")
    assert_scim_error(Scim(client, "wrong")("POST", "/Users", {"userName": "x@example.com"}), 401)


@pytest.mark.parametrize(("method", "path", "raw", "scim_type"), [
    ("POST", "/Users", "not json", "invalidSyntax"),
    ("POST", "/Users", "[1, 2]", "invalidSyntax"),
    ("POST", "/Users", '{"schemas": []}', "invalidValue"),
    ("POST", "/Users", '{"userName": "not-an-address"}', "invalidValue"),
    ("POST", "/Users", '{"userName": "a@example.com", "active": "maybe"}', "invalidValue"),
    ("POST", "/Users", '{"userName": "a@example.com", "name": "flat"}', "invalidValue"),
    ("POST", "/Users", '{"userName": "a@example.com", "emails": "a@example.com"}', "invalidValue"),
    ("GET", '/Users?filter=displayName co "x"', None, "invalidFilter"),
    ("GET", "/Users?count=many", None, "invalidValue"),
    ("POST", "/Users", "[" * 100_000 + "]" * 100_000, "invalidSyntax"),
    ("PATCH", "/Users/{id}", '{"Operations": [{"op": "replace", "path": "active", "value": false}]}', "invalidSyntax"),
    ("PATCH", "/Users/{id}", json.dumps({"schemas": [PATCH], "Operations": []}), "invalidSyntax"),
    ("PATCH", "/Users/{id}", json.dumps({"schemas": [PATCH], "Operations": [{"op": "move"}]}), "invalidSyntax"),
    ("PATCH", "/Users/{id}", json.dumps({"schemas": [PATCH], "Operations": [
        {"op": "replace", "path": "active", "value": 3}]}), "invalidValue"),
    ("PATCH", "/Users/{id}", json.dumps({"schemas": [PATCH], "Operations": [{"op": "remove", "path": "active"}]}),
     "mutability"),
    ("PUT", "/Users/{id}", '{"displayName": "No address"}', "invalidValue"),
])
def test_bad_bodies_are_400_with_scim_errors(scim, method, path, raw, scim_type):
    made = new_user(scim)
    assert_scim_error(scim(method, path.replace("{id}", made["id"]), raw=raw), 400, scim_type)


def test_unknown_users_and_addresses_are_scim_404s(scim):
    assert_scim_error(scim("GET", "/Users/999999"), 404)
    assert_scim_error(scim("GET", "/Users/not-a-number"), 404)
    assert_scim_error(scim("GET", "/Users/²"), 404)
    far = scim("GET", "/Users?startIndex=99999999999999999999999").get_json()
    assert (far["Resources"], far["startIndex"]) == ([], 1_000_000_000)
    assert_scim_error(scim("DELETE", "/Users/999999"), 404)
    assert_scim_error(scim("GET", "/Groups"), 404)
    assert_scim_error(scim("POST", "/Users/1"), 405)


def test_scim_is_off_without_a_token(db_url, tmp_path):
    plain = make_app(db_url, tmp_path)
    try:
        assert plain.test_client().get("/scim/v2/Users", headers={"Authorization": "Bearer "}).status_code == 404
    finally:
        plain.extensions["tracker.engine"].dispose()


@pytest.mark.postgres
def test_parallel_creations_of_one_address_make_one_account(app, session):
    """A provider retrying a slow create: one account, every other attempt a uniqueness conflict (409)."""
    def create(s) -> str:
        provisioning.provision(s, NOW, email="yui@example.com", name="Yui Abe", source="test")
        return "created"

    results = ["taken" if isinstance(r, provisioning.EmailTaken) else r
               for r in at_once(app, *[create] * 6, refused=(provisioning.EmailTaken,))]
    assert sorted(results) == ["created"] + ["taken"] * 5, results
    reread(session)
    assert len(session.scalars(select(User.id).where(User.email == "yui@example.com")).all()) == 1
    assert len(session.scalars(select(Event).where(Event.action == "user_provisioned")).all()) == 1
