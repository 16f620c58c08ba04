"""My Number (特定個人情報) as a data class of its own, the most sensitive: it is reported whenever lost, under the
My Number Act's own rules, and the APPI checklist adds the notice to the individuals (本人通知), promptly, with the
alternative measure when notice is impractical."""

from __future__ import annotations

import html
from datetime import date, timedelta

import pytest

from tests.helpers import NOW, client_for, post, tokyo
from tracker.custody import operations as custody
from tracker.custody.policy import Policy
from tracker.desk import appi, flags, sweep
from tracker.labels.design import MARKS
from tracker.models import DataClass, Incident, Kind

pytestmark = pytest.mark.usefixtures("english")


def _incident(**kw) -> Incident:
    defaults = {"data_class": DataClass.none, "people_count": 1, "financial_harm": False, "wrongful_purpose": False,
                "properly_encrypted": False, "known_at": tokyo(1, 10)}
    return Incident(**(defaults | kw))


def test_my_number_for_one_person_must_be_reported_and_the_people_told():
    duty = appi.report_duty(_incident(data_class=DataClass.my_number), Policy())
    assert duty.my_number and duty.required and duty.notify_individuals
    assert not duty.sensitive
    assert (duty.known_on, duty.preliminary_by) == (date(2026, 6, 1), date(2026, 6, 6))


def test_no_personal_data_needs_no_report_and_no_notice():
    duty = appi.report_duty(_incident(), Policy())
    assert not duty.required and not duty.notify_individuals and not duty.my_number


def test_proper_encryption_exempts_my_number_too():
    duty = appi.report_duty(_incident(data_class=DataClass.my_number, properly_encrypted=True), Policy())
    assert not duty.required and not duty.notify_individuals and duty.exempt_by_encryption


def _lost(session, make_user, make_item, data_class):
    holder, desk = make_user(), make_user("security", language="en")
    item = make_item(Kind.usb, data_class=data_class, people_count=3)
    custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=NOW + timedelta(hours=1))
    flag = sweep.sweep(session, NOW + timedelta(hours=2), Policy()).flags[0]
    incident = flags.mark_lost(session, NOW + timedelta(hours=3), flag, desk, "lost")
    session.commit()
    return desk, incident


def test_the_incident_page_and_pdf_name_my_numbers_own_rules_and_the_notice(app, session, make_user, make_item,
                                                                            tmp_path):
    from tests.helpers import pdf_text

    desk, incident = _lost(session, make_user, make_item, DataClass.my_number)
    c = client_for(app, desk)
    page = html.unescape(c.get(f"/desk/incidents/{incident.id}").get_data(as_text=True))
    assert "☑ My Number (特定個人情報) was involved" in page
    assert "My Number Act's own rules" in page
    assert "A report is required." in page
    assert "Notice to the individuals (本人通知)" in page and "Promptly" in page
    assert "an alternative measure instead, such as a public announcement" in page
    (tmp_path / "incident.pdf").write_bytes(c.get(f"/desk/incidents/{incident.id}.pdf").data)
    text = " ".join(pdf_text(tmp_path / "incident.pdf").split())
    assert "[x] My Number (specific personal information)" in text
    assert "My Number Act's own rules" in text
    assert "Notice to the individuals (本人通知)" in text and "alternative measure" in text


def test_an_incident_without_a_duty_shows_no_notice(app, session, make_user, make_item):
    desk, incident = _lost(session, make_user, make_item, DataClass.none)
    page = client_for(app, desk).get(f"/desk/incidents/{incident.id}").get_data(as_text=True)
    assert "Notice to the individuals" not in page and "My Number Act" not in page


def test_my_number_is_a_class_everywhere(app, session, admin, make_user, make_item):
    item = make_item(Kind.usb, data_class=DataClass.my_number)
    holder = make_user()
    custody.check_out(session, NOW, item=item, holder=holder, actor=holder, due_at=NOW + timedelta(hours=1))
    session.commit()
    c = client_for(app, make_user("security", language="en"))
    board = c.get("/desk/").get_data(as_text=True)
    assert "row-sensitive" in board  # highlighted like sensitive data
    assert 'class="badge class-my_number"' in board
    assert MARKS["my_number"][0] == "特定個人情報"  # printed on its label
    ja = client_for(app, admin)
    ja.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    post(ja, "/account", {"language": "ja", "phone": ""})
    page = ja.get(f"/items/{item.asset_tag}").get_data(as_text=True)
    assert "特定個人情報（マイナンバー）" in page
