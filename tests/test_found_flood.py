"""Strangers' scans cannot flood the desk: one counted entry per label, messages kept, several cleared at once."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from tests.helpers import EN, NOW, client_for, count, events, label_token, post, reread
from tracker.models import Event, FoundReport


def test_a_label_scanned_again_and_again_is_one_counted_entry_and_one_audit_line(app, session, make_item,
                                                                                 frozen_clock):
    item = make_item()
    token = label_token(session, item)
    stranger = app.test_client()
    for minute in range(20):
        frozen_clock["now"] = NOW + timedelta(minutes=minute)
        assert stranger.get(f"/S/{token}", headers=EN).status_code == 200
    reread(session)
    reports = list(session.scalars(select(FoundReport)))
    assert [(r.scans, r.at, r.last_at) for r in reports] == [(20, NOW, NOW + timedelta(minutes=19))]
    assert len(events(session, "found_scan")) == 1
    frozen_clock["now"] = NOW + timedelta(minutes=19 + 61)  # an hour after the last scan: a new entry
    stranger.get(f"/S/{token}", headers=EN)
    assert count(session, FoundReport) == 2


def test_a_head_request_records_nothing(app, session, make_item):
    token = label_token(session, make_item())
    assert app.test_client().head(f"/S/{token}").status_code == 200
    assert count(session, FoundReport) == 0 and count(session, Event, Event.action == "found_scan") == 0


def test_scans_never_push_a_finders_message_off_the_board(app, session, make_item, make_user, frozen_clock):
    lost = make_item(name="Lost laptop")
    others = [make_item(name=f"other {n}") for n in range(120)]
    tokens = [label_token(session, item) for item in others]
    desk = client_for(app, make_user("security"))
    stranger = app.test_client()
    csrf = stranger.get(f"/S/{label_token(session, lost)}", headers=EN)
    assert csrf.status_code == 200
    post(stranger, f"/S/{label_token(session, lost)}/found", {"message": "On the Yamanote line, call 090"},
         page=f"/S/{label_token(session, lost)}")
    for n, token in enumerate(tokens):  # a script walks through many labels later
        frozen_clock["now"] = NOW + timedelta(minutes=1, seconds=n)
        stranger.get(f"/S/{token}", headers=EN)
    board = desk.get("/desk/").get_data(as_text=True)
    assert "On the Yamanote line, call 090" in board
    assert board.count('name="item"') == 100  # the scans list is bounded; the message is not among them


def test_the_desk_clears_several_reports_at_once_with_one_note(app, session, make_item, make_user):
    one, two = make_item(), make_item()
    desk = client_for(app, make_user("security"))
    stranger = app.test_client()
    for item in (one, two):
        stranger.get(f"/S/{label_token(session, item)}", headers=EN)
    post(stranger, f"/S/{label_token(session, one)}/found", {"message": "found it at the station"},
         page=f"/S/{label_token(session, one)}")
    reread(session)
    message = session.scalar(select(FoundReport).where(FoundReport.message.is_not(None)))
    resp = post(desk, "/desk/found", {"report": [str(message.id)], "item": [str(one.id), str(two.id)],
                                      "note": "Called the station; both are with the police"}, page="/desk/",
                follow=True)
    assert "3 report(s) marked handled." in resp.get_data(as_text=True)
    reread(session)
    handled = list(session.scalars(select(FoundReport)))
    assert len(handled) == 3 and all(r.handled_at and r.handled_note == "Called the station; both are with the police"
                                     for r in handled)
    assert len(events(session, "found_handled")) == 3
    assert "Found-item scans" not in desk.get("/desk/").get_data(as_text=True)


def test_staff_cannot_clear_the_desks_reports(app, session, make_item, make_user):
    item = make_item()
    staff = client_for(app, make_user())
    app.test_client().get(f"/S/{label_token(session, item)}", headers=EN)
    assert post(staff, "/desk/found", {"item": [str(item.id)]}).status_code == 403
    reread(session)
    assert session.scalar(select(FoundReport.handled_at)) is None


def test_a_finders_message_shows_on_the_items_own_row_of_the_board(app, session, make_item, make_user):
    staff, desk = make_user(), make_user("security")
    lost = make_item(name="Lost laptop")
    from tracker.custody import operations as custody

    custody.check_out(session, NOW, item=lost, holder=staff, actor=staff, due_at=NOW + timedelta(hours=8))
    session.commit()
    desk_client = client_for(app, desk)
    stranger = app.test_client()
    post(stranger, f"/S/{label_token(session, lost)}/found", {"message": "On the Yamanote line, call 090"},
         page=f"/S/{label_token(session, lost)}")
    board = desk_client.get("/desk/?fragment=1").get_data(as_text=True)  # what the refresh brings
    row = board[board.index(f">{lost.asset_tag}</a>"):]
    row = row[:row.index("</tr>")]
    assert "Finder's message" in row and "On the Yamanote line, call 090" in row


def test_a_signed_in_staff_members_scan_is_not_an_alert(app, session, make_item, make_user):
    """Staff scan labels all day (their own, a colleague's, an old label); none of it is a found-item alert."""
    from tracker.items import register as items_mod

    item, old = make_item(), make_item()
    old_token = label_token(session, old)
    items_mod.issue_label(session, NOW, old, None)
    session.commit()
    staff, desk = client_for(app, make_user()), client_for(app, make_user("security"))
    assert staff.get(f"/S/{label_token(session, item)}", headers=EN).status_code == 200
    assert staff.get(f"/S/{old_token}", headers=EN).status_code == 410
    assert desk.get(f"/S/{label_token(session, item)}", headers=EN).status_code == 200
    assert count(session, FoundReport) == 0 and events(session, "found_scan") == []
    board = desk.get("/desk/", headers=EN).get_data(as_text=True)
    assert "Found-item scans" not in board and 'data-kind="scan"' not in board


def test_a_finder_who_scans_and_writes_is_one_entry_cleared_at_once(app, session, make_item, make_user):
    item = make_item()
    token = label_token(session, item)
    desk = client_for(app, make_user("security"))
    stranger = app.test_client()
    post(stranger, f"/S/{token}/found", {"message": "Found it on the 8:12 train"}, page=f"/S/{token}")
    stranger.get(f"/S/{token}", headers=EN)  # and scanned it again later
    board = desk.get("/desk/?fragment=1", headers=EN).get_data(as_text=True)
    side = board.split('data-part="board-side"', 1)[1]
    assert side.count(f">{item.asset_tag}</a>") == 1 and 'data-kind="message"' in side
    reread(session)
    message = session.scalar(select(FoundReport).where(FoundReport.message.is_not(None)))
    resp = post(desk, "/desk/found", {"report": [str(message.id)]}, page="/desk/", follow=True)
    assert "2 report(s) marked handled." in resp.get_data(as_text=True)
    reread(session)
    assert count(session, FoundReport, FoundReport.handled_at.is_(None)) == 0
    assert "Found-item scans" not in desk.get("/desk/", headers=EN).get_data(as_text=True)
