"""CSV import: the rules without HTTP (decode, check, run), and the upload / preview / confirm pages.

The rules run on PostgreSQL too (marked postgres): the import's one transaction, tags unique in the database,
the look-ups of tags and bags. The pages run on SQLite.
"""

from __future__ import annotations

import html as htmllib
import re
from io import BytesIO

import pytest
from sqlalchemy import func, select

from tests.helpers import NOW, count, csrf_from, sign_in
from tracker.errors import InvalidInput
from tracker.items import csv_import
from tracker.models import DataClass, Department, Event, Item, Kind, LabelToken

JAPANESE = (
    "管理番号,種別,名称,部署,個人情報,暗号化,人数,備考\r\n"
    "LT-0101,ノートPC,営業用ノートPC,営業部,個人情報,はい,120,貸出用\r\n"
    "USB-0101,USBメモリ,人事USBメモリ,人事部,要配慮,いいえ,30,\r\n"
    ",書類,顧客書類フォルダ,経理部,なし,,,\r\n"
)


@pytest.fixture(autouse=True)
def departments_in_use(make_department):
    """The departments the files name exist as records (an unknown name is an error, see below)."""
    return {name: make_department(name) for name in ("営業部", "人事部", "経理部", "Sales")}


def by_tag(session, tag):
    return session.scalar(select(Item).where(Item.asset_tag == tag))


def errors_of(preview) -> list[tuple[int, str]]:
    return [(e.line, e.message % e.params if e.params else e.message) for e in preview.errors]


def import_bytes(session, raw: bytes):
    """decode + check + run, as the CLI and the pages do; returns (preview, created)."""
    text, encoding = csv_import.decode(raw)
    preview = csv_import.check(session, text, encoding)
    created = []
    if preview.ok:
        created = [session.get(Item, i) for i in csv_import.run(session, NOW, preview, actor=None, source="test")]
        session.commit()
    return preview, created


# --- good files ---------------------------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize(("encode", "expected"), [
    (lambda t: t.encode("utf-8"), "utf-8-sig"),
    (lambda t: b"\xef\xbb\xbf" + t.encode("utf-8"), "utf-8-sig"),
    (lambda t: t.encode("cp932"), "cp932"),
], ids=["utf8", "utf8-bom", "shift_jis"])
def test_japanese_file_imports_in_every_excel_encoding(session, encode, expected):
    raw = encode(JAPANESE)
    text, encoding = csv_import.decode(raw)
    assert encoding == expected
    assert text.startswith("管理番号")  # no BOM left in the first header
    before = count(session, Item)
    preview, created = import_bytes(session, raw)
    assert errors_of(preview) == []
    assert [line for line, _ in preview.rows] == [2, 3, 4]
    assert len(created) == 3
    assert count(session, Item) == before + 3

    laptop = by_tag(session, "LT-0101")
    assert (laptop.kind, laptop.name, laptop.department) == (Kind.laptop, "営業用ノートPC", "営業部")
    assert (laptop.data_class, laptop.encrypted, laptop.people_count, laptop.notes) == (
        DataClass.personal, True, 120, "貸出用")
    usb = by_tag(session, "USB-0101")
    assert (usb.kind, usb.data_class, usb.encrypted, usb.people_count) == (Kind.usb, DataClass.sensitive, False, 30)
    folder = session.scalar(select(Item).where(Item.kind == Kind.folder))
    assert folder.asset_tag == "DF-0001" and folder.name == "顧客書類フォルダ" and folder.data_class == DataClass.none
    # every imported item has a label and a creation event
    for item in (laptop, usb, folder):
        assert session.scalar(select(LabelToken).where(LabelToken.item_id == item.id)) is not None
        assert session.scalar(select(func.count(Event.id)).where(Event.item_id == item.id,
                                                                   Event.action == "item_created")) == 1


@pytest.mark.postgres
def test_english_headers_and_quoted_cells(session):
    text = ('asset_tag,kind,name,serial,department,data_class,encrypted,people_count,notes\n'
            'lt-7,laptop,"Dell, 14 inch",SN 1,Sales,sensitive,yes,5,"said ""keep it"""\n')
    preview, created = import_bytes(session, text.encode())
    assert errors_of(preview) == []
    item = by_tag(session, "LT-7")  # tags are upper-cased
    assert item.name == "Dell, 14 inch" and item.notes == 'said "keep it"' and item.encrypted
    assert item.data_class == DataClass.sensitive and item.serial == "SN 1"


@pytest.mark.postgres
def test_bag_and_its_contents_in_one_file(session):
    # the contents come before the bag in the file: the bag is created first anyway
    text = ("管理番号,種別,名称,収納バッグ\n"
            "LT-0201,ノートPC,バッグ内PC,bg-0201\n"
            "USB-0201,USBメモリ,バッグ内USB,BG-0201\n"
            "BG-0201,バッグ,持出しバッグ,\n"
            "DF-0201,書類,単独フォルダ,\n")
    before = count(session, Item)
    preview, created = import_bytes(session, text.encode("cp932"))
    assert errors_of(preview) == []
    assert count(session, Item) == before + 4
    bag = by_tag(session, "BG-0201")
    assert bag.kind == Kind.bag
    assert sorted(i.asset_tag for i in bag.contents) == ["LT-0201", "USB-0201"]
    assert by_tag(session, "DF-0201").bag_id is None


@pytest.mark.postgres
def test_contents_may_name_a_bag_already_registered(session, make_item):
    bag = make_item(Kind.bag, asset_tag="BG-9")
    preview, created = import_bytes(session, b"kind,name,bag\nusb,Stick,BG-9\n")
    assert errors_of(preview) == []
    assert by_tag(session, created[0].asset_tag).bag_id == bag.id


@pytest.mark.postgres
def test_automatic_tags_skip_tags_taken_in_the_file_and_database(session, make_item):
    make_item(Kind.laptop)  # LT-0001
    text = "管理番号,種別,名称\n,ノートPC,auto one\nLT-0005,ノートPC,explicit\n,ノートPC,auto two\n"
    preview, created = import_bytes(session, text.encode())
    assert errors_of(preview) == []
    session.rollback()
    tags = {i.name: i.asset_tag for i in session.scalars(select(Item))}
    assert tags["explicit"] == "LT-0005"
    assert {tags["auto one"], tags["auto two"]} == {"LT-0006", "LT-0007"}


# --- broken files: a clear error with the right line, and nothing imported ---------------------------------------


@pytest.mark.postgres
@pytest.mark.parametrize("raw", [
    b"kind,name\nlaptop,\x80\x81\xff\xfe\n",
    b"\x80\x81\xff\xfe\x80\x81\xff\xfe",
    "種別,名称\nノートPC,営業用\n".encode("utf-16"),
    "kind,name\nlaptop,Dell\n".encode("utf-16"),
    "kind,name\nlaptop,Dell\n".encode("utf-16-le"),
], ids=["bad-bytes-in-row", "bad-bytes", "utf16-japanese", "utf16-ascii", "utf16-le-no-bom"])
def test_wrong_encoding_is_refused(session, raw):
    before = count(session, Item)
    with pytest.raises(InvalidInput) as exc:
        csv_import.decode(raw)
    assert "neither UTF-8 nor Shift_JIS" in str(exc.value)
    assert count(session, Item) == before


@pytest.mark.postgres
@pytest.mark.parametrize(("raw", "line", "message"), [
    (b"", None, "The file is empty."),
    (b"  \r\n\r\n", None, "The file is empty."),
    (b"\xef\xbb\xbf", 1, "The file is empty."),
    (b"kind,name\n", 2, "The file has no rows to import."),
    ("種別,名称\r\n".encode("cp932"), 2, "The file has no rows to import."),
    (b"kind,name\n,\n\n", 2, "The file has no rows to import."),
    (b"name,department\nDell,Sales\n", 1, "Missing columns: kind."),
    (b"kind,department\nlaptop,Sales\n", 1, "Missing columns: name."),
    (b"laptop,Dell\nusb,Stick\n", 1, "Missing columns: kind, name."),
    (b"kind,name,colour\nlaptop,Dell,red\n", 1, "Unknown columns: colour."),
], ids=["empty", "blank", "bom-only", "header-only", "header-only-sjis", "header-and-blank-rows",
        "no-kind", "no-name", "no-header", "unknown-column"])
def test_file_level_errors(session, raw, line, message):
    before = count(session, Item)
    if line is None:
        with pytest.raises(InvalidInput) as exc:
            csv_import.decode(raw)
        assert str(exc.value) == message
    else:
        text, encoding = csv_import.decode(raw)
        preview = csv_import.check(session, text, encoding)
        assert not preview.ok
        assert len(preview.errors) == 1
        got_line, got = errors_of(preview)[0]
        assert got_line == line and got.startswith(message)
        with pytest.raises(csv_import.ImportFailed):
            csv_import.run(session, NOW, csv_import.check(session, text), actor=None)
    assert count(session, Item) == before


@pytest.mark.postgres
def test_every_bad_row_is_reported_with_its_line_and_nothing_imported(session, make_item):
    make_item(Kind.usb, asset_tag="USB-0500")
    text = ("asset_tag,kind,name,data_class,encrypted,people_count,bag\n"   # 1
            "LT-1,laptop,good one,none,,,\n"                                # 2
            "LT-2,tablet,unknown kind,none,,,\n"                            # 3
            "LT-1,laptop,duplicate of line 2,none,,,\n"                     # 4
            "\n"                                                            # 5 (blank: skipped, still counted)
            "usb-0500,usb,already in the database,none,,,\n"                # 6
            "LT-3,laptop,,none,,,\n"                                        # 7 name missing
            "LT-4,laptop,bad class,secret,,,\n"                             # 8
            "LT-5,laptop,bad bool,none,maybe,,\n"                           # 9
            "LT-6,laptop,bad count,none,,many,\n"                           # 10
            "LT-7,laptop,no such bag,none,,,BG-404\n"                       # 11
            "LT 8,laptop,bad tag,none,,,\n"                                 # 12
            "LT-9,laptop," + "x" * 201 + ",none,,,\n"                       # 13
            "LT-10,laptop,too many cells,none,,,,extra\n"                   # 14
            "LT-11,laptop,good too,personal,yes,3,\n")                      # 15
    before = count(session, Item)
    preview = csv_import.check(session, text)
    got = errors_of(preview)
    lines = [line for line, _ in got]
    assert lines == [3, 4, 6, 7, 8, 9, 10, 11, 12, 13, 14]
    messages = dict(got)
    assert messages[3].startswith("Kind must be one of: laptop, usb, folder, bag, other")
    assert messages[4] == "The asset tag LT-1 also appears on line 2."
    assert messages[6] == "The asset tag USB-0500 is already in use."
    assert messages[7] == "Name is required."
    assert messages[8].startswith("Personal data must be one of")
    assert messages[9] == "Encrypted must be yes or no."
    assert messages[10] == "Number of people must be a whole number."
    assert messages[11] == "There is no bag with the tag BG-404."
    assert "letters A-Z" in messages[12]
    assert messages[13] == "Name is too long (at most 200 characters)."
    assert messages[14] == "The row has more cells than there are columns."
    with pytest.raises(csv_import.ImportFailed):
        csv_import.run(session, NOW, csv_import.check(session, text), actor=None)
    session.rollback()
    assert count(session, Item) == before


@pytest.mark.postgres
def test_duplicate_tags_differing_only_in_case(session):
    preview = csv_import.check(session, "管理番号,種別,名称\nbg-1,バッグ,a\nBG-1,バッグ,b\n")
    assert errors_of(preview) == [(3, "The asset tag BG-1 also appears on line 2.")]


@pytest.mark.postgres
def test_bag_column_naming_an_item_that_is_not_a_bag(session):
    text = "asset_tag,kind,name,bag\nLT-1,laptop,laptop,\nUSB-1,usb,stick,LT-1\n"
    before = count(session, Item)
    assert errors_of(csv_import.check(session, text)) == [(3, "There is no bag with the tag LT-1.")]
    assert count(session, Item) == before


@pytest.mark.postgres
def test_bag_inside_a_bag_is_caught_by_the_dry_run(session):
    """The dry run must catch what the import would refuse, with the row's line number."""
    text = "asset_tag,kind,name,bag\nBG-1,bag,outer,\nBG-2,bag,inner,BG-1\n"
    before = count(session, Item)
    preview = csv_import.check(session, text)
    assert [line for line, _ in errors_of(preview)] == [3]
    assert "A bag cannot be put inside a bag." in errors_of(preview)[0][1]
    with pytest.raises(csv_import.ImportFailed):
        csv_import.run(session, NOW, csv_import.check(session, text), actor=None)
    session.rollback()
    assert count(session, Item) == before


@pytest.mark.postgres
def test_unterminated_quote_does_not_swallow_the_rows_after_it(session):
    """A quote left open on line 3 must not silently merge lines 3-5 into one item's name."""
    text = 'kind,name\nlaptop,first\nlaptop,"never closed\nusb,stick\nfolder,papers\n'
    before = count(session, Item)
    preview = csv_import.check(session, text)
    assert not preview.ok, f"imported {[d.name for _, d in preview.rows]!r} from 4 rows"
    assert preview.errors[0].line in (3, 5)
    with pytest.raises(csv_import.ImportFailed):
        csv_import.run(session, NOW, csv_import.check(session, text), actor=None)
    session.rollback()
    assert count(session, Item) == before


@pytest.mark.postgres
def test_a_tag_taken_after_the_check_leaves_nothing_imported(session, make_item):
    """All or nothing when the register changed between the check and the write (another admin was quicker)."""
    text = "管理番号,種別,名称\n,ノートPC,a\nLT-0100,ノートPC,b\n,ノートPC,c\n"
    preview = csv_import.check(session, text)
    assert preview.ok
    make_item(Kind.laptop, asset_tag="LT-0100")  # taken meanwhile
    before = count(session, Item)
    with pytest.raises(csv_import.ImportFailed) as exc:
        csv_import.run(session, NOW, preview, actor=None)
    assert "LT-0100" in str(exc.value)
    session.rollback()
    assert count(session, Item) == before


# --- through HTTP -------------------------------------------------------------------------------------------------


def upload(client, raw: bytes, filename="items.csv"):
    page = client.get("/admin/items/import")
    assert page.status_code == 200
    return client.post("/admin/items/import", data={
        "csrf_token": csrf_from(page.get_data(as_text=True)), "file": (BytesIO(raw), filename)},
        content_type="multipart/form-data")


def preview_text(html: str) -> str:
    """What a browser would send back from the hidden textarea."""
    match = re.search(r'<textarea name="text" hidden>(.*?)</textarea>', html, re.S)
    assert match, "no import button on the preview"
    return htmllib.unescape(match.group(1))


def error_rows(html: str) -> list[tuple[int, str]]:
    return [(int(a), htmllib.unescape(b)) for a, b in re.findall(r"<tr><td>(\d+)</td><td>([^<]*)</td></tr>", html)]


def test_upload_shows_dry_run_preview_then_confirm_imports(admin_client, session):
    raw = JAPANESE.encode("cp932")
    before = count(session, Item)
    resp = upload(admin_client, raw)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 200
    assert "3 row(s) are ready to import." in page
    assert "営業用ノートPC" in page and "人事USBメモリ" in page and "LT-0101" in page
    assert "Import 3 items" in page
    assert count(session, Item) == before  # the dry run imports nothing

    text = preview_text(page)
    confirm = admin_client.post("/admin/items/import", data={"csrf_token": csrf_from(page), "confirm": "1",
                                                             "text": text})
    assert confirm.status_code == 302
    listing = admin_client.get(confirm.headers["Location"]).get_data(as_text=True)
    assert "3 items were imported." in listing
    assert count(session, Item) == before + 3
    assert by_tag(session, "LT-0101").department == "営業部"
    # the confirm cannot be replayed into duplicates
    again = admin_client.post("/admin/items/import", data={"csrf_token": csrf_from(page), "confirm": "1",
                                                           "text": text})
    assert again.status_code == 400
    assert "already in use" in again.get_data(as_text=True)
    assert count(session, Item) == before + 3


def test_preview_round_trip_keeps_awkward_values(admin_client, session):
    name = 'Bag </textarea><b>bold</b> & "quoted"'
    raw = ('kind,name,notes\nbag,"' + name.replace('"', '""') + '","line one\nline two"\n').encode()
    page = upload(admin_client, raw).get_data(as_text=True)
    assert "<b>bold</b>" not in page
    confirm = admin_client.post("/admin/items/import", data={"csrf_token": csrf_from(page), "confirm": "1",
                                                             "text": preview_text(page)})
    assert confirm.status_code == 302
    session.rollback()
    item = session.scalar(select(Item).where(Item.kind == Kind.bag))
    assert item.name == name and item.notes.replace("\r\n", "\n") == "line one\nline two"


def test_upload_with_bad_rows_lists_them_all_and_imports_nothing(admin_client, session):
    raw = ("管理番号,種別,名称\n"
           "LT-1,ノートPC,good\n"
           "LT-2,タブレット,bad kind\n"
           "LT-3,ノートPC,good\n"
           "LT-1,ノートPC,duplicate\n"
           "LT-4,ノートPC,\n").encode()
    before = count(session, Item)
    resp = upload(admin_client, raw)
    page = resp.get_data(as_text=True)
    assert resp.status_code == 400
    assert "3 problem(s) found. Nothing will be imported until the file is fixed." in page
    rows = error_rows(page)
    assert [line for line, _ in rows] == [3, 5, 6]
    assert rows[1][1] == "The asset tag LT-1 also appears on line 2."
    assert rows[2][1] == "Name is required."
    assert '<textarea name="text"' not in page  # no import button
    assert count(session, Item) == before


def test_confirm_with_tampered_text_is_checked_again(admin_client, session):
    page = admin_client.get("/admin/items/import").get_data(as_text=True)
    resp = admin_client.post("/admin/items/import", data={"csrf_token": csrf_from(page), "confirm": "1",
                                                          "text": "kind,name\nlaptop,ok\nspaceship,bad\n"})
    assert resp.status_code == 400
    html = resp.get_data(as_text=True)
    assert "Nothing was imported" in html
    assert [line for line, _ in error_rows(html)] == [3]
    assert count(session, Item) == 0


@pytest.mark.parametrize("raw", [b"", b"\x80\x81\xff\xfe\x80\x81", "kind,name\nlaptop,x\n".encode("utf-16")],
                         ids=["empty", "bad-bytes", "utf16"])
def test_upload_of_unreadable_file_says_so(admin_client, session, raw):
    resp = upload(admin_client, raw)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert ("The file is empty." in page) or ("neither UTF-8 nor Shift_JIS" in page)
    assert 'class="flash flash-error"' in page
    assert count(session, Item) == 0


def test_upload_without_file_or_token_is_refused(admin_client, session):
    page = admin_client.get("/admin/items/import").get_data(as_text=True)
    no_file = admin_client.post("/admin/items/import", data={"csrf_token": csrf_from(page)},
                                content_type="multipart/form-data")
    assert '<p class="error">This field is required.</p>' in no_file.get_data(as_text=True)
    assert "ready to import" not in no_file.get_data(as_text=True)
    no_token = admin_client.post("/admin/items/import", data={"file": (BytesIO(b"kind,name\nusb,x\n"), "a.csv")},
                                 content_type="multipart/form-data")
    assert no_token.status_code == 400
    forged = admin_client.post("/admin/items/import", data={"confirm": "1", "text": "kind,name\nusb,x\n"})
    assert forged.status_code == 400
    assert count(session, Item) == 0


def test_staff_cannot_import(client, make_user, session):
    staff = make_user(language="en")
    sign_in(client, staff.email)
    assert client.get("/admin/items/import").status_code == 403
    page = client.get("/account").get_data(as_text=True)
    resp = client.post("/admin/items/import", data={"csrf_token": csrf_from(page), "confirm": "1",
                                                    "text": "kind,name\nusb,x\n"})
    assert resp.status_code == 403
    assert count(session, Item) == 0


# --- departments are records --------------------------------------------------------------------------------------

@pytest.mark.postgres
def test_department_names_map_to_records_after_trimming_and_nfkc(session, make_department, departments_in_use):
    make_department("R&D 2課")
    text = "kind,name,department\nlaptop,Trimmed,  営業部 \nusb,Full width,Ｒ＆Ｄ　２課\n"
    preview, created = import_bytes(session, text.encode())
    assert errors_of(preview) == []
    assert [(i.name, i.department) for i in created] == [("Trimmed", "営業部"), ("Full width", "R&D 2課")]
    assert created[0].department_id == departments_in_use["営業部"].id
    assert count(session, Department) == 5  # no department was made by the import


@pytest.mark.postgres
def test_an_unknown_department_is_an_error_on_its_line_and_nothing_is_imported(session):
    before, depts = count(session, Item), count(session, Department)
    text = "kind,name,department\nlaptop,Fine,営業部\nlaptop,Typo,営業部部\nusb,None given,\n"
    preview, created = import_bytes(session, text.encode())
    assert errors_of(preview) == [(3, "There is no department called 営業部部.")]
    assert created == []
    assert (count(session, Item), count(session, Department)) == (before, depts)


def test_upload_names_the_unknown_department_in_the_preview(admin_client, session):
    before = count(session, Item)
    page = upload(admin_client, "kind,name,部署\nlaptop,Typo,営業\n".encode()).get_data(as_text=True)
    assert (2, "There is no department called 営業.") in error_rows(page)
    assert "Import 1 items" not in page
    assert count(session, Item) == before
