"""Stock-takes through HTTP: opening, counting from the desk's scanner input and from a phone's scan page, live
progress, closing, the report files read back (PDF text, CSV rows), roles and CSRF."""

from __future__ import annotations

import csv
import hashlib
import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.helpers import client_for as browser
from tests.helpers import count, counting, events, flashes, label_token, pdf_text, post, reread
from tracker.models import Flag, StockCount, StockTake

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def desk(make_user):
    return make_user("security", name="Desk Sato")


@pytest.fixture
def desk_client(app, desk):
    return browser(app, desk)


def open_all(client) -> int:
    resp = post(client, "/stocktakes/", {"scope": "all"}, page="/stocktakes/")
    assert resp.status_code == 303
    return int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])


def scan(client, st: int, code: str) -> dict:
    resp = post(client, f"/stocktakes/{st}/count", {"code": code, "js": "1"}, page=f"/stocktakes/{st}")
    assert resp.status_code == 200
    return resp.get_json()


def test_the_desk_opens_a_session_from_the_list(session, desk_client, make_place):
    make_place("Cabinet A")
    page = desk_client.get("/stocktakes/").get_data(as_text=True)
    assert "Open a stock-take" in page and "Cabinet A" in page
    st = open_all(desk_client)
    page = desk_client.get(f"/stocktakes/{st}", follow_redirects=True).get_data(as_text=True)
    assert "Every item" in page and 'id="code"' in page
    assert [e.action for e in events(session, "stocktake_opened")] == ["stocktake_opened"]


def test_staff_cannot_open_count_or_close(app, session, desk_client, make_user, make_item):
    st = open_all(desk_client)
    staff = browser(app, make_user())
    item = make_item()
    assert post(staff, "/stocktakes/", {"scope": "all"}).status_code == 403
    assert post(staff, f"/stocktakes/{st}/count", {"code": item.asset_tag}).status_code == 403
    assert post(staff, f"/stocktakes/{st}/close").status_code == 403
    assert staff.get(f"/stocktakes/{st}").status_code == 403
    assert count(session, StockTake) == 1 and count(session, StockCount) == 0
    reread(session)
    assert session.get(StockTake, st).closed_at is None


def test_a_post_without_its_csrf_token_changes_nothing(session, desk_client, make_item):
    st = open_all(desk_client)
    item = make_item()
    assert desk_client.post(f"/stocktakes/{st}/count", data={"code": item.asset_tag}).status_code == 400
    assert desk_client.post(f"/stocktakes/{st}/close").status_code == 400
    assert count(session, StockCount) == 0
    reread(session)
    assert session.get(StockTake, st).closed_at is None


def test_scanner_input_counts_labels_and_typed_tags_once(app, session, desk_client, make_item):
    st = open_all(desk_client)
    labelled, typed = make_item(), make_item()
    url = f"https://track.example.com/S/{label_token(session, labelled)}"
    assert scan(desk_client, st, url) == {"ok": True, "tag": labelled.asset_tag, "new": True,
                                          "message": f"{labelled.asset_tag} counted."}
    assert scan(desk_client, st, typed.asset_tag.lower())["new"] is True
    again = scan(desk_client, st, url)
    assert again["ok"] and not again["new"] and "was counted already (by Desk Sato" in again["message"]
    bad = scan(desk_client, st, "NOT-A-TAG")
    assert bad["ok"] is False and bad["message"] == "That is not a label of this system."
    reread(session)
    methods = dict(session.execute(select(StockCount.item_id, StockCount.method)).all())
    assert methods == {labelled.id: "scanner", typed.id: "typed"}


def test_the_progress_fragment_shows_every_list(session, desk_client, make_item):
    st = open_all(desk_client)
    there, missing = make_item(name="On the shelf"), make_item(name="Nowhere")
    scan(desk_client, st, there.asset_tag)
    part = desk_client.get(f"/stocktakes/{st}?fragment=1").get_data(as_text=True)
    assert "1 of 2 expected items accounted for" in part and "data-waiting" in part
    assert 'data-part="lists"' in part and missing.asset_tag in part and there.asset_tag in part
    assert '<dd data-total="missing">1</dd>' in part


def test_a_phones_scan_page_offers_count_it_to_the_desk_only(app, session, desk_client, make_user, make_item):
    item = make_item()
    scan_url = f"/S/{label_token(session, item)}"
    assert "Count it in stock-take" not in desk_client.get(scan_url).get_data(as_text=True)  # none open yet
    st = open_all(desk_client)
    page = desk_client.get(scan_url).get_data(as_text=True)
    assert f"Count it in stock-take {st}" in page
    resp = post(desk_client, f"/stocktakes/{st}/count", {"item": item.asset_tag, "next": scan_url}, page=scan_url)
    assert resp.status_code == 303 and resp.headers["Location"].endswith(scan_url)
    page = desk_client.get(scan_url)
    assert ("success", f"{item.asset_tag} counted.") in flashes(page)
    assert f"Counted in stock-take {st} by Desk Sato" in page.get_data(as_text=True)  # no second button
    assert "Count it in stock-take" not in page.get_data(as_text=True)
    reread(session)
    assert session.scalars(select(StockCount.method)).all() == ["phone"]
    staff = browser(app, make_user())
    assert "Count it in stock-take" not in staff.get(scan_url).get_data(as_text=True)


def test_closing_makes_the_report_flags_and_refuses_later_counts(session, desk_client, make_item, tmp_path):
    st = open_all(desk_client)
    there = make_item(name="ノートPC 営業部")
    gone = make_item(name="=HYPERLINK(\"http://evil\")")
    scan(desk_client, st, there.asset_tag)
    resp = post(desk_client, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}")
    assert resp.status_code == 303
    page = desk_client.get(f"/stocktakes/{st}").get_data(as_text=True)
    assert "Report (PDF)" in page and 'id="code"' not in page and "data-waiting" not in page
    (closed,) = events(session, "stocktake_closed")
    digest = json.loads(closed.data)["sha256"]
    assert digest in page

    pdf = desk_client.get(f"/stocktakes/{st}/report.pdf")
    assert pdf.status_code == 200 and pdf.mimetype == "application/pdf"
    assert hashlib.sha256(pdf.data).hexdigest() == digest
    (tmp_path / "report.pdf").write_bytes(pdf.data)
    text = pdf_text(tmp_path / "report.pdf")
    assert f"Stock-take {st}" in text and there.asset_tag in text and gone.asset_tag in text
    assert "ノートPC" in text and "Desk Sato" in text and "Missing" in text and "Counted" in text

    rows = list(csv.reader(io.StringIO(desk_client.get(f"/stocktakes/{st}/report.csv").data.decode("utf-8-sig"))))
    by_tag = {r[1]: r for r in rows[1:] if len(r) > 1}
    assert by_tag[there.asset_tag][0] == "Counted" and by_tag[there.asset_tag][7] == "Desk Sato"
    assert by_tag[gone.asset_tag][0] == "Missing" and by_tag[gone.asset_tag][2].startswith("'=")

    book = load_workbook(io.BytesIO(desk_client.get(f"/stocktakes/{st}/report.xlsx").data)).active
    cells = {row[1]: row for row in book.iter_rows(min_row=2, values_only=True) if row[1]}
    assert cells[there.asset_tag][0] == "Counted" and cells[gone.asset_tag][2].startswith("=HYPERLINK")
    assert book.cell(row=3, column=3).data_type == "s"  # kept as text, never a formula
    assert [e.data for e in events(session, "export")][-3:] == [
        json.dumps({"export": f"stocktake.{fmt}", "stocktake": st}) for fmt in ("pdf", "csv", "xlsx")]

    reread(session)
    assert [f.item_id for f in session.scalars(select(Flag).where(Flag.stocktake_id == st))] == [gone.id]
    late = scan(desk_client, st, gone.asset_tag)
    assert late["ok"] is False and "is closed" in late["message"]
    assert post(desk_client, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}").status_code == 303
    assert count(session, Flag, Flag.stocktake_id == st) == 1


def test_the_board_lists_missing_items_and_the_flag_page_resolves_them(session, desk_client, make_item):
    st = open_all(desk_client)
    gone = make_item(name="Lost binder")
    post(desk_client, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}")
    board = desk_client.get("/desk/").get_data(as_text=True)
    assert "Missing at a stock-take" in board and gone.asset_tag in board
    flag = session.scalars(select(Flag).where(Flag.stocktake_id == st)).one()
    page = desk_client.get(f"/desk/flags/{flag.id}").get_data(as_text=True)
    assert f"Stock-take {st}" in page and "new_due" not in page
    resp = post(desk_client, f"/desk/flags/{flag.id}/resolve", {"how": "found", "note": "in the safe"},
                page=f"/desk/flags/{flag.id}")
    assert resp.status_code == 303
    assert "Missing at a stock-take" not in desk_client.get("/desk/").get_data(as_text=True)


def test_reports_of_an_open_session_do_not_exist(desk_client):
    st = open_all(desk_client)
    assert desk_client.get(f"/stocktakes/{st}/report.pdf").status_code == 404
    assert desk_client.get(f"/stocktakes/{st}/report.xls").status_code == 404


def test_the_list_shows_open_and_closed_sessions(desk_client):
    first, second = open_all(desk_client), open_all(desk_client)
    post(desk_client, f"/stocktakes/{first}/close", page=f"/stocktakes/{first}")
    page = desk_client.get("/stocktakes/").get_data(as_text=True)
    assert page.index(f"/stocktakes/{second}") < page.index(f"/stocktakes/{first}")  # open ones first
    assert "Stock-takes" in desk_client.get("/desk/").get_data(as_text=True)


def test_a_missing_item_marked_lost_opens_an_incident_without_a_holder(app, session, desk, desk_client, make_item):
    st = open_all(desk_client)
    gone = make_item(name="Customer forms")
    post(desk_client, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}")
    flag = session.scalars(select(Flag).where(Flag.stocktake_id == st)).one()
    resp = post(desk_client, f"/desk/flags/{flag.id}/lost", {"note": "not in the cabinet"},
                page=f"/desk/flags/{flag.id}")
    assert resp.status_code == 303 and "/desk/incidents/" in resp.headers["Location"]
    page = desk_client.get(resp.headers["Location"])
    assert page.status_code == 200 and gone.asset_tag in page.get_data(as_text=True)
    assert desk_client.get(resp.headers["Location"].rstrip("/") + ".pdf").status_code == 200


def test_the_api_lists_a_missing_items_flag_without_a_check_out(app, session, desk, desk_client, make_item):
    from tracker import clock
    from tracker.accounts import tokens

    st = open_all(desk_client)
    gone = make_item()
    post(desk_client, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}")
    secret = tokens.create(session, clock.now(), user=desk, actor=None, name="t", scopes="read,act", days=30).secret
    session.commit()
    resp = app.test_client().get("/api/v1/flags", headers={"Authorization": f"Bearer {secret}"})
    assert resp.status_code == 200
    (listed,) = resp.get_json()["rows"]
    assert listed["checkout"] is None and listed["status"] == "open"
    assert (listed["asset_tag"], listed["reason"], listed["stocktake_id"]) == (gone.asset_tag, "stocktake_missing", st)
    done = app.test_client().post(f"/api/v1/flags/{listed['id']}/resolve", json={"how": "found"},
                                  headers={"Authorization": f"Bearer {secret}"})
    assert done.status_code == 200 and done.get_json()["resolution"] == "found"


def test_the_live_progress_reads_the_same_statements_for_more_items(app, session, desk, desk_client, make_item):
    st = open_all(desk_client)
    for _ in range(3):
        scan(desk_client, st, make_item().asset_tag)
    make_item()

    def statements() -> int:
        desk_client.get(f"/stocktakes/{st}?fragment=1")  # warm up
        with counting(app) as seen:
            assert desk_client.get(f"/stocktakes/{st}?fragment=1").status_code == 200
        return len(seen)

    few = statements()
    for _ in range(20):
        scan(desk_client, st, make_item().asset_tag)
        make_item()
    assert statements() == few


def test_the_report_is_written_in_the_closers_language(app, session, desk, make_item, make_place, tmp_path):
    japanese = browser(app, desk)
    japanese.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    shelf = make_place("第二書庫")
    there, gone = make_item(name="顧客名簿 A"), make_item(name="顧客名簿 B")
    for item in (there, gone):
        item.home_place_id = shelf.id
    session.commit()
    resp = post(japanese, "/stocktakes/", {"scope": "place", "place": str(shelf.id)}, page="/stocktakes/")
    st = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
    scan(japanese, st, there.asset_tag)
    post(japanese, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}")
    (tmp_path / "report.pdf").write_bytes(japanese.get(f"/stocktakes/{st}/report.pdf").data)
    text = pdf_text(tmp_path / "report.pdf")
    assert f"棚卸 {st}" in text and "保管場所：第二書庫" in text
    assert "所在不明" in text and "確認済み" in text and "顧客名簿 B" in text and "スキャナーで読み取り" not in text
    assert "管理番号を手入力" in text  # how the tag was counted
