"""Event webhooks on a phone-sized screen: an admin adds one from the notifications page, sees its secret once,
a check-out reaches the receiver, and the list shows the delivery; the pages fit the phone."""

from __future__ import annotations

import pytest

from tests.browser import _assert_fits_phone, _flash_text, _now, sign_in, sync_api, tap_and_wait
from tests.test_event_webhooks import readme_verify
from tracker import jobs

pytestmark = pytest.mark.browser
expect = sync_api.expect


def test_add_a_webhook_on_a_phone_and_see_its_delivery(page, live_server, hook):
    admin = live_server.make_user("admin", language="en")
    sign_in(page, admin.email)
    page.goto("/admin/notifications/")
    tap_and_wait(page, page.get_by_role("link", name="Event webhooks for integrations"))
    tap_and_wait(page, page.get_by_role("link", name="Add a webhook"))
    page.get_by_label("Name", exact=True).fill("Chat bot")
    page.get_by_label("Address (URL)").fill(hook.url)
    page.get_by_label("Checked out").check()
    tap_and_wait(page, page.get_by_role("button", name="Save"))
    assert "shown below once" in _flash_text(page)
    secret = page.locator("#new-secret").inner_text().strip()
    _assert_fits_phone(page, "the new webhook and its secret")

    live_server.check_out(live_server.make_user(), live_server.make_item(name="Sales laptop"))
    assert jobs.run_delivery(live_server.app, _now()) == (1, 0)
    (_, headers, body) = hook.requests[0]
    assert readme_verify()(secret, headers["X-Tracker-Signature"], body) and b"Sales laptop" in body

    page.goto("/admin/webhooks/")
    card = page.locator("li.webhook")
    expect(card).to_contain_text("Chat bot")
    expect(card).to_contain_text("Sent")
    expect(page.locator("#new-secret")).to_have_count(0)  # shown once: not on the list
    _assert_fits_phone(page, "the webhook list")
