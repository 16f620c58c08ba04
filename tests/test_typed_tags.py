"""A barcode scanner typing with the Japanese IME on, or a person typing on a phone, still finds the item."""

from __future__ import annotations

import pytest

from tests.helpers import EN, NOW, client_for, csrf_token, label_token, later, open_checkout
from tracker.custody import operations as custody
from tracker.models import DataClass, Kind


@pytest.mark.parametrize("typed", ["ＵＳＢ－２", "usb-2", "USB0002", "usb 0002", "ＵＳＢー０００２", "USB−2", " USB-0002 "])
def test_find_takes_full_width_dashes_lower_case_and_missing_zeros(app, make_user, make_item, typed):
    for _ in range(2):
        item = make_item(Kind.usb)  # USB-0001, USB-0002
    assert item.asset_tag == "USB-0002"
    resp = client_for(app, make_user()).get("/find", query_string={"tag": typed}, headers=EN)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/items/USB-0002")


def test_a_tag_written_another_way_in_the_register_is_found_as_written(app, make_user, make_item):
    exact = make_item(Kind.usb, asset_tag="USB-2")  # an imported register may number its own way
    make_item(Kind.usb, asset_tag="USB-0002")
    c = client_for(app, make_user())
    assert c.get("/find?tag=usb-2").headers["Location"].endswith(f"/items/{exact.asset_tag}")
    assert c.get("/find?tag=USB0002").headers["Location"].endswith("/items/USB-0002")


def test_the_returns_scanner_takes_a_full_width_label_url_and_tag(app, session, make_user, make_item):
    staff, desk = make_user(), make_user("security")
    laptop, usb = make_item(data_class=DataClass.none), make_item(Kind.usb, data_class=DataClass.none)
    for item in (laptop, usb):
        custody.check_out(session, NOW, item=item, holder=staff, actor=staff, due_at=later(hours=8))
    session.commit()
    c = client_for(app, desk)
    token = csrf_token(c, "/desk/scanner")
    url = f"{app.config['BASE_URL']}/S/{label_token(session, laptop)}"
    wide = url.translate({c: c + 0xFEE0 for c in range(0x21, 0x7F)})  # what the IME sends: all full-width
    for code in (wide, "ｕｓｂ－１"):
        resp = c.post("/desk/scanner", data={"csrf_token": token, "code": code, "js": "1"}, headers=EN)
        assert resp.get_json()["ok"] is True, resp.get_json()
    assert open_checkout(session, laptop) is None and open_checkout(session, usb) is None
