"""The media register (媒体管理台帳): each item's life from registration (when, by whom, encryption method,
storage place) to disposal (廃棄: when, how, who, the contractor's certificate); a disposed item never goes out."""

from __future__ import annotations

import csv
import io

import pytest
from openpyxl import load_workbook

from tests.helpers import NOW, client_for, events, flashes, label_token, later, post, reread
from tracker.custody import operations as custody
from tracker.errors import Disposed, InvalidInput
from tracker.items import register
from tracker.models import DataClass, Item, Kind

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def admin_c(app, admin):
    return client_for(app, admin)


def test_registering_records_who_the_encryption_method_and_the_storage_place(session, admin, admin_c,
                                                                           make_department, make_place):
    hr = make_department("HR")
    cabinet = make_place("Cabinet B-2 (locked)")
    resp = post(admin_c, "/admin/items/new", {"kind": "usb", "name": "Payroll stick", "data_class": "my_number",
                                              "encrypted": "y", "encryption_method": "AES-256 hardware",
                                              "home_place": str(cabinet.id), "department": str(hr.id)})
    assert resp.status_code == 302
    reread(session)
    item = session.query(Item).filter_by(name="Payroll stick").one()
    assert (item.registered_by_id, item.encryption_method, item.home_place_id, item.data_class) == (
        admin.id, "AES-256 hardware", cabinet.id, DataClass.my_number)
    page = admin_c.get(f"/items/{item.asset_tag}").get_data(as_text=True)
    assert "Cabinet B-2 (locked)" in page and "AES-256 hardware" in page
    assert "My Number (specific personal information)" in page


def test_the_csv_import_reads_storage_place_and_encryption_method_in_japanese(session, admin, make_place):
    from tracker.items import csv_import

    safe = make_place("金庫A")
    text = "種別,名称,個人情報,暗号化,暗号化方式,保管場所\nUSBメモリ,給与データ,特定個人情報,あり,BitLocker To Go,金庫A\n"
    preview = csv_import.check(session, text)
    assert preview.ok, preview.errors
    (item_id,) = csv_import.run(session, NOW, preview, admin)
    session.commit()
    item = session.get(Item, item_id)
    assert (item.data_class, item.encryption_method, item.home_place_id, item.registered_by_id) == (
        DataClass.my_number, "BitLocker To Go", safe.id, admin.id)


@pytest.mark.postgres
def test_disposal_is_recorded_and_the_item_never_goes_out_again(session, admin, make_user, make_item):
    staff = make_user()
    usb = make_item(Kind.usb)
    with pytest.raises(InvalidInput, match="Choose how"):
        register.dispose(session, later(days=1), usb, admin, method="")
    with pytest.raises(InvalidInput, match="certificate"):
        register.dispose(session, later(days=1), usb, admin, method="contractor", contractor="Shred Co.")
    session.rollback()
    register.dispose(session, later(days=1), usb, admin, method="contractor", contractor="Shred Co.",
                     certificate="SC-2026-0042")
    session.commit()
    reread(session)
    assert (usb.disposed_at, usb.disposal_method, usb.disposed_by_id, usb.disposal_contractor,
            usb.disposal_certificate) == (later(days=1), "contractor", admin.id, "Shred Co.", "SC-2026-0042")
    assert usb.retired
    assert [e.actor_id for e in events(session, "item_disposed", usb)] == [admin.id]
    with pytest.raises(Disposed):
        custody.check_out(session, later(days=2), item=usb, holder=staff, actor=staff, due_at=later(days=2, hours=1))
    session.rollback()
    with pytest.raises(InvalidInput, match="already disposed"):
        register.dispose(session, later(days=3), usb, admin, method="destroyed")


def test_an_item_that_is_out_cannot_be_disposed_of(session, admin, make_user, make_item):
    staff = make_user()
    laptop = make_item()
    custody.check_out(session, NOW, item=laptop, holder=staff, actor=staff, due_at=later(hours=2))
    with pytest.raises(InvalidInput, match="must be returned"):
        register.dispose(session, later(hours=1), laptop, admin, method="destroyed")


def test_the_admin_records_disposal_on_the_item_page_and_the_label_says_so(app, session, admin, admin_c,
                                                                            make_user, make_item):
    usb = make_item(Kind.usb)
    staff_c = client_for(app, make_user())
    page = admin_c.get(f"/items/{usb.asset_tag}").get_data(as_text=True)
    assert "Record its disposal" in page
    resp = post(admin_c, f"/admin/items/{usb.asset_tag}/dispose", {"method": "contractor", "contractor": "Shred Co."})
    assert ("error", "Give the disposal contractor and the number of their certificate.") in flashes(
        admin_c.get(resp.headers["Location"]))
    reread(session)
    assert not usb.disposed
    resp = post(admin_c, f"/admin/items/{usb.asset_tag}/dispose",
                {"method": "contractor", "contractor": "Shred Co.", "certificate": "SC-9"})
    page = admin_c.get(resp.headers["Location"]).get_data(as_text=True)
    assert f"{usb.asset_tag} is recorded as disposed of." in page
    assert "SC-9" in page and "Handed to a disposal contractor" in page
    scan = staff_c.get(f"/S/{label_token(session, usb)}")
    assert scan.status_code == 410
    assert "was disposed of on" in scan.get_data(as_text=True)
    assert "cannot be checked out" in scan.get_data(as_text=True)


def test_the_media_register_holds_each_items_life(app, session, admin, admin_c, make_user, make_item, make_place,
                                                  frozen_clock):
    staff = make_user(name="Taro Out")
    desk = make_user("security")
    kept = make_item(Kind.usb, name="Kept", department="Sales")
    kept.home_place_id, kept.encryption_method, kept.encrypted, kept.registered_by_id = make_place("Safe 1").id, "BitLocker", True, \
        admin.id
    out = make_item(Kind.laptop, name="Out", department="Sales")
    waiting = make_item(Kind.usb, name="Waiting", department="Sales")
    gone = make_item(Kind.usb, name="Gone", department="Sales")
    other = make_item(name="Elsewhere", department="HR")
    session.commit()
    custody.check_out(session, NOW, item=out, holder=staff, actor=staff, due_at=later(days=1))
    custody.check_out(session, NOW, item=waiting, holder=staff, actor=staff, due_at=later(hours=1))
    custody.return_item(session, later(minutes=30), item=waiting, actor=staff, erasure="pending")
    register.dispose(session, later(minutes=40), gone, admin, method="contractor", contractor="Shred Co.",
                     certificate="SC-1")
    session.commit()
    frozen_clock["now"] = later(hours=1)
    resp = client_for(app, desk).get("/desk/records/media-register.xlsx?department=Sales")
    assert resp.status_code == 200
    assert resp.mimetype == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    ws = load_workbook(io.BytesIO(resp.data)).active
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    header = rows[0]
    by_tag = {r[0]: dict(zip(header, r, strict=True)) for r in rows[1:] if r[0] and r[1]}
    assert set(by_tag) == {kept.asset_tag, out.asset_tag, waiting.asset_tag, gone.asset_tag}  # Sales only
    assert other.asset_tag not in by_tag
    assert (by_tag[kept.asset_tag]["Site"], by_tag[kept.asset_tag]["Storage place"]) == ("Main office", "Safe 1")
    assert by_tag[kept.asset_tag]["Encryption"] == "encrypted (BitLocker)"
    assert by_tag[kept.asset_tag]["Registered by"] == "Admin Boss"
    assert by_tag[kept.asset_tag]["Status"] == "In the office"
    assert (by_tag[out.asset_tag]["Status"], by_tag[out.asset_tag]["Held by"]) == ("Out", "Taro Out")
    assert by_tag[waiting.asset_tag]["Status"] == "Waiting for return inspection"
    g = by_tag[gone.asset_tag]
    assert (g["Status"], g["Disposal method"], g["Disposed by"], g["Disposal contractor"], g["Certificate number"]) == (
        "Disposed of", "Handed to a disposal contractor", "Admin Boss", "Shred Co.", "SC-1")
    assert g["Disposed at"] == "2026-06-01 10:40"
    notes = [r[0] for r in rows if r[0] and not r[1]]
    assert "Department: Sales" in notes
    head = events(session)[-2]  # the last event before the export's own
    assert f"#{head.seq} {head.hash}" in notes[-2]


def test_the_register_as_csv_and_pdf_in_japanese(app, session, admin, make_user, make_item, tmp_path):
    from tests.helpers import pdf_text

    desk = make_user("security", language="ja")
    usb = make_item(Kind.usb, name="=cmd|' /C calc'!A0", department="総務部", data_class=DataClass.my_number)
    register.dispose(session, later(days=1), usb, admin, method="destroyed")
    session.commit()
    c = client_for(app, desk)
    resp = c.get("/desk/records/media-register.csv")
    assert resp.data.startswith(b"\xef\xbb\xbf")
    text = resp.data.decode("utf-8-sig")
    text.encode("cp932")  # survives Excel's "save as CSV (Shift_JIS)"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:6] == ["管理番号", "種別", "名称", "シリアル番号", "部署", "個人情報の区分"]
    line = dict(zip(rows[0], rows[1], strict=True))
    assert (line["名称"], line["個人情報の区分"], line["状態"], line["廃棄方法"], line["廃棄担当者"]) == (
        "'=cmd|' /C calc'!A0", "特定個人情報（マイナンバー）", "廃棄済み", "物理破壊（破砕・裁断）", "Admin Boss")
    head = events(session)[-2]
    assert rows[-2] == [f"監査証跡：出力時点の最新イベント #{head.seq} {head.hash}"]
    (tmp_path / "register.pdf").write_bytes(c.get("/desk/records/media-register.pdf").data)
    pdf = pdf_text(tmp_path / "register.pdf")
    assert "媒体管理台帳" in pdf and usb.asset_tag in pdf and "物理破壊" in pdf
    head = events(session)[-2]  # the head when the PDF was made
    *_, chain, verify, _page = [ln.strip() for ln in pdf.splitlines() if ln.strip()]  # the page number is last
    assert chain == f"監査証跡：出力時点の最新イベント #{head.seq} {head.hash}"
    assert verify == "照合方法：flask --app app audit verify"
