"""Labels through HTTP and the CLI: the admin labels pages, downloads and jobs, sending to a network label
printer, reissuing a label and what a scan of an old, retired or unknown label shows."""

from __future__ import annotations

import gc
import io
import re
import socket
import socketserver
import subprocess
import threading
import warnings
import zipfile
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import select

from tests.helpers import NOW, events, flashes, label_token, need_poppler, post, reread, sign_in
from tests.test_labels import PX_PER_MM, assert_ql_raster, decode
from tracker import jobs as scheduler_jobs
from tracker import queries
from tracker.items import register as items
from tracker.labels import layouts, qr, render, service
from tracker.models import DataClass, Event, Item, LabelToken

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def three(make_item):
    """Three items in asset-tag order, of every data class."""
    return [make_item(name="ThinkPad X1", data_class=DataClass.none),
            make_item(name="山田 花子のPC", data_class=DataClass.personal, department="営業部"),
            make_item(name="人事USB", data_class=DataClass.sensitive)]


def url_of(app, session, item) -> str:
    return qr.label_url(app.config["BASE_URL"], label_token(session, item))


def download(client, **fields):
    data = {"select": "all", "layout": "jp-24", "format": "pdf", "start_at": "1"}
    data.update(fields)
    return post(client, "/admin/labels/download", {k: v for k, v in data.items() if v is not None},
                page="/admin/labels/")


def rasterise(pdf: bytes, tmp_path: Path, top_mm: float | None = None) -> list[Image.Image]:
    """The PDF's pages at 300 dpi; with `top_mm`, only that much of each page from the top (faster)."""
    exe = need_poppler("pdftoppm")
    (tmp_path / "dl.pdf").write_bytes(pdf)
    crop = ["-x", "0", "-y", "0", "-W", "2481", "-H", str(round(top_mm * PX_PER_MM) + 2)] if top_mm else []
    subprocess.run([exe, "-r", "300", "-gray", "-png", *crop, str(tmp_path / "dl.pdf"), str(tmp_path / "dl")],
                   check=True, timeout=60)
    return [Image.open(p).convert("L") for p in sorted(tmp_path.glob("dl-*.png"))]


def slot_image(page: Image.Image, sheet, slot: int) -> Image.Image:
    x, y = sheet.position(slot)
    return page.crop((round(x * PX_PER_MM), round(y * PX_PER_MM), round((x + sheet.label_w) * PX_PER_MM),
                      round((y + sheet.label_h) * PX_PER_MM)))


# --- the labels page ------------------------------------------------------------------------------------------------


def test_index_lists_items_and_layouts(admin_client, three):
    resp = admin_client.get("/admin/labels/")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    for item in three:
        assert item.asset_tag in page
    assert "山田 花子のPC" in page
    for name in layouts.LAYOUTS:
        assert f'value="{name}"' in page
    assert "100 %" in page  # print at actual size
    filtered = admin_client.get("/admin/labels/?q=ThinkPad").get_data(as_text=True)
    assert three[0].asset_tag in filtered and three[1].asset_tag not in filtered


# --- choosing what to print: ticks, the count on the button, when each label was last printed ------------------------


def _zip_names(resp) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        return sorted(zf.namelist())


def _button(page: str) -> str:
    match = re.search(r'<button type="submit" id="label-download".*?>(.*?)</button>', page, re.S)
    return " ".join(match[1].split())


def test_ticking_items_prints_only_those_whatever_else_the_form_says(admin_client, three):
    """The old form sent select=all with the ticks (its radio started on "every item"): the ticks now decide."""
    resp = download(admin_client, select="all", id=str(three[1].id), layout="jp-44", format="zip")
    assert _zip_names(resp) == [f"{three[1].asset_tag}.png"]
    everything = download(admin_client, select=None, layout="jp-44", format="zip")  # nothing ticked: all that match
    assert _zip_names(everything) == sorted(f"{i.asset_tag}.png" for i in three)


def test_ticks_and_the_layout_come_along_to_the_next_page(admin_client, make_item):
    items_ = [make_item(name=f"Paged {n:02d}") for n in range(queries.PAGE_SIZE + 3)]
    first, last = items_[0], items_[-1]  # on page 1 and on page 2
    page2 = admin_client.get(f"/admin/labels/?id={first.id}&id={last.id}&page=2&layout=jp-65&start_at=7"
                             "&format=pdf").get_data(as_text=True)
    assert f'<input type="hidden" name="id" value="{first.id}">' in page2  # ticked on page 1, kept
    assert re.search(rf'name="id" value="{last.id}"[^>]*checked', page2)  # ticked here, shown ticked
    assert re.search(r'<option value="jp-65"[^>]*selected', page2) and 'name="start_at" value="7"' in page2
    assert "Only the ticked items are printed (2)." in page2
    # Paging is part of the same form (a GET), so whatever is ticked travels with it.
    assert re.search(r'<button type="submit" class="link" name="page" value="1" formmethod="get"', page2)


@pytest.mark.parametrize(("query", "expected"), [
    ("layout=jp-65&format=pdf", "Download 12 labels: 1 × sheet of 65"),
    ("layout=jp-65&format=pdf&start_at=60", "Download 12 labels: 2 × sheet of 65"),
    ("layout=jp-24&format=pdf&start_at=24", "Download 12 labels: 2 × sheet of 24"),
    ("layout=jp-24&format=zip", "Download 12 labels, one image each"),
    ("layout=ql-62&format=ql", "Download 12 labels, one image each"),
    ("layout=jp-24&format=png", "Download 1 labels, one image each"),
    ("", "Download 12 labels: 1 × sheet of 24"),  # the first visit: the default layout, a PDF
])
def test_the_button_says_how_many_labels_and_sheets_before_anything_is_made(admin_client, make_item, query,
                                                                            expected):
    picked = [make_item(name=f"Counted {n}") for n in range(14)][:12]
    ticks = "&".join(f"id={i.id}" for i in picked)
    page = admin_client.get(f"/admin/labels/?{ticks}&{query}").get_data(as_text=True)
    assert _button(page) == expected
    assert "<span>Only the ticked items are printed (12).</span>" in page


def test_with_nothing_ticked_the_count_is_every_match(admin_client, three):
    page = admin_client.get("/admin/labels/?layout=jp-65").get_data(as_text=True)
    assert _button(page) == "Download 3 labels: 1 × sheet of 65"
    assert "every item that matches is printed (3)" in page


def test_print_view_says_labels_and_sheets(admin_client, three):
    page = admin_client.get("/admin/labels/print?layout=jp-24&start_at=23").get_data(as_text=True)
    assert "3 labels: 2 × sheet of 24" in page


def _printed_at(session, item):
    reread(session)
    return session.scalar(select(LabelToken.printed_at).where(LabelToken.item_id == item.id,
                                                              LabelToken.replaced_at.is_(None)))


def _rows(page: str) -> dict[str, str]:
    """Asset tag -> the Last printed cell of each row in the list."""
    return {tag: " ".join(re.sub(r"<[^>]+>", " ", cell).split()) for tag, cell in
            re.findall(r'<td class="tag">([^<]+)</td>.*?<td class="opt">[^<]*</td>\s*<td>(.*?)</td></tr>', page, re.S)}


@pytest.mark.postgres  # the file is read as a stream before the labels are marked printed
def test_each_file_records_when_its_labels_were_printed_and_never_printed_finds_the_rest(
        app, admin_client, session, admin, three, frozen_clock):
    tags = [i.asset_tag for i in three]
    assert set(_rows(admin_client.get("/admin/labels/").get_data(as_text=True)).values()) == {"Never"}
    assert download(admin_client, id=str(three[0].id), format="pdf").status_code == 200
    assert _printed_at(session, three[0]) == NOW and _printed_at(session, three[1]) is None
    rows = _rows(admin_client.get("/admin/labels/").get_data(as_text=True))
    assert rows[tags[0]] != "Never" and rows[tags[1]] == rows[tags[2]] == "Never"
    never = admin_client.get("/admin/labels/?printed=never").get_data(as_text=True)
    assert list(_rows(never)) == tags[1:]
    assert "every item that matches is printed (2)" in never
    # Downloading "every item that matches" with the filter on prints exactly the two, and marks them.
    resp = download(admin_client, printed="never", layout="jp-44", format="zip")
    assert _zip_names(resp) == sorted(f"{t}.png" for t in tags[1:])
    assert list(_rows(admin_client.get("/admin/labels/?printed=never").get_data(as_text=True))) == []
    # A reissued label has not been printed yet.
    reread(session)
    items.issue_label(session, NOW, session.get(Item, three[0].id), admin)
    session.commit()
    assert list(_rows(admin_client.get("/admin/labels/?printed=never").get_data(as_text=True))) == tags[:1]


def test_a_label_job_marks_its_labels_printed_when_the_file_is_made(app, admin_client, session, three):
    resp = download(admin_client, id=[str(three[0].id), str(three[2].id)], layout="jp-65", format="pdf", **{"async": "1"})
    assert resp.status_code == 200
    assert _printed_at(session, three[0]) is None  # asked for, not made yet
    assert scheduler_jobs.run_label_jobs(app) == 1
    assert _printed_at(session, three[0]) is not None and _printed_at(session, three[2]) is not None
    assert _printed_at(session, three[1]) is None


# --- downloads -----------------------------------------------------------------------------------------------------


def test_download_pdf_puts_every_label_in_its_slot(app, admin_client, session, three, tmp_path):
    resp = download(admin_client, layout="jp-24", format="pdf", start_at="5")
    assert resp.status_code == 200
    assert resp.mimetype == "application/pdf"
    assert resp.headers["Content-Disposition"].startswith("attachment") and "labels-jp-24.pdf" in resp.headers[
        "Content-Disposition"]
    assert resp.data.startswith(b"%PDF")
    sheet = layouts.LAYOUTS["jp-24"]
    rows = 3  # slots 1-9: the four skipped, the three labels and two blank ones after them
    pages = rasterise(resp.data, tmp_path, top_mm=sheet.top + rows * sheet.pitch_y)
    assert len(pages) == 1
    for slot in range(rows * sheet.cols):
        found = decode(slot_image(pages[0], sheet, slot))
        if 4 <= slot < 7:
            assert found == [url_of(app, session, three[slot - 4])], slot
        else:
            assert found == [], slot


def test_download_zip_of_picked_items(app, admin_client, session, three):
    picked = [three[0], three[2]]
    resp = download(admin_client, select="picked", id=[str(i.id) for i in picked], layout="jp-44", format="zip")
    assert resp.status_code == 200
    assert resp.mimetype == "application/zip"
    assert "labels-jp-44.zip" in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        assert sorted(zf.namelist()) == sorted(f"{i.asset_tag}.png" for i in picked)
        for item in picked:
            img = Image.open(io.BytesIO(zf.read(f"{item.asset_tag}.png")))
            assert decode(img) == [url_of(app, session, item)]


def test_download_zip_for_a_label_printer(app, admin_client, session, three):
    resp = download(admin_client, layout="ql-29x90", format="zip")
    assert resp.status_code == 200 and resp.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(resp.data)) as zf:
        assert len(zf.namelist()) == 3
        for item in three:
            img = Image.open(io.BytesIO(zf.read(f"{item.asset_tag}.png")))
            assert img.size == (306, 991)
            assert decode(img) == [url_of(app, session, item)]


def test_download_png_of_one_label(app, admin_client, session, three):
    resp = download(admin_client, select="picked", id=str(three[1].id), layout="ql-62", format="png")
    assert resp.status_code == 200
    assert resp.mimetype == "image/png"
    assert f"{three[1].asset_tag}.png" in resp.headers["Content-Disposition"]
    img = Image.open(io.BytesIO(resp.data))
    assert img.size == (696, 354)
    assert decode(img) == [url_of(app, session, three[1])]


def test_download_ql_raster(admin_client, three):
    resp = download(admin_client, layout="ql-62", format="ql")
    assert resp.status_code == 200
    assert resp.mimetype == "application/octet-stream"
    assert "labels-ql-62.bin" in resp.headers["Content-Disposition"]
    assert_ql_raster(resp.data)
    assert resp.data.count(b"\x1biz") == 3  # one media/quality command per label


def test_preview_png(app, admin_client, session, three):
    resp = admin_client.get(f"/admin/labels/preview/{three[0].asset_tag}.png?layout=jp-65")
    assert resp.status_code == 200 and resp.mimetype == "image/png"
    assert decode(Image.open(io.BytesIO(resp.data))) == [url_of(app, session, three[0])]
    assert admin_client.get("/admin/labels/preview/NOPE-1.png").status_code == 404
    assert admin_client.get(f"/admin/labels/preview/{three[0].asset_tag}.png?layout=nope").status_code == 400


def _made_by_the_scheduler(app, client, status_url: str) -> dict:
    """The scheduler process makes the queued file (run here as it runs there), then the page reads its state."""
    assert client.get(status_url).get_json()["waiting"] is True
    assert scheduler_jobs.run_label_jobs(app) == 1
    resp = client.get(status_url)
    assert resp.status_code == 200
    state = resp.get_json()
    assert state["error"] is None
    assert state["finished"], state
    return state


ASYNC = [("jp-65", "pdf", "application/pdf", b"%PDF"), ("ql-29x90", "zip", "application/zip", b"PK")]


def test_async_job_finishes_and_its_file_downloads(app, admin_client, make_user, three):
    other = app.test_client()
    assert sign_in(other, make_user("admin", language="en").email).status_code == 302
    for layout, fmt, mimetype, magic in ASYNC:
        _async_job(app, admin_client, other, layout, fmt, mimetype, magic)


def _async_job(app, admin_client, other, layout, fmt, mimetype, magic):
    resp = download(admin_client, layout=layout, format=fmt, **{"async": "1"})
    assert resp.status_code == 200
    job = resp.get_json()
    assert job["total"] == 3 and job["job"]
    assert job["status"] == f"/admin/labels/jobs/{job['job']}" and job["file"] == f"/admin/labels/jobs/{job['job']}/file"
    state = _made_by_the_scheduler(app, admin_client, job["status"])
    assert state["done"] == state["total"] == 3
    got = admin_client.get(job["file"])
    assert got.status_code == 200
    assert got.mimetype == mimetype and got.data.startswith(magic)
    assert f"labels-{layout}.{fmt}" in got.headers["Content-Disposition"]
    got.close()
    assert other.get(job["status"]).status_code == 404  # another admin cannot see the job
    assert other.get(job["file"]).status_code == 404
    assert admin_client.get("/admin/labels/jobs/not-a-job").status_code == 404
    assert admin_client.get("/admin/labels/jobs/..%2F..%2Fetc").status_code == 404


def test_async_job_refuses_bad_input_with_json(admin_client, three):
    resp = download(admin_client, layout="jp-24", start_at="0", **{"async": "1"})
    assert resp.status_code == 400
    assert resp.get_json()["error"] == "Start at must be between 1 and 24."


# --- who may use it -------------------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/admin/labels/"),
    ("GET", "/admin/labels/print?select=all&layout=jp-24"),
    ("GET", "/admin/labels/preview/{tag}.png"),
    ("POST", "/admin/labels/download"),
    ("GET", "/admin/labels/jobs/abcdef"),
    ("GET", "/admin/labels/jobs/abcdef/file"),
    ("POST", "/admin/labels/send"),
    ("POST", "/admin/labels/reissue/{tag}"),
]


@pytest.mark.parametrize("role", ["staff", "security"])
def test_staff_and_security_get_403_on_every_labels_route(app, client, session, make_user, make_item, role):
    item = make_item()
    before = label_token(session, item)
    assert sign_in(client, make_user(role, language="en").email).status_code == 302
    form = {"select": "all", "layout": "ql-62", "format": "pdf"}
    for method, path in ROUTES:
        url = path.format(tag=item.asset_tag)
        resp = client.get(url) if method == "GET" else post(client, url, form)
        assert resp.status_code == 403, (role, method, url, resp.status_code)
    assert label_token(session, item) == before  # the refused reissue changed nothing


def test_anonymous_is_sent_to_sign_in(client, make_item):
    item = make_item()
    for method, path in ROUTES:
        url = path.format(tag=item.asset_tag)
        resp = client.get(url) if method == "GET" else client.post(url, data={})
        assert resp.status_code in (302, 400), (url, resp.status_code)  # POST without CSRF may stop earlier
        if resp.status_code == 302:
            assert "/login" in resp.headers["Location"]


# --- the print view -------------------------------------------------------------------------------------------------


def test_print_view_escapes_markup_in_item_names(admin_client, make_item):
    make_item(name="<b>x</b>")
    make_item(name="{{ 7*7 }}")
    make_item(name="%(x)s")
    resp = admin_client.get("/admin/labels/print?select=all&layout=jp-24&show_name=1")
    assert resp.status_code == 200
    page = resp.get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" in page and "<b>x</b>" not in page
    assert "{{ 7*7 }}" in page
    assert "%(x)s" in page
    assert page.count("<svg") == 1 and "100 %" in page

    hidden = admin_client.get("/admin/labels/print?select=all&layout=jp-24").get_data(as_text=True)
    assert "&lt;b&gt;x&lt;/b&gt;" not in hidden and "{{ 7*7 }}" not in hidden  # names only when asked


def test_print_view_start_at_and_pages(admin_client, make_item):
    for _ in range(3):
        make_item()
    page = admin_client.get("/admin/labels/print?select=all&layout=jp-24&start_at=23").get_data(as_text=True)
    assert page.count("<svg") == 2  # slots 23 and 24, then a second sheet
    sheet = layouts.LAYOUTS["jp-24"]
    x, y = sheet.position(22)
    assert f'translate({x:.3f} {y:.3f})' in page


# --- bad input ------------------------------------------------------------------------------------------------------

CUSTOM_OFF_PAGE = {"layout": "custom", "page_w": "210", "page_h": "297", "label_w": "50", "label_h": "30",
                   "cols": "4", "rows": "8", "left": "10", "top": "12", "pitch_x": "60", "pitch_y": "34"}

BAD = {
    "start at 0": ({"start_at": "0"}, "Start at must be between 1 and 24."),
    "start beyond the sheet": ({"start_at": "25"}, "Start at must be between 1 and 24."),
    "start beyond a printer label": ({"layout": "ql-62", "format": "zip", "start_at": "2"},
                                     "Start at must be between 1 and 1."),
    "unknown layout": ({"layout": "jp-99"}, "There is no label layout named jp-99."),
    "custom off the page": (CUSTOM_OFF_PAGE, "The labels do not fit on the page."),
    "custom pitch below label": ({**CUSTOM_OFF_PAGE, "cols": "3", "pitch_x": "40"},
                                 "The pitch must be at least the label size."),
    "custom zero size": ({**CUSTOM_OFF_PAGE, "cols": "3", "label_w": "0"},
                         "Every size of a custom layout must be above zero."),
    "custom blank": ({**CUSTOM_OFF_PAGE, "top": ""}, "Fill in every size of the custom layout in millimetres."),
    "nothing picked": ({"select": "picked"}, "Pick at least one item, or choose every item that matches."),
    "nothing matches": ({"q": "no-such-item-anywhere"}, "No items match."),
    "pdf on a printer": ({"layout": "ql-62"}, "PDF needs a sheet layout; for a label printer choose PNG, zip or QL."),
    "ql on a sheet": ({"format": "ql"}, "Brother QL raster needs a Brother QL layout."),
    "unknown format": ({"format": "exe"}, "Unknown file format."),
}


def _assert_refused(client, resp, message):
    assert resp.status_code in (302, 303), resp.status_code
    assert resp.headers["Location"].endswith("/admin/labels/")
    assert resp.mimetype == "text/html" and "attachment" not in resp.headers.get("Content-Disposition", "")
    shown = flashes(client.get("/admin/labels/"))
    assert ("error", message) in shown, shown


def test_bad_download_input_gives_a_message_and_no_file(admin_client, three):
    for case, (fields, message) in BAD.items():
        try:
            _assert_refused(admin_client, download(admin_client, **fields), message)
        except AssertionError as err:
            raise AssertionError(f"{case}: {err}") from None


def test_bad_print_view_input_gives_a_message(admin_client, three):
    for query, message in [("start_at=0", "Start at must be between 1 and 24."),
                           ("layout=nope", "There is no label layout named nope."),
                           ("select=picked", "Pick at least one item, or choose every item that matches.")]:
        args = {"select": "all", "layout": "jp-24", **dict([query.split("=")])}
        resp = admin_client.get("/admin/labels/print?" + "&".join(f"{k}={v}" for k, v in args.items()))
        _assert_refused(admin_client, resp, message)


def test_custom_layout_of_nan_is_refused(admin_client, three):
    """float() reads 'nan'; a crafted form must get a message like any layout that does not fit, not a file."""
    served = []
    for field in ("label_w", "page_w", "left", "pitch_y"):
        resp = download(admin_client, **{**CUSTOM_OFF_PAGE, "cols": "3", field: "nan"})
        shown = flashes(admin_client.get("/admin/labels/"))
        if resp.status_code not in (302, 303) or not shown or shown[0][0] != "error":
            served.append(f"{field}=nan -> {resp.status_code} {resp.mimetype}")
    assert served == [], served


def test_a_valid_custom_layout_downloads(app, admin_client, session, three, tmp_path):
    fields = {**CUSTOM_OFF_PAGE, "cols": "3"}
    resp = download(admin_client, **fields, start_at="2")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    sheet = layouts.custom(*[float(fields[f]) for f in ("page_w", "page_h", "label_w", "label_h", "cols", "rows",
                                                         "left", "top", "pitch_x", "pitch_y")])
    page = rasterise(resp.data, tmp_path, top_mm=sheet.top + 2 * sheet.pitch_y)[0]
    assert [decode(slot_image(page, sheet, s)) for s in range(4)] == [
        [], *[[url_of(app, session, item)] for item in three]]


# --- reissue and scanning -------------------------------------------------------------------------------------------


def test_reissue_rotates_the_token_and_the_old_label_says_replaced(app, admin_client, session, three):
    item = three[1]
    old = label_token(session, item)
    resp = post(admin_client, f"/admin/labels/reissue/{item.asset_tag}", page="/admin/labels/")
    assert resp.status_code == 303 and resp.headers["Location"].endswith(f"/items/{item.asset_tag}")
    new = label_token(session, item)
    assert new != old and re.fullmatch(r"[A-Z2-7]{26}", new)
    assert len(events(session, "label_issued", item)) == 2  # at creation and now
    assert session.scalar(select(LabelToken.replaced_at).where(LabelToken.token == old)) is not None
    shown = flashes(admin_client.get(f"/items/{item.asset_tag}"))
    assert any(kind == "success" and item.asset_tag in text for kind, text in shown)

    for path in (f"/s/{old}", f"/S/{old}", f"/S/{old.lower()}", f"/s/{old.lower()}"):
        resp = admin_client.get(path)
        assert resp.status_code == 410, path
        assert "Label replaced" in resp.get_data(as_text=True)
    assert len(events(session, "scan_replaced_label", item)) == 4
    reread(session)
    assert set(session.scalars(select(Event.actor_id).where(Event.action == "scan_replaced_label"))) == {
        _admin_id(session)}  # who scanned the old label
    assert len(events(session, "scan_replaced_label", three[0])) == 0

    assert_opens_item(admin_client.get(f"/S/{new}"), item)
    assert_opens_item(admin_client.get(f"/s/{new.lower()}"), item)

    # whoever finds the item is not signed in: the old label is recorded and tells them nothing about the item
    finder = app.test_client()
    for path in (f"/S/{old}", f"/s/{old.lower()}"):
        resp = finder.get(path)
        assert_reveals_nothing(resp, item)
    # A finder's scans of one label within the hour are one counted entry and one audit line.
    assert len(events(session, "scan_replaced_label", item)) + len(events(session, "found_scan", item)) == 5

    # new labels carry the new token
    png = download(admin_client, select="picked", id=str(item.id), layout="jp-65", format="png")
    assert decode(Image.open(io.BytesIO(png.data))) == [qr.label_url(app.config["BASE_URL"], new)]


def _admin_id(session) -> int:
    from tracker.models import Role, User

    return session.scalar(select(User.id).where(User.role == Role.admin))


def assert_opens_item(resp, item) -> None:
    """A scan by a signed-in user opens the item: a redirect to its page, or the page itself."""
    if resp.status_code == 302:
        assert resp.headers["Location"].endswith(f"/items/{item.asset_tag}")
    else:
        assert resp.status_code == 200
        assert item.asset_tag in resp.get_data(as_text=True)


def assert_reveals_nothing(resp, item) -> None:
    """What someone who is not signed in sees after a scan: sign in, or whom to call; never the item."""
    if resp.status_code == 302:
        assert "/login" in resp.headers["Location"]
        return
    page = resp.get_data(as_text=True)
    assert item.asset_tag not in page and item.name not in page


def test_reissue_of_an_unknown_tag_is_404(admin_client):
    assert post(admin_client, "/admin/labels/reissue/NOPE-0001", page="/admin/labels/").status_code == 404
    assert admin_client.get("/admin/labels/reissue/NOPE-0001").status_code == 405


def test_retired_items_label_shows_the_retired_page(admin_client, session, admin, make_item):
    item = make_item()
    tok = label_token(session, item)
    items.retire(session, NOW, session.get(Item, item.id), session.get(type(admin), admin.id))
    session.commit()
    resp = admin_client.get(f"/S/{tok}")
    assert resp.status_code == 410
    page = resp.get_data(as_text=True)
    assert "Retired item" in page and item.asset_tag in page


def test_unknown_token_is_not_a_valid_label(app, admin_client):
    for client in (app.test_client(), admin_client):
        for path in ("/S/" + "A" * 26, "/s/nonsense", "/S/%3Cscript%3E"):
            resp = client.get(path)
            assert resp.status_code == 404, path
            assert "Not a valid label" in resp.get_data(as_text=True)


def test_label_url_of_the_app_routes_to_the_scan_page(app, session, admin_client, three):
    url = url_of(app, session, three[0])
    assert url.startswith("HTTPS://TRACK.EXAMPLE.COM/S/")
    path = url[len("HTTPS://TRACK.EXAMPLE.COM"):]
    assert_opens_item(admin_client.get(path), three[0])
    assert_reveals_nothing(app.test_client().get(path), three[0])
    assert queries.label_by_token(session, path.rsplit("/", 1)[1].lower()).item_id == three[0].id


# --- CLI ------------------------------------------------------------------------------------------------------------


def test_labels_help_and_list(runner):
    result = runner.invoke(args=["labels", "--help"])
    assert result.exit_code == 0 and "Usage:" in result.output
    for option in ("--layout", "--tag", "--all", "--out", "--format", "--start-at", "--show-name", "--send", "--list"):
        assert option in result.output
    result = runner.invoke(args=["labels", "--list"])
    assert result.exit_code == 0
    for name in layouts.LAYOUTS:
        assert re.search(rf"^{re.escape(name)}\s", result.output, re.M), name


def test_labels_all_to_pdf(app, runner, session, admin, three, tmp_path):
    retired = three[2]
    items.retire(session, NOW, session.get(Item, retired.id), session.get(type(admin), admin.id))
    session.commit()
    out = tmp_path / "out"
    result = runner.invoke(args=["labels", "--layout", "jp-65", "--all", "--out", str(out)])
    assert result.exit_code == 0, result.output
    pdf = out / "labels-jp-65-001.pdf"
    assert str(pdf) in result.output
    assert pdf.read_bytes().startswith(b"%PDF")
    sheet = layouts.LAYOUTS["jp-65"]
    page = rasterise(pdf.read_bytes(), tmp_path, top_mm=sheet.top + sheet.pitch_y)[0]
    assert [decode(slot_image(page, sheet, s)) for s in range(3)] == [
        [url_of(app, session, three[0])], [url_of(app, session, three[1])], []]  # retired items are left out
    assert [_printed_at(session, i) is not None for i in three] == [True, True, False]


def test_labels_tag_to_png_and_ql(app, runner, session, three, tmp_path):
    item = three[0]
    result = runner.invoke(args=["labels", "--tag", item.asset_tag.lower(), "--layout", "ql-62", "--out",
                                 str(tmp_path)])
    assert result.exit_code == 0, result.output
    png = tmp_path / f"{item.asset_tag}.png"
    assert png.exists() and str(png) in result.output
    assert decode(Image.open(png)) == [url_of(app, session, item)]

    result = runner.invoke(args=["labels", "--tag", item.asset_tag, "--tag", three[1].asset_tag, "--layout",
                                 "ql-62", "--format", "ql", "--out", str(tmp_path / "ql")])
    assert result.exit_code == 0, result.output
    bins = sorted((tmp_path / "ql").glob("*.bin"))
    assert [b.name for b in bins] == [f"{item.asset_tag}.62.bin", f"{three[1].asset_tag}.62.bin"]
    assert_ql_raster(bins[0].read_bytes())


def test_labels_default_out_dir_is_labels_dir(app, runner, three):
    result = runner.invoke(args=["labels", "--tag", three[0].asset_tag])
    assert result.exit_code == 0, result.output
    written = Path(app.config["LABELS_DIR"]) / "labels-jp-24-001.pdf"
    assert written.exists() and str(written) in result.output


BAD_CLI = [
    ["--tag", "NOPE-0001"],
    ["--tag", "LT-0001", "--tag", "NOPE-0001"],
    [],
    ["--tag", "LT-0001", "--all"],
    ["--all", "--layout", "jp-99"],
    ["--all", "--layout", "ql-62", "--format", "pdf"],
    ["--all", "--layout", "jp-24", "--format", "ql"],
    ["--all", "--layout", "jp-24", "--send"],
]


def test_labels_cli_refuses_bad_arguments(runner, make_item, tmp_path):
    make_item()  # LT-0001
    out = tmp_path / "out"
    for args in BAD_CLI:
        result = runner.invoke(args=["labels", *args, "--out", str(out)])
        assert result.exit_code != 0, (args, result.output)
        assert not out.exists() or not list(out.iterdir()), args
        if "NOPE-0001" in args:
            assert "no item with tag: NOPE-0001" in result.output


# --- sending to a network label printer -----------------------------------------------------------------------------


class _Collector(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.settimeout(10)
        chunks = []
        while True:
            try:
                chunk = self.request.recv(65536)
            except TimeoutError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        self.server.received.append(b"".join(chunks))
        self.server.done.set()


@pytest.fixture
def printer(app):
    """A TCP listener on 127.0.0.1 standing in for a Brother QL on port 9100; collects each connection's bytes."""
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Collector)
    server.daemon_threads = True
    server.received, server.done = [], threading.Event()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    app.config["LABEL_PRINTER"] = f"tcp://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)


def _expected_raster(app, session, layout_name: str) -> bytes:
    reread(session)
    layout = layouts.LAYOUTS[layout_name]
    data = list(service.label_data(session, queries.items_stmt(), service.options_from(app.config, False)))
    return render.ql_raster(data, layout, app.config["LABEL_PRINTER_MODEL"])


def test_send_to_the_network_printer(app, admin_client, session, three, printer):
    page = admin_client.get("/admin/labels/").get_data(as_text=True)
    assert "/admin/labels/send" in page  # the button shows when a printer is configured
    resp = post(admin_client, "/admin/labels/send", {"select": "all", "layout": "ql-29x90"}, page="/admin/labels/")
    assert resp.status_code == 303
    assert printer.done.wait(10), "the printer received nothing"
    assert len(printer.received) == 1
    assert printer.received[0] == _expected_raster(app, session, "ql-29x90")
    assert_ql_raster(printer.received[0])
    shown = flashes(admin_client.get("/admin/labels/"))
    assert ("success", "3 labels were sent to the printer.") in shown
    assert all(_printed_at(session, item) is not None for item in three)  # sent to the printer: printed


def test_send_with_the_cli(app, runner, session, three, printer):
    result = runner.invoke(args=["labels", "--send", "--layout", "ql-62", "--all"])
    assert result.exit_code == 0, result.output
    assert printer.done.wait(10), "the printer received nothing"
    expected = _expected_raster(app, session, "ql-62")
    assert printer.received == [expected]
    assert f"Sent {len(expected)} bytes to {app.config['LABEL_PRINTER']}." in result.output


def test_send_refuses_without_printer_or_with_a_sheet_layout(app, admin_client, three):
    app.config["LABEL_PRINTER"] = None
    message = "Sending needs a Brother QL layout and a configured printer address."
    resp = post(admin_client, "/admin/labels/send", {"select": "all", "layout": "ql-62"}, page="/admin/labels/")
    _assert_refused(admin_client, resp, message)
    app.config["LABEL_PRINTER"] = "tcp://127.0.0.1:9"
    resp = post(admin_client, "/admin/labels/send", {"select": "all", "layout": "jp-24"}, page="/admin/labels/")
    _assert_refused(admin_client, resp, message)


def test_send_reports_a_printer_that_does_not_answer(app, admin_client, three, monkeypatch):
    # the app logs the exception; a captured log record would keep its traceback (and the socket) alive
    monkeypatch.setattr(app.logger, "disabled", True)
    with socket.socket() as s:  # a port with nobody listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.config["LABEL_PRINTER"] = f"tcp://127.0.0.1:{port}"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        resp = post(admin_client, "/admin/labels/send", {"select": "all", "layout": "ql-62"}, page="/admin/labels/")
        gc.collect()
    assert resp.status_code == 303
    shown = flashes(admin_client.get("/admin/labels/"))
    assert any(kind == "error" and text.startswith("The printer did not accept the labels") for kind, text in shown)
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaks == [], "a failed send leaves its socket open: " + "; ".join(leaks)


def test_labels_cli_refuses_a_start_outside_the_sheet(runner, make_item, tmp_path):
    """Like the admin page ("Start at must be between 1 and 24."): the CLI must not silently move the labels."""
    make_item()
    for start in ("0", "25", "-3"):
        out = tmp_path / f"start{start}"
        result = runner.invoke(args=["labels", "--all", "--layout", "jp-24", "--start-at", start, "--out", str(out)])
        assert result.exit_code != 0, f"--start-at {start} was accepted: {result.output}"
        assert not out.exists() or not list(out.iterdir())
