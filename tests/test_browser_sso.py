"""The phone flow with single sign-on, in a real browser on a 390x844 phone: a label scanned while signed out
leads through the identity provider's page and back to the scan, with no tap of ours beyond "I work here"."""

from __future__ import annotations

import logging
import threading

import oidc_provider_mock
import pytest
from werkzeug.serving import make_server

from tests.browser import LiveServer, _assert_fits_phone, sync_api, tap_and_wait
from tests.helpers import free_port, make_app
from tracker import migrate

pytestmark = pytest.mark.browser
expect = sync_api.expect


@pytest.fixture(scope="module")
def provider():
    people = [oidc_provider_mock.User(sub="hanako", claims={"email": "hanako@example.com", "name": "Hanako Yamada",
                                                            "groups": ["everyone"]})]
    with oidc_provider_mock.run_server_in_thread(user_claims=people, require_nonce=True) as server:
        yield f"http://localhost:{server.server_port}"


@pytest.fixture(scope="module")
def live_server(tmp_path_factory, provider):
    """A live server signing in only through the provider (overrides tests/browser.py's plain one)."""
    tmp = tmp_path_factory.mktemp("live-sso")
    db_url = f"sqlite:///{tmp / 'tracker.db'}"
    migrate.upgrade(db_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    app = make_app(db_url, tmp, BASE_URL=url, OIDC_ISSUER=provider, OIDC_CLIENT_ID="tracker",
                   OIDC_CLIENT_SECRET="tracker-secret", OIDC_PROVIDER_NAME="Example ID", LOCAL_PASSWORDS=False,
                   BREAK_GLASS_EMAILS=frozenset({"root@example.com"}))
    quiet = logging.getLogger("werkzeug")
    old_level = quiet.level
    quiet.setLevel(logging.WARNING)
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server-sso", daemon=True)
    thread.start()
    try:
        yield LiveServer(app, url)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
        app.extensions["tracker.engine"].dispose()
        quiet.setLevel(old_level)


def test_scan_sign_in_at_the_provider_and_back_on_the_scan(page, live_server, provider):
    item = live_server.make_item()
    page.goto(live_server.scan_url(item))
    tap_and_wait(page, page.get_by_role("link", name="I work here: sign in"))
    # Passwords are off: the sign-in page went straight on to the provider's own page.
    assert page.url.startswith(provider + "/oauth2/authorize?")
    tap_and_wait(page, page.get_by_role("button", name="hanako"))
    assert page.url == live_server.scan_url(item)
    expect(page.locator("h1 .tag")).to_have_text(item.asset_tag)
    expect(page.get_by_role("button", name="Take out")).to_be_visible()
    _assert_fits_phone(page, "the scan page after single sign-on")


def test_the_break_glass_form_is_a_small_link_away(page, live_server):
    page.goto("/login?local=1")
    expect(page.get_by_role("link", name="Sign in with Example ID")).to_be_visible()
    expect(page.get_by_label("E-mail")).to_be_visible()
    _assert_fits_phone(page, "the break-glass sign-in page")
