"""The take-out ledger (持ち出し管理台帳) of a month: one line per take-out with the fields auditors read, as .xlsx
(opened with openpyxl), CSV (read as Excel reads it) and PDF (read with pdftotext); each export is an audit event
and carries the audit trail's hashes at both ends of the month."""

from __future__ import annotations

import csv
import io
import json

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.helpers import client_for, events, flashes, handed_over, pdf_text, reread, tokyo
from tracker.custody import approvals
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import flags, sweep
from tracker.models import DataClass, Event, Kind

HYPERLINK = '=HYPERLINK("http://evil.example/","x")'


@pytest.fixture
def month(session, make_user, make_item):
    """June 2026: a USB drive out (with a witness) and back erased; a laptop approved by the desk, then handed over and received
    back; a folder of another department lost, with its incident; and a take-out in July that is not June's."""
    hanako = make_user(name="山田 花子", language="en")
    jiro = make_user(name="Jiro Suzuki")
    desk = make_user("security", name="Desk Officer", language="en")
    usb = make_item(Kind.usb, name="顧客リスト USB", department="営業部", data_class=DataClass.personal,
                    people_count=30, encrypted=True, encryption_method="BitLocker To Go")
    laptop = make_item(Kind.laptop, name="Sales laptop", department="営業部", data_class=DataClass.my_number)
    folder = make_item(Kind.folder, name="Forms", department="HR")
    c1 = custody.check_out(session, tokyo(1, 10), item=usb, holder=hanako, actor=hanako, due_at=tokyo(1, 18),
                           purpose=HYPERLINK, destination="大阪支店", witness=jiro)
    custody.return_item(session, tokyo(1, 17), item=usb, actor=hanako, erasure="erased", erasure_method="format")
    req = approvals.request_checkout(session, tokyo(2, 10), item=laptop, holder=hanako, due_at=tokyo(4, 18),
                                   purpose="出張", destination="福岡", reason="trip",
                                   policy=Policy(approval_required=True), handling_ack=True)
    approvals.decide_request(session, tokyo(2, 11), request=req, actor=desk, approve=True)
    c2 = req.checkout_id
    c3 = handed_over(session, tokyo(3, 9), laptop, hanako, jiro)
    custody.return_item(session, tokyo(4, 17), item=laptop, actor=desk)
    c4 = custody.check_out(session, tokyo(5, 10), item=folder, holder=jiro, actor=jiro, due_at=tokyo(5, 18))
    flagged = sweep.sweep(session, tokyo(5, 19), Policy()).flags
    incident = flags.mark_lost(session, tokyo(5, 20), flagged[0], desk, "lost on the train")
    session.commit()
    july = custody.check_out(session, tokyo(1, 10, month=7), item=usb, holder=hanako, actor=hanako,
                             due_at=tokyo(1, 18, month=7))
    session.commit()
    return {"desk": desk, "hanako": hanako, "jiro": jiro, "usb": usb, "laptop": laptop, "folder": folder,
            "ids": [c1.id, c2, c3.id, c4.id], "july": july.id, "incident": incident.id}


def _june_ends(session):
    reread(session)
    june = list(session.scalars(select(Event).where(Event.at >= tokyo(1, 0), Event.at < tokyo(1, 0, month=7))
                                .order_by(Event.seq)))
    return june[0], june[-1]


def _sheet(resp) -> list[list]:
    assert resp.status_code == 200, resp.status_code
    ws = load_workbook(io.BytesIO(resp.data)).active
    return [[c.value for c in row] for row in ws.iter_rows()]


def test_the_xlsx_ledger_has_a_line_per_take_out_with_the_auditors_fields(app, session, month, frozen_clock):
    frozen_clock["now"] = tokyo(1, 9, month=8)
    dc = client_for(app, month["desk"])
    rows = _sheet(dc.get("/desk/records/ledger.xlsx?month=2026-06&names=1"))
    header = rows[0]
    assert header[:5] == ["Take-out number", "Asset tag", "Kind", "Item name", "Personal data class"]
    lines = [dict(zip(header, r, strict=True)) for r in rows[1:] if isinstance(r[0], int)]
    assert [ln["Take-out number"] for ln in lines] == month["ids"]  # June only, oldest first
    usb, approved, handed, lost = lines
    assert (usb["Asset tag"], usb["Kind"], usb["Item name"], usb["Personal data class"], usb["Number of people"],
            usb["Encryption"]) == (month["usb"].asset_tag, "USB drive", "顧客リスト USB", "Personal data", 30,
                                   "encrypted (BitLocker To Go)")
    assert (usb["Holder's name"], usb["Department"], usb["Destination"]) == ("山田 花子", "営業部", "大阪支店")
    assert (usb["Witness"], approved["Witness"]) == ("Jiro Suzuki", None)  # the two-person rule's second person
    assert (usb["Taken out at"], usb["Due back"], usb["Returned at"], usb["Return checked by"]) == (
        "2026-06-01 10:00", "2026-06-01 18:00", "2026-06-01 17:00", "山田 花子")
    assert (usb["Erasure checked at"], usb["Erasure method"], usb["Erasure checked by"], usb["Status"]) == (
        "2026-06-01 17:00", "Formatted", "山田 花子", "Returned")
    assert usb["Purpose"] == HYPERLINK  # shown as typed, stored as text, not as a formula
    assert (approved["Approved by"], approved["Approved at"], approved["Personal data class"]) == (
        "Desk Officer", "2026-06-02 11:00", "My Number (specific personal information)")
    assert (approved["Hand-over"], approved["Status"], approved["Return checked by"]) == (
        "to Jiro Suzuki", "Handed over", None)
    assert (handed["Holder's name"], handed["Hand-over"], handed["Return checked by"], handed["Approved by"]) == (
        "Jiro Suzuki", "from 山田 花子", "Desk Officer", None)
    assert (lost["Status"], lost["Incident"], lost["Department"]) == ("Lost", f"#{month['incident']}", "HR")
    # The formula-like purpose is a string cell, not a formula.
    ws = load_workbook(io.BytesIO(dc.get("/desk/records/ledger.xlsx?month=2026-06").data)).active
    purpose_col = [c.value for c in ws[1]].index("Purpose") + 1
    assert ws.cell(row=2, column=purpose_col).data_type == "s"


def test_the_ledger_ends_with_the_trails_hashes_and_is_an_audit_event(app, session, month, frozen_clock):
    frozen_clock["now"] = tokyo(1, 9, month=8)
    dc = client_for(app, month["desk"])
    rows = _sheet(dc.get("/desk/records/ledger.xlsx?month=2026-06&department=営業部"))
    first, last = _june_ends(session)
    notes = [r[0] for r in rows if isinstance(r[0], str) and not r[1]]
    assert notes[-2:] == [f"Audit trail, first event of the period: #{first.seq} {first.hash}",
                          f"Audit trail, last event of the period: #{last.seq} {last.hash}"]
    assert "Department: 営業部" in notes
    assert len([r for r in rows[1:] if isinstance(r[0], int)]) == 3  # the HR folder is not in it
    export = events(session, "export")[-1]
    data = json.loads(export.data)
    assert (data["export"], data["month"], data["department"], data["rows"]) == ("ledger.xlsx", "2026-06", "営業部", 3)
    assert (data["first_seq"], data["first_hash"], data["last_seq"], data["last_hash"]) == (
        first.seq, first.hash, last.seq, last.hash)
    assert export.actor_id == month["desk"].id


def test_a_month_without_events_carries_the_head(app, session, month, frozen_clock):
    frozen_clock["now"] = tokyo(1, 9, month=8)
    dc = client_for(app, month["desk"])
    rows = _sheet(dc.get("/desk/records/ledger.xlsx?month=2026-05"))
    *_, head, export = events(session)  # the head when the file was made, then the export's own event
    assert export.action == "export"
    assert not [r for r in rows[1:] if isinstance(r[0], int)]
    notes = [r[0] for r in rows if isinstance(r[0], str) and not r[1]]
    assert notes[-2] == ("Audit trail: no event in this period; the trail's last event at export: "
                         f"#{head.seq} {head.hash}")
    data = json.loads(events(session, "export")[-1].data)
    assert data["chain_head"] is True and data["rows"] == 0


def test_the_csv_reads_as_excel_reads_it_in_japanese(app, session, month, frozen_clock):
    frozen_clock["now"] = tokyo(1, 9, month=8)
    dc = client_for(app, month["desk"])
    dc.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    month["desk"].language = None
    session.commit()
    resp = dc.get("/desk/records/ledger.csv?month=2026-06")
    assert resp.status_code == 200 and resp.mimetype == "text/csv"
    assert resp.data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads UTF-8
    text = resp.data.decode("utf-8-sig")
    text.encode("cp932")  # every character survives "save as CSV (Shift_JIS)"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0][:4] == ["持出番号", "管理番号", "種別", "個人情報の区分"]
    assert {"承認者", "承認日時", "持出日時", "返却期限", "返却日時", "返却確認者", "引継ぎ", "消去確認日時", "消去方法",
            "消去確認者", "状態", "インシデント", "暗号化", "人数", "氏名", "部署", "持ち出し目的",
            "持ち出し先"} <= set(rows[0])
    line = dict(zip(rows[0], rows[1], strict=True))
    assert (line["管理番号"], line["種別"], line["暗号化"], line["消去方法"], line["状態"]) == (
        month["usb"].asset_tag, "USBメモリ", "あり (BitLocker To Go)", "フォーマット", "返却")
    assert line["持出日時"] == "2026/06/01 10:00"
    assert line["持ち出し目的"] == "'" + HYPERLINK  # neutralised: Excel shows it as text
    assert "名称" not in rows[0]  # names only when asked for
    assert rows[-1][0].startswith("監査証跡　期間の最後のイベント：#")


def test_the_pdf_prints_every_take_out_and_ends_with_the_hashes(app, session, month, frozen_clock, tmp_path):
    frozen_clock["now"] = tokyo(1, 9, month=8)
    dc = client_for(app, month["desk"])
    resp = dc.get("/desk/records/ledger.pdf?month=2026-06")
    assert resp.status_code == 200 and resp.mimetype == "application/pdf"
    (tmp_path / "ledger.pdf").write_bytes(resp.data)
    text = pdf_text(tmp_path / "ledger.pdf")
    first, last = _june_ends(session)
    assert "Take-out ledger" in text and "Period: 2026-06-01 to 2026-06-30" in text
    for tag in (month["usb"].asset_tag, month["laptop"].asset_tag, month["folder"].asset_tag):
        assert tag in text
    assert "山田 花子" in text
    # Printed as written (a table cell may wrap it): the start of the formula text and its end, nothing added.
    assert '=HYPERLINK("http://evil.' in text and '","x")' in text and "'=HYPERLINK" not in text
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    assert lines[-2].startswith(f"Audit trail, last event of the period: #{last.seq} ")
    assert last.hash[:40] in "".join(lines[-2:]).replace(" ", "")
    assert f"#{first.seq} " in text


@pytest.mark.parametrize("query", ["month=2026-13", "month=0999-01"])
def test_a_bad_month_is_refused_with_a_message(app, month, query):
    dc = client_for(app, month["desk"])
    resp = dc.get("/desk/records/ledger.xlsx?" + query)
    assert resp.status_code == 302
    assert [c for c, _ in flashes(dc.get(resp.headers["Location"]))] == ["error"]


def test_an_unknown_format_is_not_found(app, month):
    assert client_for(app, month["desk"]).get("/desk/records/ledger.docx?month=2026-06").status_code == 404


def test_a_take_out_approved_in_two_steps_names_both_approvers(app, session, make_user, make_item, make_department,
                                                               frozen_clock):
    from tracker.custody import rules
    from tracker.models import Approval

    admin, desk = make_user("admin", name="Ada Admin"), make_user("security", name="Desk Officer", language="en")
    mori = make_user(name="Mori Manager")
    sales = make_department("Sales", managers=[mori])
    hanako = make_user(name="Hanako Yamada", department_id=sales.id)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.sensitive)
    rules.save(session, tokyo(1, 9), rules.Rule(kind="laptop", data_class="sensitive", approval=Approval.manager_desk,
                                                handling_ack=True), actor=admin)
    req = approvals.request_checkout(session, tokyo(2, 10), item=laptop, holder=hanako, due_at=tokyo(2, 18),
                                     purpose="Audit", destination="Kobe", reason="", policy=Policy(),
                                     handling_ack=True)
    approvals.decide(session, tokyo(2, 10, 5), request=req, actor=mori, approve=True, policy=Policy())
    approvals.decide(session, tokyo(2, 10, 9), request=req, actor=desk, approve=True, policy=Policy())
    session.commit()
    frozen_clock["now"] = tokyo(1, 9, month=7)
    rows = _sheet(client_for(app, desk).get("/desk/records/ledger.xlsx?month=2026-06"))
    (line,) = [dict(zip(rows[0], r, strict=True)) for r in rows[1:] if isinstance(r[0], int)]
    assert (line["Approved by"], line["Approved at"]) == ("Mori Manager → Desk Officer", "2026-06-02 10:09")


def test_a_month_is_the_readers_offices_month_and_the_file_names_its_zone(app, session, make_site, make_user,
                                                                           make_item, frozen_clock):
    """23:30 on 30 June in Bangkok is 01:30 on 1 July in Tokyo: the take-out is June's for the desk at Bangkok, which
    reads its time as 23:30, and July's for the main office's desk; each file says which zone its times are in."""
    frozen_clock["now"] = tokyo(1, 9, month=8)
    bangkok = make_site("Bangkok", timezone="Asia/Bangkok")
    there, here = make_user("security", language="en"), make_user("security", language="en")
    there.site = bangkok
    usb = make_item(Kind.usb)
    custody.check_out(session, tokyo(1, 1, 30, month=7), item=usb, holder=there, actor=there,
                      due_at=tokyo(1, 18, month=7))
    session.commit()

    def ledger(desk, month: str) -> tuple[dict[str, str], list[str]]:
        rows = list(csv.reader(io.StringIO(client_for(app, desk).get(f"/desk/records/ledger.csv?month={month}")
                                           .data.decode("utf-8-sig"))))
        blank = rows.index([])
        found = {r[rows[0].index("Asset tag")]: r[rows[0].index("Taken out at")] for r in rows[1:blank]}
        return found, [r[0] for r in rows[blank + 1:]]

    june, notes = ledger(there, "2026-06")
    assert june == {usb.asset_tag: "2026-06-30 23:30"}
    assert any(n.endswith("times in Asia/Bangkok") for n in notes), notes
    assert ledger(there, "2026-07")[0] == {}
    assert ledger(here, "2026-06")[0] == {}
    july, notes = ledger(here, "2026-07")
    assert july == {usb.asset_tag: "2026-07-01 01:30"}
    assert any(n.endswith("times in Asia/Tokyo") for n in notes), notes
