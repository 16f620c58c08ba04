"""A manager's approval on the phone, in a real browser at 390x844, in English and Japanese: the requester taps Take
out and waits on the request's page; the manager, in a second browser, finds it under Approvals and approves it in
one tap; the requester's page shows the item out with them without being reloaded."""

from __future__ import annotations

import pytest

from tests.browser import TIMEOUT_MS, _assert_fits_phone, _now, tap_and_wait, tick_rules_if_shown
from tests.browser import sync_api as playwright
from tests.helpers import PASSWORD
from tracker.custody import rules
from tracker.items import departments
from tracker.models import Approval, DataClass, Kind, User

pytestmark = pytest.mark.browser

expect = playwright.expect
LANGUAGES = {
    "en": {"locale": "en-US", "extra_http_headers": {"Accept-Language": "en"}},
    "ja": {"locale": "ja-JP", "extra_http_headers": {"Accept-Language": "ja"}},
}
APPROVED = {"en": "Approved: {tag} is out with", "ja": "承認されました。{tag} は"}
WAITING = {"en": "Waiting for {name} to approve.", "ja": "{name} さんの承認を待っています。"}
REFRESH_MS = TIMEOUT_MS + 5_000  # the page asks again every 10 seconds


@pytest.fixture(scope="module")
def manager_rule(live_server):
    """Folders with sensitive data go out once the holder's manager approves."""
    admin = live_server.make_user("admin")
    with live_server.session() as s:
        rules.save(s, _now(), rules.Rule(kind=Kind.folder.value, data_class=DataClass.sensitive.value,
                                         approval=Approval.manager), actor=s.get(User, admin.id))
        s.commit()


def _team(live_server, n: int):
    """A department with its manager, and a member of it who asks."""
    manager = live_server.make_user("staff", name=f"Manager {n}")
    member = live_server.make_user("staff", name=f"Member {n}")
    with live_server.session() as s:
        dept = departments.create(s, _now(), name=f"Team {n}", parent_id=None, manager_ids=[manager.id], actor=None)
        s.get(User, member.id).department_id = dept.id
        s.commit()
    return manager, member


def _sign_in(page, email: str) -> None:
    page.goto("/login")
    page.locator("input[name=email]").fill(email)
    page.locator("input[name=password]").fill(PASSWORD)
    tap_and_wait(page, page.locator("main form button[type=submit]"))
    assert not page.url.endswith("/login")


@pytest.mark.parametrize("language", ["en", "ja"])
def test_the_manager_approves_on_another_phone_and_the_requesters_page_shows_it_out(phone, live_server,
                                                                                   manager_rule, language):
    n = 1 if language == "en" else 2
    manager, member = _team(live_server, n)
    folder = live_server.make_item(Kind.folder, name=f"Customer forms {n}", data_class=DataClass.sensitive)

    asker = phone(**LANGUAGES[language])
    _sign_in(asker, member.email)
    asker.goto(live_server.scan_url(folder))
    tick_rules_if_shown(asker)
    tap_and_wait(asker, asker.locator(".card.action form button[type=submit]"))
    assert "/requests/" in asker.url
    state = asker.locator("#request-state")
    expect(state).to_contain_text(WAITING[language].format(name=manager.name))
    _assert_fits_phone(asker, "the request's page")
    asker.evaluate("window.stillTheSamePage = true")  # gone if the page were reloaded

    approver = phone(**LANGUAGES[language])
    _sign_in(approver, manager.email)
    tap_and_wait(approver, approver.locator("header nav a[href='/approvals']"))
    _assert_fits_phone(approver, "my approvals")
    tap_and_wait(approver, approver.locator(f"main a[href='{asker.url.removeprefix(live_server.url)}']"))
    _assert_fits_phone(approver, "the request's page for the approver")
    tap_and_wait(approver, approver.locator("button[name=decision][value=approve]"))
    expect(approver.locator("#request-state")).to_contain_text(manager.name)

    expect(state).to_contain_text(APPROVED[language].format(tag=folder.asset_tag), timeout=REFRESH_MS)
    assert asker.evaluate("window.stillTheSamePage") is True
    co = live_server.open_checkout(folder)
    assert co is not None and co.holder_id == member.id
