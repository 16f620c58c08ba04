"""Single sign-on end to end against a real OpenID Connect provider (oidc-provider-mock) running in the tests.

The provider's authorize endpoint takes a POST naming the person (its `sub`), as a person would pick their
account on the provider's page; the rest is real HTTP between the app, the provider and, for the forged-token
cases, a small proxy that re-signs or tampers with the provider's ID tokens.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import oidc_provider_mock
import pytest
import requests
from joserfc import jwt
from joserfc.jwk import KeySet, RSAKey
from sqlalchemy import select

from tests.helpers import NOW, PASSWORD, at_once, csrf_token, flashes, free_port, label_token, make_app, reread, sign_in
from tracker.accounts import users
from tracker.models import Event, Role, User
from tracker.sso import provisioning

pytestmark = pytest.mark.usefixtures("english")

PEOPLE = [
    oidc_provider_mock.User(sub="aiko", claims={"email": "Aiko.Tanaka@Example.com", "email_verified": True,
                                                "name": "Aiko Tanaka", "groups": ["everyone", "tracker-desk"]}),
    oidc_provider_mock.User(sub="ben", claims={"email": "ben@example.com", "name": "Ben Ito", "groups": ["everyone"]}),
    oidc_provider_mock.User(sub="chie", claims={"email": "chie@example.com", "name": "Chie Mori",
                                                "groups": ["tracker-admins", "tracker-desk"]}),
    oidc_provider_mock.User(sub="dai", claims={"email": "dai@example.com", "email_verified": False, "name": "Dai"}),
]
ROLE_MAP = {"tracker-admins": "admin", "tracker-desk": "security"}


@pytest.fixture(scope="module")
def provider():
    """The identity provider's issuer URL (it names itself after the Host it is called by)."""
    with oidc_provider_mock.run_server_in_thread(user_claims=PEOPLE, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


def sso_config(issuer: str, **extra) -> dict:
    return {"OIDC_ISSUER": issuer, "OIDC_CLIENT_ID": "tracker", "OIDC_CLIENT_SECRET": "tracker-secret",
            "OIDC_PROVIDER_NAME": "Example ID", "OIDC_ROLE_MAP": ROLE_MAP, **extra}


@pytest.fixture
def app(db_url, tmp_path, provider):
    """The test's app, signing in through the provider (overrides the plain app of tests/conftest.py)."""
    app = make_app(db_url, tmp_path, **sso_config(provider))
    yield app
    app.extensions["tracker.engine"].dispose()


def go_to_provider(client, start: str = "/sso/start"):
    """Follow the app to the provider's authorize page; returns its URL."""
    resp = client.get(start)
    assert resp.status_code == 302, resp.get_data(as_text=True)
    return resp.headers["Location"]


def provider_answers(authorize_url: str, sub: str) -> str:
    """The person picks their account on the provider's page; the provider sends them back: the callback URL."""
    answer = requests.post(authorize_url, data={"sub": sub}, allow_redirects=False, timeout=10)
    assert answer.status_code == 302, answer.text
    return answer.headers["Location"]


def local(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


def sso_sign_in(client, sub: str, start: str = "/sso/start"):
    """The whole round trip; returns the app's answer to the callback."""
    return client.get(local(provider_answers(go_to_provider(client, start), sub)))


def user_by_email(session, email) -> User | None:
    reread(session)
    return session.scalar(select(User).where(User.email == email))


def events(session, action) -> list[Event]:
    reread(session)
    return session.scalars(select(Event).where(Event.action == action).order_by(Event.id)).all()


def test_the_app_sends_the_browser_to_the_provider_with_pkce_state_and_nonce(client, provider):
    query = parse_qs(urlsplit(go_to_provider(client)).query)
    assert go_to_provider(client).startswith(provider + "/oauth2/authorize?")
    assert query["code_challenge_method"] == ["S256"]
    assert len(query["code_challenge"][0]) >= 43
    assert query["state"][0] and query["nonce"][0]
    assert query["redirect_uri"] == ["https://track.example.com/sso/callback"]
    assert "openid" in query["scope"][0].split()


def test_a_first_sign_in_creates_the_user_with_the_role_of_their_group(client, session):
    resp = sso_sign_in(client, "aiko")
    assert resp.status_code == 302
    assert resp.headers["Location"] == "/"
    aiko = user_by_email(session, "aiko.tanaka@example.com")
    assert (aiko.name, aiko.role, aiko.active, aiko.must_change_password) == ("Aiko Tanaka", Role.security, True, False)
    assert client.get("/desk/").status_code == 200  # signed in, as the security desk
    (signin,) = events(session, "signin")
    assert signin.actor_id == aiko.id and json.loads(signin.data)["method"] == "oidc"
    assert [e.subject_user_id for e in events(session, "user_provisioned")] == [aiko.id]


def test_the_strongest_mapped_role_wins_and_no_mapped_group_means_staff(app, session):
    assert sso_sign_in(app.test_client(), "chie").status_code == 302
    assert sso_sign_in(app.test_client(), "ben").status_code == 302
    assert user_by_email(session, "chie@example.com").role == Role.admin
    assert user_by_email(session, "ben@example.com").role == Role.staff


@pytest.mark.postgres  # the address compared whatever its case, in SQL
def test_a_second_sign_in_matches_the_existing_user_by_email_whatever_its_case(app, session, make_user):
    existing = make_user("staff", email="aiko.tanaka@example.com", name="Tanaka Aiko")
    for _ in range(2):
        assert sso_sign_in(app.test_client(), "aiko").status_code == 302
    again = user_by_email(session, "aiko.tanaka@example.com")
    assert again.id == existing.id
    assert again.role == Role.staff  # a matched account keeps the role given here, whatever the groups say
    assert session.scalars(select(User.id).where(User.email.ilike("aiko%"))).all() == [existing.id]
    assert [e.actor_id for e in events(session, "signin")] == [existing.id, existing.id]
    assert events(session, "user_provisioned") == []


def test_a_disabled_user_is_refused_with_a_clear_page(client, session, make_user):
    make_user("staff", email="ben@example.com", active=False)
    resp = sso_sign_in(client, "ben")
    assert resp.status_code == 403
    assert "Your account in this tracker is disabled" in resp.get_data(as_text=True)
    assert client.get("/my").status_code == 302  # not signed in
    (failed,) = events(session, "signin_failed")
    assert json.loads(failed.data)["reason"] == "disabled"


def test_an_email_the_provider_marks_unverified_matches_no_account(client, session, make_user):
    make_user("admin", email="dai@example.com")
    resp = sso_sign_in(client, "dai")
    assert resp.status_code == 403
    assert "did not send a verified e-mail address" in resp.get_data(as_text=True)
    assert events(session, "signin") == []


def test_a_replayed_callback_is_refused(client, session):
    callback = local(provider_answers(go_to_provider(client), "ben"))
    assert client.get(callback).status_code == 302
    client.post("/logout", data={"csrf_token": csrf_token(client)})
    replay = client.get(callback)
    assert replay.status_code == 400
    assert "already used or has expired" in replay.get_data(as_text=True)
    assert client.get("/my").status_code == 302
    assert [json.loads(e.data)["reason"] for e in events(session, "signin_failed")] == ["state"]


def test_a_callback_from_another_browser_is_refused(app, session):
    """The state lives in the session of the browser that started: a stolen callback URL signs no one in."""
    callback = local(provider_answers(go_to_provider(app.test_client()), "chie"))
    thief = app.test_client()
    resp = thief.get(callback)
    assert resp.status_code == 400
    assert thief.get("/admin/items/").status_code in (302, 401)
    assert events(session, "signin") == []


def test_a_provider_error_is_refused_with_a_clear_page(client, session):
    authorize = go_to_provider(client)
    answer = requests.post(authorize, data={"action": "deny"}, allow_redirects=False, timeout=10)
    assert "error=access_denied" in answer.headers["Location"]
    resp = client.get(local(answer.headers["Location"]))
    assert resp.status_code == 400
    assert "did not sign you in" in resp.get_data(as_text=True)
    assert [json.loads(e.data)["reason"] for e in events(session, "signin_failed")] == ["provider_error"]


def test_a_provider_calling_itself_another_issuer_is_refused(forging, provider, session):
    client, proxy = forging
    proxy.mode = "own_host"  # the app is set up for http://127.0.0.1:PROXY, the provider says http://localhost:PORT
    resp = client.get("/sso/start")
    assert resp.status_code == 400
    assert "does not call itself the issuer" in resp.get_data(as_text=True)
    assert [json.loads(e.data)["reason"] for e in events(session, "signin_failed")] == ["wrong_issuer"]


def test_an_unreachable_provider_gives_a_clear_page(new_app, session):
    client = new_app(**sso_config(f"http://127.0.0.1:{free_port()}")).test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    resp = client.get("/sso/start")
    assert resp.status_code == 502
    assert "could not be reached" in resp.get_data(as_text=True)


# --- the phone flow and the login page ---------------------------------------------------------------------------


def test_a_label_scanned_while_signed_out_comes_back_to_the_scan_after_sign_in(client, session, make_item):
    item = make_item()
    scan = f"/S/{label_token(session, item)}"
    found = client.get(scan).get_data(as_text=True)
    login = client.get(link(found, "/login"))
    start = link(login.get_data(as_text=True), "/sso/start")
    assert "Sign in with Example ID" in login.get_data(as_text=True)
    resp = client.get(local(provider_answers(go_to_provider(client, start), "ben")))
    assert resp.headers["Location"] == scan
    page = client.get(scan).get_data(as_text=True)
    assert f'<span class="tag">{item.asset_tag}</span>' in page and ">Take out</button>" in page


def link(page: str, prefix: str) -> str:
    """The first link on the page to an address starting with `prefix`."""
    match = re.search(r'href="(' + re.escape(prefix) + r'[^"]*)"', page)
    assert match, f"no link to {prefix}"
    return html.unescape(match.group(1))


@pytest.fixture
def passwords_off(db_url, tmp_path, provider):
    app = make_app(db_url, tmp_path, **sso_config(provider, LOCAL_PASSWORDS=False,
                                                    BREAK_GLASS_EMAILS=frozenset({"root@example.com"})))
    yield app
    app.extensions["tracker.engine"].dispose()


def test_with_passwords_off_the_login_page_goes_straight_to_the_provider(passwords_off, session, make_item):
    client = passwords_off.test_client()
    scan = f"/S/{label_token(session, make_item())}"
    start = client.get(link(client.get(scan).get_data(as_text=True), "/login"))
    assert start.status_code == 302 and start.headers["Location"].startswith("/sso/start")
    resp = client.get(local(provider_answers(go_to_provider(client, start.headers["Location"]), "ben")))
    assert resp.headers["Location"] == scan


def test_with_passwords_off_only_break_glass_admins_use_a_password(passwords_off, make_user):
    make_user("admin", email="root@example.com")
    staff = make_user("staff", email="ben@example.com")
    client = passwords_off.test_client()
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
    page = client.get("/login?local=1").get_data(as_text=True)
    assert "Break-glass sign-in with a password" in page and "Sign in with Example ID" in page
    token = csrf_token(client, "/login?local=1")
    refused = client.post("/login?local=1", data={"email": staff.email, "password": PASSWORD, "csrf_token": token})
    assert refused.status_code == 401
    assert flashes(refused) == [("error", "The e-mail address or password is wrong, or the account is disabled.")]
    allowed = client.post("/login?local=1", data={"email": "root@example.com", "password": PASSWORD,
                                                   "csrf_token": token})
    assert allowed.status_code == 302


def test_with_passwords_on_the_login_page_offers_both(client, make_user):
    user = make_user("staff")
    page = client.get("/login").get_data(as_text=True)
    assert "Sign in with Example ID" in page and 'name="password"' in page
    assert sign_in(client, user.email).status_code == 302


def test_passwords_cannot_be_turned_off_without_single_sign_on(db_url, tmp_path):
    with pytest.raises(ValueError, match="LOCAL_PASSWORDS=off needs single sign-on"):
        make_app(db_url, tmp_path, LOCAL_PASSWORDS=False)


def test_a_session_begun_through_the_provider_ends_when_the_user_is_disabled(client, session, make_user):
    assert sso_sign_in(client, "ben").status_code == 302
    assert client.get("/my").status_code == 200
    ben = user_by_email(session, "ben@example.com")
    users.set_active(session, NOW, ben, False, actor=make_user("admin"))
    session.commit()
    assert client.get("/my").status_code == 302


# --- forged ID tokens, through a proxy between the app and the provider ------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


class ForgingProxy:
    """A loopback HTTP server that forwards everything to the provider (which then names itself after the proxy)
    but publishes its own signing key and re-signs the ID token of every token response: honestly, expired,
    or honestly and then with a claim changed afterwards (`mode`); or lets the provider name itself after its
    own address rather than the proxy's ("own_host")."""

    def __init__(self, provider: str):
        self.target = urlsplit(provider)
        self.key = RSAKey.generate_key(2048, parameters={"kid": "proxy-key", "use": "sig", "alg": "RS256"})
        self.mode = "honest"
        self.token_requests: list[dict] = []  # the forms the app posted to the token endpoint
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's naming
                proxy.handle(self, "GET")

            def do_POST(self):  # noqa: N802
                proxy.handle(self, "POST")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()

    def handle(self, req: BaseHTTPRequestHandler, method: str) -> None:
        if req.path == "/jwks":
            return self.reply(req, 200, KeySet([self.key]).as_dict(private=False))
        length = int(req.headers.get("Content-Length") or 0)
        sent = req.rfile.read(length) if length else None
        if req.path.startswith("/oauth2/token"):
            self.token_requests.append({k: v[0] for k, v in parse_qs((sent or b"").decode()).items()})
        headers = {k: v for k, v in req.headers.items() if k.lower() not in ("content-length", "connection")}
        if self.mode == "own_host":
            headers["Host"] = f"localhost:{self.target.port}"
        upstream = requests.request(method, f"http://localhost:{self.target.port}{req.path}", headers=headers,
                                    data=sent, allow_redirects=False, timeout=10)
        if req.path.startswith("/.well-known/openid-configuration"):
            body = upstream.json()
            body["jwks_uri"] = self.url + "/jwks"
            return self.reply(req, upstream.status_code, body)
        if req.path.startswith("/oauth2/token") and upstream.ok:
            body = upstream.json()
            body["id_token"] = self.forge(body["id_token"])
            return self.reply(req, upstream.status_code, body)
        req.send_response(upstream.status_code)
        for name in ("Location", "Content-Type"):
            if name in upstream.headers:
                req.send_header(name, upstream.headers[name])
        req.send_header("Content-Length", str(len(upstream.content)))
        req.end_headers()
        req.wfile.write(upstream.content)

    def forge(self, id_token: str) -> str:
        claims = _claims_of(id_token)
        header = {"alg": "RS256", "kid": "proxy-key"}
        if self.mode == "expired":
            claims["iat"], claims["exp"] = int(time.time()) - 7200, int(time.time()) - 3600
        signed = jwt.encode(header, claims, self.key)
        if self.mode == "tampered":
            head, _, signature = signed.split(".")
            claims["email"] = "chie@example.com"  # someone else, and an admin
            signed = ".".join([head, _b64(json.dumps(claims).encode()), signature])
        return signed

    @staticmethod
    def reply(req, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        req.send_response(status)
        req.send_header("Content-Type", "application/json")
        req.send_header("Content-Length", str(len(data)))
        req.end_headers()
        req.wfile.write(data)


@pytest.fixture
def forging(new_app, provider):
    """An app whose provider is reached through the forging proxy, and the proxy."""
    with ForgingProxy(provider) as proxy:
        client = new_app(**sso_config(proxy.url)).test_client()
        client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "en"
        yield client, proxy


def test_through_the_proxy_an_honestly_signed_token_signs_in_and_the_code_came_with_its_pkce_verifier(forging):
    client, proxy = forging
    authorize = go_to_provider(client)
    assert client.get(local(provider_answers(authorize, "ben"))).status_code == 302
    assert client.get("/my").status_code == 200
    (token_request,) = proxy.token_requests
    challenge = parse_qs(urlsplit(authorize).query)["code_challenge"][0]
    assert _b64(hashlib.sha256(token_request["code_verifier"].encode()).digest()) == challenge


@pytest.mark.parametrize("mode", ["expired", "tampered"])
def test_an_expired_or_tampered_id_token_is_refused(forging, session, mode):
    client, proxy = forging
    proxy.mode = mode
    resp = sso_sign_in(client, "ben")
    assert resp.status_code == 400
    assert "could not be verified" in resp.get_data(as_text=True)
    assert client.get("/my").status_code == 302
    assert user_by_email(session, "ben@example.com") is None and user_by_email(session, "chie@example.com") is None
    assert [json.loads(e.data)["reason"] for e in events(session, "signin_failed")] == ["id_token"]


def test_a_refusal_page_is_in_the_readers_language(forging):
    client, proxy = forging
    proxy.mode = "expired"
    client.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    resp = sso_sign_in(client, "ben")
    assert resp.status_code == 400
    assert "IDプロバイダーからの応答を検証できなかったため" in resp.get_data(as_text=True)


def test_an_account_waiting_for_its_first_password_change_is_not_stopped_by_it_after_single_sign_on(client, make_user):
    make_user("staff", email="ben@example.com", must_change_password=True)
    assert sso_sign_in(client, "ben").status_code == 302
    assert client.get("/my").status_code == 200  # not sent to the password page: no password was used


@pytest.mark.postgres
def test_parallel_first_sign_ins_make_one_account(app, session):
    """Two tabs, or a phone and a PC, finishing a first sign-in at once: one account, both signed in to it."""
    claims = {"sub": "eri", "email": "Eri@example.com", "name": "Eri Aoki", "groups": ["tracker-desk"]}

    def first_sign_in(s) -> str:
        return provisioning.sign_in(s, NOW, claims, role_claim="groups", role_map=ROLE_MAP, source="test",
                                    issuer="http://idp.example").email

    results = at_once(app, *[first_sign_in] * 6)
    assert results == ["eri@example.com"] * 6, results
    eri = user_by_email(session, "eri@example.com")
    assert eri.role == Role.security
    assert [e.subject_user_id for e in events(session, "user_provisioned")] == [eri.id]
    assert [e.actor_id for e in events(session, "signin")] == [eri.id] * 6
