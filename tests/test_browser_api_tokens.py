"""API tokens on a phone-sized screen: a person makes a token on their settings page, sees it once, a program uses
it against the API over real HTTP, and the person revokes it; the page fits the phone."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest

from tests.browser import _assert_fits_phone, _flash_text, sign_in, sync_api, tap_and_wait

pytestmark = pytest.mark.browser
expect = sync_api.expect


def _me(live_server, secret: str) -> int:
    request = urllib.request.Request(f"{live_server.url}/api/v1/me",  # noqa: S310 - the test's own server
                                     headers={"Authorization": f"Bearer {secret}"})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310 - the test's own server
            assert json.load(resp)["scopes"] == ["act", "read"]
            return resp.status
    except urllib.error.HTTPError as err:
        return err.code


def test_make_use_and_revoke_a_token_on_a_phone(page, live_server):
    user = live_server.make_user()
    sign_in(page, user.email)
    page.goto("/account")
    tap_and_wait(page, page.get_by_role("link", name="API tokens"))
    page.get_by_label("What it is for").fill("Chat bot")
    page.get_by_label("Act: check out, return and hand over").check()
    tap_and_wait(page, page.get_by_role("button", name="Make the token"))
    assert "shown below once" in _flash_text(page)
    secret = page.locator("#new-token").inner_text().strip()
    assert secret.startswith("trk_")
    _assert_fits_phone(page, "the new token")
    assert _me(live_server, secret) == 200

    page.goto("/account/tokens")
    expect(page.locator("#new-token")).to_have_count(0)  # shown once: not on the page again
    expect(page.locator("li.token")).to_contain_text("Chat bot")
    page.once("dialog", lambda dialog: dialog.accept())
    tap_and_wait(page, page.get_by_role("button", name="Revoke"))
    expect(page.locator("li.token")).to_contain_text("Revoked")
    _assert_fits_phone(page, "the token list")
    assert _me(live_server, secret) == 401
