"""The labels page in a real browser: ticks choose what prints and survive paging, the button counts labels and
sheets before anything is made, and the list says when each label was last printed."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.browser import ENGLISH, TIMEOUT_MS, _screenshot, sign_in
from tests.helpers import pdf_text
from tracker import queries
from tracker.models import Item, LabelToken

pytestmark = pytest.mark.browser


@pytest.fixture
def desk_page(browser, live_server):  # noqa: F811
    """An admin's office PC: a wide window that accepts downloads."""
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1440, "height": 900},
                                  accept_downloads=True, has_touch=True, **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    yield context.new_page()
    context.close()


def _printed(live_server, items) -> list:  # noqa: F811
    with live_server.session() as s:
        return [s.scalar(select(LabelToken.printed_at).where(LabelToken.item_id == i.id,
                                                             LabelToken.replaced_at.is_(None))) for i in items]


def test_ticks_survive_paging_the_button_counts_and_the_file_holds_only_the_ticked(desk_page, live_server,  # noqa: F811
                                                                                  tmp_path):
    from tracker import jobs as scheduler_jobs

    page = desk_page
    admin = live_server.make_user("admin")
    batch = [live_server.make_item(name=f"Sticker run {n:02d}") for n in range(queries.PAGE_SIZE + 2)]
    with live_server.session() as s:  # the list runs in asset-tag order
        tags = list(s.scalars(select(Item.asset_tag).where(Item.name.like("Sticker run %")).order_by(Item.asset_tag)))
    sign_in(page, admin.email)
    page.goto("/admin/labels/?q=Sticker+run")
    button = page.locator("#label-download")
    selection = page.locator("#label-selection")
    total = len(batch)
    assert " ".join(button.inner_text().split()) == f"Download {total} labels: 3 × sheet of 24"
    assert f"every item that matches is printed ({total})" in selection.inner_text()

    page.get_by_label(tags[0], exact=True).check()
    page.get_by_label(tags[1], exact=True).check()
    assert "Only the ticked items are printed (2)." in selection.inner_text()
    assert button.inner_text() == "Download 2 labels: 1 × sheet of 24"

    with page.expect_navigation():
        page.get_by_role("button", name="Next").click()
    assert "csrf_token" not in page.url  # paging carries the ticks, not the form's token
    page.get_by_label(tags[-1], exact=True).check()
    assert button.inner_text() == "Download 3 labels: 1 × sheet of 24"

    page.get_by_label("Layout").select_option("jp-65")
    page.get_by_label("Start at label").fill("64")
    assert button.inner_text() == "Download 3 labels: 2 × sheet of 65"  # 64 and 65 on one sheet, one on the next
    _screenshot(page, "labels-ticked-count.png", tmp_path)

    with page.expect_navigation():  # back to page 1: its ticks are still there, and the layout chosen
        page.get_by_role("button", name="Previous").click()
    assert page.get_by_label(tags[0], exact=True).is_checked() and page.get_by_label(tags[1], exact=True).is_checked()
    assert button.inner_text() == "Download 3 labels: 2 × sheet of 65"
    page.get_by_label(tags[1], exact=True).uncheck()
    assert button.inner_text() == "Download 2 labels: 1 × sheet of 65"

    with page.expect_download() as download:
        button.click()
        page.wait_for_function("() => document.querySelector('#label-progress span').textContent"
                               ".includes('Waiting for the scheduler')")
        assert scheduler_jobs.run_label_jobs(live_server.app) == 1
    path = tmp_path / "labels.pdf"
    download.value.save_as(path)
    printed = set(re.findall(r"LT-\d{4}", pdf_text(path)))
    assert printed == {tags[0], tags[-1]}

    when = _printed(live_server, [batch[0], batch[1], batch[-1]])
    assert when[0] is not None and when[1] is None and when[2] is not None
    page.goto("/admin/labels/?q=Sticker+run&printed=never")
    rows = page.locator("tbody tr")
    assert rows.count() == total - 2
    assert page.get_by_label(tags[0], exact=True).count() == 0
    assert "Never" in rows.first.inner_text()
    page.goto("/admin/labels/?q=Sticker+run")
    assert "Never" not in page.locator("tbody tr", has_text=tags[0]).inner_text()


def test_without_javascript_ticks_also_survive_paging_and_the_count_follows(browser, live_server):  # noqa: F811
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  java_script_enabled=False, has_touch=True, **ENGLISH)
    context.set_default_timeout(TIMEOUT_MS)
    page = context.new_page()
    try:
        admin = live_server.make_user("admin")
        for n in range(queries.PAGE_SIZE + 1):
            live_server.make_item(name=f"No script {n:02d}")
        with live_server.session() as s:
            tags = list(s.scalars(select(Item.asset_tag).where(Item.name.like("No script %"))
                                  .order_by(Item.asset_tag)))
        sign_in(page, admin.email)
        page.goto("/admin/labels/?q=No+script")
        page.get_by_label(tags[0], exact=True).check()
        page.get_by_label("Layout").select_option("jp-65")
        with page.expect_navigation():
            page.get_by_role("button", name="Next").click()
        assert page.locator("#label-download").inner_text() == "Download 1 labels: 1 × sheet of 65"
        page.get_by_label(tags[-1], exact=True).check()
        page.get_by_label("Start at label").fill("65")
        with page.expect_navigation():
            page.get_by_role("button", name="Count again").click()
        assert page.locator("#label-download").inner_text() == "Download 2 labels: 2 × sheet of 65"
        assert "Only the ticked items are printed (2)." in page.locator("#label-selection").inner_text()
    finally:
        context.close()
