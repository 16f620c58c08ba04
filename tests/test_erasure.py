"""Erasure confirmed at return (消去確認): a USB drive with personal data comes back with a statement (erased and
how, nothing written) or waits for the desk's return inspection, and cannot go out again until it is done."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from tests.helpers import NOW, client_for, events, flashes, later, open_checkout, post, reread
from tracker.config import parse_kind_classes
from tracker.custody import approvals
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.errors import AwaitingInspection, ErasureRequired, InvalidInput, NotPermitted
from tracker.models import Checkout, DataClass, Erasure, Kind

pytestmark = pytest.mark.usefixtures("english")


@pytest.fixture
def staff(make_user):
    return make_user(name="Hanako Yamada", language="en")


@pytest.fixture
def desk(make_user):
    return make_user("security", name="Desk Officer", language="en")


def _out(session, item, holder, at=NOW):
    custody.check_out(session, at, item=item, holder=holder, actor=holder, due_at=at.replace(hour=10))
    session.commit()


def _last_checkout(session, item) -> Checkout:
    reread(session)
    return session.scalar(select(Checkout).where(Checkout.item_id == item.id).order_by(Checkout.id.desc()))


@pytest.mark.postgres
def test_a_usb_drive_with_personal_data_needs_a_statement_and_nothing_changes_without_one(session, staff, make_item):
    usb = make_item(Kind.usb, data_class=DataClass.personal)
    _out(session, usb, staff)
    with pytest.raises(ErasureRequired):
        custody.return_item(session, later(hours=1), item=usb, actor=staff)
    session.rollback()
    assert open_checkout(session, usb) is not None
    with pytest.raises(InvalidInput, match="how the data was erased"):
        custody.return_item(session, later(hours=1), item=usb, actor=staff, erasure="erased")
    session.rollback()
    assert open_checkout(session, usb) is not None


@pytest.mark.postgres
def test_erased_is_recorded_with_method_who_and_when(session, staff, make_item):
    usb = make_item(Kind.usb, data_class=DataClass.sensitive)
    _out(session, usb, staff)
    custody.return_item(session, later(hours=1), item=usb, actor=staff, erasure="erased", erasure_method="overwrite")
    session.commit()
    co = _last_checkout(session, usb)
    assert (co.erasure, co.erasure_method, co.erasure_by_id, co.erasure_at) == (
        Erasure.erased, "overwrite", staff.id, later(hours=1))
    data = json.loads(events(session, "return", usb)[-1].data)
    assert (data["erasure"], data["erasure_method"]) == ("erased", "overwrite")
    # It may go out again at once.
    _out(session, usb, staff, at=later(hours=2))
    assert open_checkout(session, usb) is not None


def test_nothing_written_is_recorded_without_a_method(session, staff, make_item):
    usb = make_item(Kind.usb, data_class=DataClass.my_number)
    _out(session, usb, staff)
    custody.return_item(session, later(hours=1), item=usb, actor=staff, erasure="nothing_written",
                        erasure_method="format")
    session.commit()
    co = _last_checkout(session, usb)
    assert (co.erasure, co.erasure_method, co.erasure_by_id) == (Erasure.nothing_written, None, staff.id)


def test_kinds_and_classes_without_the_rule_need_no_statement(session, staff, make_item):
    laptop, blank_usb = make_item(Kind.laptop), make_item(Kind.usb, data_class=DataClass.none)
    for item in (laptop, blank_usb):
        _out(session, item, staff)
        custody.return_item(session, later(hours=1), item=item, actor=staff)
        session.commit()
        assert _last_checkout(session, item).erasure is None


@pytest.mark.postgres
def test_left_for_inspection_the_item_cannot_go_out_until_the_desk_inspects_it(session, staff, desk, make_item):
    usb = make_item(Kind.usb)
    _out(session, usb, staff)
    custody.return_item(session, later(hours=1), item=usb, actor=staff, erasure="pending")
    session.commit()
    assert _last_checkout(session, usb).erasure == Erasure.pending
    with pytest.raises(AwaitingInspection):
        custody.check_out(session, later(hours=2), item=usb, holder=staff, actor=staff, due_at=later(hours=5))
    session.rollback()
    with pytest.raises(AwaitingInspection):
        approvals.request_checkout(session, later(hours=2), item=usb, holder=staff, due_at=later(days=2), purpose="",
                                 destination="", reason="trip", policy=Policy(), handling_ack=True)
    session.rollback()
    with pytest.raises(NotPermitted):
        custody.inspect_erasure(session, later(hours=2), item=usb, actor=staff, method="format")
    session.rollback()
    with pytest.raises(InvalidInput):
        custody.inspect_erasure(session, later(hours=2), item=usb, actor=desk, method="magic")
    session.rollback()
    custody.inspect_erasure(session, later(hours=3), item=usb, actor=desk, method="format")
    session.commit()
    co = _last_checkout(session, usb)
    assert (co.erasure, co.erasure_method, co.erasure_by_id, co.erasure_at) == (
        Erasure.inspected, "format", desk.id, later(hours=3))
    assert events(session, "erasure_inspected", usb)[-1].actor_id == desk.id
    _out(session, usb, staff, at=later(hours=4))
    assert open_checkout(session, usb) is not None


def test_a_bag_waits_while_a_drive_in_it_waits_for_inspection(session, staff, make_item):
    bag = make_item(Kind.bag)
    usb = make_item(Kind.usb, bag=bag)
    _out(session, bag, staff)
    custody.return_item(session, later(hours=1), item=bag, actor=staff, erasure="pending")
    session.commit()
    assert _last_checkout(session, usb).erasure == Erasure.pending
    assert _last_checkout(session, bag).erasure is None  # the bag itself holds no data
    with pytest.raises(AwaitingInspection, match=usb.asset_tag):
        custody.check_out(session, later(hours=2), item=bag, holder=staff, actor=staff, due_at=later(hours=5))


def test_the_rule_is_set_per_kind_and_class():
    policy = Policy(erasure_on_return=parse_kind_classes("*:my_number,laptop:sensitive", "X"))
    assert policy.needs_erasure(_Fake(Kind.laptop, DataClass.my_number))
    assert policy.needs_erasure(_Fake(Kind.laptop, DataClass.sensitive))
    assert not policy.needs_erasure(_Fake(Kind.usb, DataClass.personal))
    assert not Policy(erasure_on_return=parse_kind_classes("none", "X")).needs_erasure(_Fake(Kind.usb,
                                                                                            DataClass.personal))
    assert Policy().needs_erasure(_Fake(Kind.usb, DataClass.personal))  # on by default for USB drives
    with pytest.raises(ValueError, match="kind:class"):
        parse_kind_classes("usb:secret", "ERASURE_ON_RETURN")


class _Fake:
    def __init__(self, kind, data_class):
        self.kind, self.data_class = kind, data_class


# --- through the pages ---------------------------------------------------------------------------------------


def test_the_phone_return_asks_for_the_statement_and_refuses_without_it(app, session, staff, make_item):
    usb = make_item(Kind.usb)
    _out(session, usb, staff)
    c = client_for(app, staff)
    page = c.get(f"/items/{usb.asset_tag}").get_data(as_text=True)
    assert "Erasure check" in page and 'value="nothing_written"' in page and 'value="pending"' in page
    resp = post(c, f"/items/{usb.asset_tag}/return")
    assert resp.status_code == 303
    assert ("error", "Say whether the data on it was erased, nothing was written to it, or leave it for the "
                     "security desk's inspection.") in flashes(c.get(resp.headers["Location"]))
    assert open_checkout(session, usb) is not None
    resp = post(c, f"/items/{usb.asset_tag}/return", {"erasure": "erased", "erasure_method": "format"})
    assert open_checkout(session, usb) is None
    co = _last_checkout(session, usb)
    assert (co.erasure, co.erasure_method, co.erasure_by_id) == (Erasure.erased, "format", staff.id)


def test_the_desk_inspects_from_the_item_page(app, session, staff, desk, make_item):
    usb = make_item(Kind.usb)
    _out(session, usb, staff)
    c = client_for(app, staff)
    post(c, f"/items/{usb.asset_tag}/return", {"erasure": "pending"})
    page = c.get(f"/items/{usb.asset_tag}").get_data(as_text=True)
    assert "Waiting for return inspection" in page and "Take out" not in page
    assert "Record the return inspection" not in page  # staff cannot record it
    assert post(c, f"/items/{usb.asset_tag}/inspection", {"erasure_method": "format"}).status_code == 403
    dc = client_for(app, desk)
    resp = post(dc, f"/items/{usb.asset_tag}/inspection", {"erasure_method": "overwrite"})
    assert ("success", f"The return inspection of {usb.asset_tag} is recorded; it may go out again.") in flashes(
        dc.get(resp.headers["Location"]))
    co = _last_checkout(session, usb)
    assert (co.erasure, co.erasure_by_id) == (Erasure.inspected, desk.id)
    assert "Take out" in c.get(f"/items/{usb.asset_tag}").get_data(as_text=True)


def test_the_returns_scanner_leaves_a_drive_for_inspection(app, session, staff, desk, make_item):
    usb = make_item(Kind.usb)
    _out(session, usb, staff)
    dc = client_for(app, desk)
    post(dc, "/desk/scanner", {"code": usb.asset_tag}, page="/desk/scanner")
    assert open_checkout(session, usb) is None
    assert _last_checkout(session, usb).erasure == Erasure.pending
    page = dc.get(f"/items/{usb.asset_tag}").get_data(as_text=True)
    assert "Record the return inspection" in page
    scanner = dc.get("/desk/scanner").get_data(as_text=True)  # the desk's list of what waits for it
    assert "Waiting for return inspection" in scanner and f'href="/items/{usb.asset_tag}"' in scanner
    post(dc, f"/items/{usb.asset_tag}/inspection", {"erasure_method": "nothing_found"})
    assert f'href="/items/{usb.asset_tag}"' not in dc.get("/desk/scanner").get_data(as_text=True)


def test_my_items_open_the_page_for_a_drive_and_the_board_leaves_it_for_inspection(app, session, staff, desk,
                                                                                   make_item):
    usb, laptop = make_item(Kind.usb), make_item()
    _out(session, usb, staff)
    _out(session, laptop, staff)
    mine = client_for(app, staff).get("/my").get_data(as_text=True)
    assert f'action="/items/{laptop.asset_tag}/return"' in mine  # one tap
    assert f'action="/items/{usb.asset_tag}/return"' not in mine  # the page that asks about erasure
    assert f'href="/items/{usb.asset_tag}"' in mine
    dc = client_for(app, desk)
    board = dc.get("/desk/").get_data(as_text=True)
    assert '<input type="hidden" name="erasure" value="pending">' in board  # "Receive return" on the board
    post(dc, f"/items/{usb.asset_tag}/return", {"next": "/desk/", "erasure": "pending"}, page="/desk/")
    assert open_checkout(session, usb) is None
    assert _last_checkout(session, usb).erasure == Erasure.pending


def test_a_flag_resolved_as_returned_leaves_the_drive_for_inspection(session, staff, desk, make_item):
    from tracker.desk import flags, sweep

    usb = make_item(Kind.usb)
    _out(session, usb, staff)
    flag = sweep.sweep(session, later(hours=10), Policy()).flags[0]
    flags.resolve(session, later(hours=11), flag, desk, "returned")
    session.commit()
    co = _last_checkout(session, usb)
    assert (co.returned_by_id, co.erasure) == (desk.id, Erasure.pending)
