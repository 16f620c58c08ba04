"""A take-out under a two-person rule in a real browser, on a 390x844 phone, in English and Japanese: the colleague
who witnesses it types their own e-mail address and password on the holder's phone; a wrong password or no
witness is said at the field and nothing goes out."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.browser import _assert_fits_phone, _badge, _flash_text, _now, sign_in, tap_and_wait, tick_rules_if_shown
from tests.helpers import PASSWORD
from tracker.custody import rules
from tracker.models import DataClass, Kind, User

pytestmark = pytest.mark.browser

JA = {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}}


def sign_in_ja(page, email: str) -> None:
    """Sign in by the fields' names (the labels are in Japanese)."""
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(page, page.locator("main form button[type=submit]"))
    assert not page.url.endswith("/login")


@pytest.fixture(scope="module")
def witness_rule(live_server):
    """Document folders with sensitive data need a witness (only this module's server has the rule)."""
    admin = live_server.make_user("admin")
    with live_server.session() as s:
        rule = rules.default(Kind.folder.value, DataClass.sensitive.value, live_server.policy())
        rules.save(s, _now(), replace(rule, witness=True), actor=s.get(User, admin.id))
        s.commit()


def test_a_colleague_witnesses_a_take_out_on_the_holders_phone(page, live_server, witness_rule):
    staff, colleague = live_server.make_user("staff"), live_server.make_user("staff", name="Witness Tanaka")
    folder = live_server.make_item(Kind.folder, data_class=DataClass.sensitive)
    sign_in(page, staff.email)
    page.goto(live_server.scan_url(folder))
    witness = page.locator("fieldset.witness")
    assert witness.locator("legend").inner_text() == "Witness (two-person rule)"
    _assert_fits_phone(page, "the take-out form with a witness")

    tick_rules_if_shown(page)
    page.get_by_label("Witness's e-mail address").fill(colleague.email)
    page.get_by_label("Witness's password").fill("not-their-password")
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    error = page.locator("#witness_email-error")
    assert "The witness's e-mail address or password is wrong" in error.inner_text()
    assert page.get_by_label("Witness's e-mail address").get_attribute("aria-invalid") == "true"
    assert _badge(page) == "In" and live_server.open_checkout(folder) is None

    tick_rules_if_shown(page)
    page.get_by_label("Witness's e-mail address").fill(colleague.email)
    page.get_by_label("Witness's password").fill(PASSWORD)
    tap_and_wait(page, page.get_by_role("button", name="Take out"))
    assert f"{folder.asset_tag} is checked out to {staff.name}." in _flash_text(page)
    co = live_server.open_checkout(folder)
    assert co is not None and co.holder_id == staff.id and co.witness_id == colleague.id


def test_without_a_witness_the_take_out_is_refused_in_japanese(phone, live_server, witness_rule):
    page = phone(**JA)
    staff = live_server.make_user("staff")
    folder = live_server.make_item(Kind.folder, data_class=DataClass.sensitive)
    sign_in_ja(page, staff.email)
    page.goto(live_server.scan_url(folder))
    assert page.locator("fieldset.witness legend").inner_text() == "立会人（二人確認）"
    tick_rules_if_shown(page)
    tap_and_wait(page, page.locator(".card.action form button[type=submit]"))
    assert "この持ち出しには立会人が必要です" in page.locator("#witness_email-error").inner_text()
    assert live_server.open_checkout(folder) is None
    _assert_fits_phone(page, "the refused take-out in Japanese")

