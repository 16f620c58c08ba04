"""Signing in and out through the browser: role homes, look-alike failures, throttling kept in the
database, sessions that end on the server, forced password change, session ages, and CSRF."""

from __future__ import annotations

import html
import re
import threading
import time
from urllib.parse import urlsplit

import pytest
from sqlalchemy import func, select

from tests.helpers import PASSWORD, csrf_from, flashes, post, sign_in
from tests.helpers import client_for as browser
from tests.helpers import reread as fresh
from tracker.accounts import users
from tracker.models import Checkout, LoginAttempt, User

FAILED = "The e-mail address or password is wrong, or the account is disabled."
THROTTLED = "Too many failed sign-ins."
ENDED = "Your session has ended. Please sign in again."
NEW_PASSWORD = "a-brand-new-passphrase"
WRONG = "not-the-password-42"


@pytest.fixture
def client(app):
    """The conftest client, but reading English so messages can be compared as text."""
    return browser(app)


def path_of(resp) -> str:
    return urlsplit(resp.headers.get("Location", "")).path


def assert_signed_out(c) -> None:
    resp = c.get("/my")
    assert resp.status_code == 302 and path_of(resp) == "/login", "expected to be signed out"


def assert_signed_in(c) -> None:
    resp = c.get("/my")
    assert resp.status_code == 200, f"expected to be signed in, got {resp.status_code} {resp.headers.get('Location')}"


# --- signing in -------------------------------------------------------------------------------------


@pytest.mark.parametrize("role, home", [("staff", "/my"), ("security", "/desk/"), ("admin", "/admin/items/")])
def test_good_sign_in_lands_on_the_roles_home(client, make_user, role, home):
    user = make_user(role)
    resp = sign_in(client, user.email, follow=True)
    assert resp.status_code == 200
    assert resp.request.path == home
    assert user.name in resp.get_data(as_text=True)  # the menu names the signed-in person
    # and "/" keeps sending them there
    again = client.get("/")
    assert again.status_code == 302 and path_of(again) == home


def test_sign_in_follows_a_same_site_next(client, make_user, make_item):
    user, item = make_user(), make_item()
    page = client.get(f"/login?next=/items/{item.asset_tag}")
    resp = client.post(f"/login?next=/items/{item.asset_tag}",
                       data={"email": user.email, "password": PASSWORD, "csrf_token": csrf_from(page.get_data(as_text=True))})
    assert resp.status_code == 302 and path_of(resp) == f"/items/{item.asset_tag}"


@pytest.mark.parametrize("target", [
    "//evil.example.com/x",
    "/\\evil.example.com/x",
    "https://evil.example.com/x",
    "/\t/evil.example.com/x",  # browsers drop tabs and newlines inside URLs: this is //evil...
    "/\n/evil.example.com/x",
], ids=["protocol-relative", "backslash", "absolute", "tab", "newline"])
def test_sign_in_never_redirects_off_site(client, make_user, target):
    user = make_user()
    page = client.get("/login")
    try:
        resp = client.post("/login", query_string={"next": target},
                           data={"email": user.email, "password": PASSWORD,
                                 "csrf_token": csrf_from(page.get_data(as_text=True))})
    except ValueError as exc:  # TESTING propagates what would be a 500 page in production
        pytest.fail(f"sign-in with next={target!r} crashes with a server error: {exc}")
    assert resp.status_code == 302
    # Read the Location the way a browser does: tabs and newlines dropped, "\\" taken as "/".
    location = re.sub(r"[\t\r\n]", "", resp.headers["Location"]).replace("\\", "/")
    assert urlsplit(location).netloc in ("", "localhost"), f"next={target!r} sends the user to {location!r}"
    assert_signed_in(client)


def _normalised_body(resp, email: str) -> str:
    body = resp.get_data(as_text=True)
    body = re.sub(r'name="csrf_token"[^>]*value="[^"]+"', 'name="csrf_token" value="X"', body)
    return body.replace(html.escape(email, quote=True), "EMAIL").replace(email, "EMAIL")


def test_wrong_password_unknown_email_and_disabled_account_look_the_same(client, make_user):
    known = make_user(email="known@example.com")
    gone = make_user(email="gone@example.com", active=False)
    attempts = {
        "wrong password": (known.email, sign_in(client, known.email, WRONG)),
        "unknown e-mail": ("nobody@example.com", sign_in(client, "nobody@example.com", PASSWORD)),
        "disabled account, right password": (gone.email, sign_in(client, gone.email, PASSWORD)),
    }
    bodies = set()
    for label, (email, resp) in attempts.items():
        assert resp.status_code == 401, label
        assert flashes(resp) == [("error", FAILED)], label
        bodies.add(_normalised_body(resp, email))
    assert len(bodies) == 1, "the pages differ beyond the e-mail typed in"
    assert_signed_out(client)


# Throttling counts failures in the database and, on PostgreSQL, serialises them with advisory locks:
# the throttle tests run on both databases.


@pytest.mark.postgres
def test_throttle_five_failures_lock_the_account_even_for_the_right_password(app, client, make_user, session):
    user, bystander = make_user(email="target@example.com"), make_user()
    # Changing the case or padding the address is the same account, not a fresh counter.
    for email in (user.email, user.email.upper(), f"  {user.email} ", "Target@Example.com", user.email):
        resp = sign_in(client, email, WRONG)
        assert resp.status_code == 401 and flashes(resp) == [("error", FAILED)]
    resp = sign_in(client, user.email, PASSWORD)
    assert resp.status_code == 401
    [(category, message)] = flashes(resp)
    assert category == "error" and message.startswith(THROTTLED)
    assert re.search(r"Try again in 1[0-5] minutes", message), message
    assert_signed_out(client)
    # The lock is on that account only: another account signs in from the same address.
    assert sign_in(browser(app), bystander.email, follow=True).request.path == "/my"
    fresh(session)
    assert session.scalar(select(func.count(LoginAttempt.id)).where(
        LoginAttempt.scope == "account", LoginAttempt.key == user.email)) == 5


@pytest.mark.postgres
def test_throttle_four_failures_still_let_the_right_password_in_and_reset_the_count(client, make_user):
    user = make_user()
    for _ in range(4):
        assert sign_in(client, user.email, WRONG).status_code == 401
    assert sign_in(client, user.email, follow=True).request.path == "/my"
    post(client, "/logout")
    # The success cleared the account's failures: four more wrong tries do not lock it yet.
    for _ in range(4):
        assert flashes(sign_in(client, user.email, WRONG)) == [("error", FAILED)]
    assert sign_in(client, user.email, follow=True).request.path == "/my"


@pytest.mark.postgres
def test_throttle_twenty_failures_from_one_address_block_it(app, make_user):
    user = make_user()
    attacker = browser(app, address="198.51.100.9")
    for n in range(20):
        resp = sign_in(attacker, f"guess{n}@example.com", WRONG)
        assert resp.status_code == 401 and flashes(resp) == [("error", FAILED)], n
    resp = sign_in(attacker, user.email, PASSWORD)
    assert resp.status_code == 401
    assert flashes(resp)[0][1].startswith(THROTTLED)
    assert_signed_out(attacker)
    # The same person from another address is not blocked.
    elsewhere = browser(app, address="203.0.113.5")
    assert sign_in(elsewhere, user.email, follow=True).request.path == "/my"


@pytest.mark.postgres
def test_throttle_is_kept_in_the_database_and_shared_by_separate_app_instances(new_app, make_user, session):
    """Two app instances on one database stand for two gunicorn workers."""
    user = make_user()
    worker1, worker2 = new_app(), new_app()
    c1, c2 = browser(worker1), browser(worker2)
    for c in (c1, c2, c1, c2, c1):
        assert flashes(sign_in(c, user.email, WRONG)) == [("error", FAILED)]
    fresh(session)
    assert session.scalar(select(func.count(LoginAttempt.id)).where(LoginAttempt.key == user.email)) == 5
    for c in (c2, c1, browser(worker2)):
        resp = sign_in(c, user.email, PASSWORD)
        assert resp.status_code == 401
        assert flashes(resp)[0][1].startswith(THROTTLED)
        assert_signed_out(c)


@pytest.mark.postgres
def test_throttle_holds_against_parallel_guesses(app, make_user, monkeypatch):
    """Parallel requests (several workers, several threads) must not get more than 5 guesses in all.

    The account uses the production password hash (scrypt) so that checking a guess takes as long as it
    does in production; the throttle must count a guess before another request can slip past it.
    """
    monkeypatch.setattr(users, "HASH_METHOD", "scrypt")
    user = make_user()
    attackers = [browser(app) for _ in range(10)]
    tokens = [csrf_from(c.get("/login").get_data(as_text=True)) for c in attackers]
    barrier = threading.Barrier(len(attackers))
    outcomes: list[str] = []
    lock = threading.Lock()

    def guess(c, token):
        barrier.wait()
        resp = c.post("/login", data={"email": user.email, "password": WRONG, "csrf_token": token})
        [(_, message)] = flashes(resp)
        with lock:
            outcomes.append("checked" if message == FAILED else "throttled" if message.startswith(THROTTLED)
                            else message)

    threads = [threading.Thread(target=guess, args=pair) for pair in zip(attackers, tokens, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(outcomes) == len(attackers)
    assert outcomes.count("checked") <= 5, f"{outcomes.count('checked')} passwords were tried: {sorted(outcomes)}"


# --- sessions end on the server ---------------------------------------------------------------------


def two_devices(app, user):
    phone, laptop = browser(app), browser(app)
    for c in (phone, laptop):
        sign_in(c, user.email)
        assert_signed_in(c)
    return phone, laptop


def test_sign_out_ends_the_session_on_every_device(app, make_user, session):
    user = make_user()
    token = user.session_token
    phone, laptop = two_devices(app, user)
    resp = post(phone, "/logout")
    assert resp.status_code == 302 and path_of(resp) == "/login"
    assert_signed_out(phone)
    assert_signed_out(laptop)
    fresh(session)
    assert session.get(User, user.id).session_token != token
    # Signing in again works and does not revive the old cookie elsewhere.
    sign_in(phone, user.email)
    assert_signed_in(phone)
    assert_signed_out(laptop)


def test_password_change_signs_out_other_devices_and_keeps_this_one(app, make_user):
    user = make_user()
    phone, laptop = two_devices(app, user)
    resp = post(phone, "/password", {"current": PASSWORD, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                page="/password")
    assert resp.status_code == 302 and path_of(resp) == "/my"
    assert_signed_in(phone)
    assert_signed_out(laptop)
    fresh = browser(app)
    assert flashes(sign_in(fresh, user.email, PASSWORD)) == [("error", FAILED)]
    assert sign_in(fresh, user.email, NEW_PASSWORD, follow=True).request.path == "/my"


def test_password_change_with_a_wrong_current_password_changes_nothing(app, make_user):
    user = make_user()
    phone, laptop = two_devices(app, user)
    resp = post(phone, "/password", {"current": WRONG, "new": NEW_PASSWORD, "confirm": NEW_PASSWORD},
                page="/password")
    assert resp.status_code == 400
    assert ("error", "The current password is wrong.") in flashes(resp)
    assert_signed_in(phone)
    assert_signed_in(laptop)
    assert sign_in(browser(app), user.email, PASSWORD, follow=True).request.path == "/my"


def test_admin_disabling_a_user_signs_them_out_everywhere(app, make_user, session):
    user, admin = make_user(), make_user("admin")
    phone, laptop = two_devices(app, user)
    desk = browser(app)
    sign_in(desk, admin.email)
    resp = post(desk, f"/admin/users/{user.id}/active", {"active": "0"}, page="/admin/users/")
    assert resp.status_code == 303 and path_of(resp) == "/admin/users/"
    assert_signed_out(phone)
    assert_signed_out(laptop)
    fresh(session)
    assert session.get(User, user.id).active is False
    assert flashes(sign_in(phone, user.email)) == [("error", FAILED)]
    # Enabling again lets them sign in, but the old cookies stay dead.
    post(desk, f"/admin/users/{user.id}/active", {"active": "1"}, page="/admin/users/")
    assert_signed_out(laptop)
    assert sign_in(phone, user.email, follow=True).request.path == "/my"


def test_role_change_by_admin_ends_the_users_sessions(app, make_user):
    user, admin = make_user("security"), make_user("admin")
    phone, _ = two_devices(app, user)
    desk = browser(app)
    sign_in(desk, admin.email)
    resp = post(desk, f"/admin/users/{user.id}/edit",
                {"email": user.email, "name": user.name, "role": "staff", "language": "", "phone": ""},
                page=f"/admin/users/{user.id}/edit")
    assert resp.status_code == 302
    assert_signed_out(phone)
    sign_in(phone, user.email)
    assert phone.get("/desk/").status_code == 403


# --- forced password change -------------------------------------------------------------------------


def test_must_change_password_is_sent_to_the_password_page_until_changed(client, make_user, make_item, session):
    user, item = make_user(must_change_password=True), make_item()
    resp = sign_in(client, user.email)
    assert resp.status_code == 302 and path_of(resp) == "/password"
    for url in ("/", "/my", "/account", "/find", f"/items/{item.asset_tag}", "/login", "/desk/",
                "/admin/items/"):
        resp = client.get(url)
        assert resp.status_code == 302 and path_of(resp) == "/password", url
    # A POST is diverted too, and does nothing.
    token = csrf_from(client.get("/password").get_data(as_text=True))
    resp = client.post(f"/items/{item.asset_tag}/checkout", data={"csrf_token": token})
    assert resp.status_code == 302 and path_of(resp) == "/password"
    fresh(session)
    assert session.scalar(select(func.count(Checkout.id))) == 0
    # Still diverted on a new request after signing in again.
    client2 = browser(client.application)
    sign_in(client2, user.email)
    assert path_of(client2.get("/my")) == "/password"
    resp = client.post("/password", data={"csrf_token": token, "current": PASSWORD, "new": NEW_PASSWORD,
                                          "confirm": NEW_PASSWORD})
    assert resp.status_code == 302 and path_of(resp) == "/my"
    assert_signed_in(client)
    fresh(session)
    assert session.get(User, user.id).must_change_password is False


def test_user_created_by_admin_must_change_the_one_time_password(app, make_user):
    admin = make_user("admin")
    desk = browser(app)
    sign_in(desk, admin.email)
    resp = post(desk, "/admin/users/new", {"email": "newcomer@example.com", "name": "Newcomer", "role": "staff",
                                           "language": "", "phone": ""}, page="/admin/users/new")
    assert resp.status_code == 200
    one_time = html.unescape(re.search(r'<p class="secret">([^<]+)</p>', resp.get_data(as_text=True)).group(1))
    phone = browser(app)
    resp = sign_in(phone, "newcomer@example.com", one_time)
    assert resp.status_code == 302 and path_of(resp) == "/password"
    assert path_of(phone.get("/my")) == "/password"


# --- session ages -----------------------------------------------------------------------------------

MIN, HOUR, DAY = 60, 3600, 86400


def age_session(c, auth_ago: float, seen_ago: float) -> None:
    now = time.time()
    with c.session_transaction() as s:
        assert "auth_at" in s and "seen_at" in s
        s["auth_at"] = now - auth_ago
        s["seen_at"] = now - seen_ago


@pytest.mark.parametrize(
    "role, home, auth_ago, seen_ago, still_in",
    [
        ("security", "/desk/", 1 * HOUR, 29 * MIN, True),
        ("security", "/desk/", 1 * HOUR, 31 * MIN, False),
        ("admin", "/admin/items/", 1 * HOUR, 29 * MIN, True),
        ("admin", "/admin/items/", 1 * HOUR, 31 * MIN, False),
        ("security", "/desk/", 11 * HOUR + 50 * MIN, 1 * MIN, True),
        ("security", "/desk/", 12 * HOUR + 5 * MIN, 1 * MIN, False),
        ("admin", "/admin/items/", 12 * HOUR + 5 * MIN, 1 * MIN, False),
        ("staff", "/my", 29 * DAY + 23 * HOUR, 29 * DAY + 23 * HOUR, True),
        ("staff", "/my", 31 * DAY, 1 * MIN, False),
        ("staff", "/my", 31 * DAY, 31 * DAY, False),
    ],
    ids=["security-idle-29m", "security-idle-31m", "admin-idle-29m", "admin-idle-31m", "security-11h50",
         "security-12h05", "admin-12h05", "staff-30d-less-1h", "staff-31d-active", "staff-31d-idle"],
)
def test_session_age_limits(app, make_user, role, home, auth_ago, seen_ago, still_in):
    user = make_user(role)
    c = browser(app)
    sign_in(c, user.email)
    assert c.get(home).status_code == 200
    age_session(c, auth_ago, seen_ago)
    resp = c.get(home)
    if still_in:
        assert resp.status_code == 200
        with c.session_transaction() as s:
            assert time.time() - s["seen_at"] < 60  # activity refreshes the idle clock
        return
    assert resp.status_code == 302 and path_of(resp) == "/login"
    page = c.get(resp.headers["Location"])
    assert ("info", ENDED) in flashes(page)
    # Signed out for good, not just for one request.
    assert_signed_out(c)
    assert c.get(home).status_code == 302


def test_privileged_idle_clock_restarts_with_each_request(app, make_user):
    user = make_user("security")
    c = browser(app)
    sign_in(c, user.email)
    for _ in range(3):  # three 20-minute pauses: 60 minutes in all, never 30 at once
        age_session(c, 2 * HOUR, 20 * MIN)
        assert c.get("/desk/").status_code == 200


# --- no state change on GET, and CSRF ----------------------------------------------------------------


def test_csrf_protection_is_on_in_the_test_config(app):
    assert app.config["TESTING"] is True
    assert app.config.get("WTF_CSRF_ENABLED", True) is True


def test_get_logout_is_not_allowed_and_keeps_the_session(client, make_user):
    user = make_user()
    sign_in(client, user.email)
    assert client.get("/logout").status_code == 405
    assert_signed_in(client)


def test_logout_without_csrf_token_is_refused(app, client, make_user, session):
    user = make_user()
    token = user.session_token
    sign_in(client, user.email)
    resp = client.post("/logout")
    assert resp.status_code == 400
    assert "Form expired" in resp.get_data(as_text=True)
    # Another session's token (a cross-site page cannot read ours) is refused as well.
    other = browser(app)
    foreign = csrf_from(other.get("/login").get_data(as_text=True))
    assert client.post("/logout", data={"csrf_token": foreign}).status_code == 400
    assert_signed_in(client)
    fresh(session)
    assert session.get(User, user.id).session_token == token
    # Control: with the token, it works.
    assert post(client, "/logout").status_code == 302
    assert_signed_out(client)


def test_checkout_without_csrf_token_is_refused(client, make_user, make_item, session):
    user, item = make_user(), make_item()
    sign_in(client, user.email)
    resp = client.post(f"/items/{item.asset_tag}/checkout", data={"purpose": "visit", "destination": "Osaka"})
    assert resp.status_code == 400
    fresh(session)
    assert session.scalar(select(func.count(Checkout.id))) == 0
    # Control: the same form with its token checks the item out.
    resp = post(client, f"/items/{item.asset_tag}/checkout", {"purpose": "visit", "destination": "Osaka",
                                                              "rules_ack": "1"}, page=f"/items/{item.asset_tag}")
    assert resp.status_code == 303
    fresh(session)
    assert session.scalar(select(func.count(Checkout.id)).where(Checkout.holder_id == user.id)) == 1


def test_admin_user_creation_without_csrf_token_is_refused(client, make_user, session):
    admin = make_user("admin")
    sign_in(client, admin.email)
    before = session.scalar(select(func.count(User.id)))
    data = {"email": "intruder@example.com", "name": "Intruder", "role": "admin", "language": "", "phone": ""}
    resp = client.post("/admin/users/new", data=data)
    assert resp.status_code == 400
    fresh(session)
    assert session.scalar(select(func.count(User.id))) == before
    assert session.scalar(select(User).where(User.email == "intruder@example.com")) is None
    # Control: with the token the admin does create the user.
    assert post(client, "/admin/users/new", data, page="/admin/users/new").status_code == 200
    fresh(session)
    assert session.scalar(select(User).where(User.email == "intruder@example.com")) is not None
