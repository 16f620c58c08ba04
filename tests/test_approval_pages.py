"""The pages of a take-out request over HTTP: asking from the item's page, the request's page for the requester,
the approvers and the desk, Approve / Reject / Cancel (CSRF, permissions per request), "my approvals", the sign-in
that lands back on the request, and the approver's e-mail and the chat webhook through real servers."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import (
    EN,
    NOW,
    PASSWORD,
    client_for,
    csrf_from,
    events,
    flashes,
    label_token,
    open_checkout,
    post,
    reread,
)
from tests.listeners import Hook, SmtpServer
from tracker import jobs
from tracker.custody import rules
from tracker.custody.policy import Policy
from tracker.models import Approval, CheckoutRequest, DataClass, Kind, RequestStatus

pytestmark = pytest.mark.usefixtures("frozen_clock")


@pytest.fixture
def world(session, make_user, make_department, make_item):
    """Mori manages Sales (Abe is his deputy); Hanako of Sales asks; laptops with personal data need the manager."""
    admin = make_user("admin", name="Rule Admin")
    mori, abe = make_user(name="Mori Manager"), make_user(name="Abe Deputy")
    sales = make_department("Sales", managers=[mori])
    hanako = make_user(name="Hanako Yamada", department_id=sales.id, language="en")
    mori.deputy_id = abe.id
    rules.save(session, NOW, rules.Rule(kind=Kind.laptop.value, data_class=DataClass.personal.value,
                                        approval=Approval.manager), actor=admin)
    session.commit()
    return {"mori": mori, "abe": abe, "hanako": hanako, "other": make_user(name="Someone Else"),
            "desk": make_user("security", name="Desk One"), "laptop": make_item(kind=Kind.laptop), "admin": admin}


def _ask(app, world, **form):
    """Hanako taps Take out on the laptop's page; she lands on the request's page."""
    c = client_for(app, world["hanako"])
    tag = world["laptop"].asset_tag
    resp = post(c, f"/items/{tag}/checkout", {"purpose": "Client visit", "destination": "Osaka", "rules_ack": "1",
                                              **form}, page=f"/items/{tag}", follow=True)
    return c, resp


def _request(session) -> CheckoutRequest:
    reread(session)
    return session.scalars(select(CheckoutRequest)).one()


def _decide(c, req, decision="approve", note=""):
    page = c.get(f"/requests/{req.id}")
    return c.post(f"/requests/{req.id}/decide", data={"csrf_token": csrf_from(page.get_data(as_text=True)),
                                                      "decision": decision, "note": note,
                                                      "step": _step_on(page)}, follow_redirects=True)


def _step_on(page) -> str:
    match = re.search(r'name="step" value="(\d+)"', page.get_data(as_text=True))
    return match.group(1) if match else ""


def test_asking_lands_on_the_request_page_which_names_the_approver_and_the_rule(app, session, world):
    c, page = _ask(app, world)
    req = _request(session)
    assert page.request.path == f"/requests/{req.id}"
    assert flashes(page) == [("info", "Sent to Mori Manager for approval. Wait here: this page shows the answer.")]
    text = page.get_data(as_text=True)
    assert "Waiting for Mori Manager to approve." in text and "Made under rule version 1" in text
    assert "Client visit" in text and "Osaka" in text and "Hanako Yamada" in text
    assert "data-live-src" in text and ">Approve<" not in text  # the requester does not decide
    assert "Cancel this request" in text
    assert open_checkout(session, world["laptop"]) is None
    item = c.get(f"/items/{world['laptop'].asset_tag}").get_data(as_text=True)
    assert "Waiting for Mori Manager to approve taking it out" in item and f"/requests/{req.id}" in item


def test_a_department_without_a_manager_sends_the_manager_step_to_the_desk_and_says_so(app, session, world):
    world["hanako"].department_id = None  # no department, so no manager to ask
    session.commit()
    _c, page = _ask(app, world)
    text = page.get_data(as_text=True)
    assert flashes(page) == [("info", "Sent to the security desk for approval. Wait here: this page shows the answer.")]
    assert "Waiting for the security desk to approve." in text
    assert "the department has no manager: the security desk decides" in text
    desk = client_for(app, world["desk"])
    decided = _decide(desk, _request(session))
    assert decided.status_code == 200 and open_checkout(session, world["laptop"]).holder_id == world["hanako"].id


def test_an_approval_is_no_witness_the_approved_take_out_happens_with_one(app, session, world):
    """Under a two-person rule, the last approval does not send the item out: the requester takes it out on its
    page, with the witness confirming there."""
    rules.save(session, NOW, replace(rules.rule_for(session, world["laptop"], Policy()), witness=True),
               actor=world["admin"])
    session.commit()
    c, _page = _ask(app, world, witness_email=world["other"].email, witness_password=PASSWORD)
    req = _request(session)
    mori = client_for(app, world["mori"])
    state = _decide(mori, req).get_data(as_text=True)
    reread(session)
    assert req.status == RequestStatus.approved and req.checkout_id is None
    assert open_checkout(session, world["laptop"]) is None  # approved, but nobody has witnessed a take-out yet
    mine = c.get(f"/requests/{req.id}").get_data(as_text=True)
    assert "take it out on the item's page today, with your witness" in mine and "Mori Manager" in state
    tag = world["laptop"].asset_tag
    assert "take it out below with your witness" in c.get(f"/items/{tag}").get_data(as_text=True)
    alone = post(c, f"/items/{tag}/checkout", {"purpose": "Client visit", "destination": "Osaka", "rules_ack": "1"},
                 page=f"/items/{tag}")
    assert alone.status_code == 400 and open_checkout(session, world["laptop"]) is None
    witnessed = post(c, f"/items/{tag}/checkout", {"purpose": "Client visit", "destination": "Osaka",
                                                   "rules_ack": "1", "witness_email": world["other"].email,
                                                   "witness_password": PASSWORD}, page=f"/items/{tag}")
    assert witnessed.status_code == 303
    co = open_checkout(session, world["laptop"])
    reread(session)
    assert co is not None and co.witness_id == world["other"].id and _request(session).checkout_id == co.id
    assert [e.action for e in events(session, "advance_approval_used")] == ["advance_approval_used"]


def test_the_manager_approves_in_one_tap_and_the_requesters_state_shows_it(app, session, world):
    requester, _ = _ask(app, world)
    req = _request(session)
    mori = client_for(app, world["mori"])
    assert "Approvals" in mori.get("/my").get_data(as_text=True)  # the link in the navigation, with a count
    listed = mori.get("/approvals").get_data(as_text=True)
    assert world["laptop"].asset_tag in listed and f"/requests/{req.id}" in listed
    page = mori.get(f"/requests/{req.id}").get_data(as_text=True)
    assert ">Approve<" in page and ">Reject<" in page
    resp = _decide(mori, req, note="Take care")
    assert flashes(resp) == [("success", "Approved.")]
    co = open_checkout(session, world["laptop"])
    assert co.holder_id == world["hanako"].id
    state = requester.get(f"/requests/{req.id}?fragment=1").get_data(as_text=True)
    assert f"Approved: {world['laptop'].asset_tag} is out with Hanako Yamada" in state
    assert "approved by Mori Manager" in state and "Take care" in state
    assert "data-waiting" not in state  # the page stops asking
    assert "Approvals" not in mori.get("/my").get_data(as_text=True)  # nothing waits any more


def test_a_staff_who_is_not_the_approver_gets_403_and_changes_nothing(app, session, world):
    _ask(app, world)
    req = _request(session)
    other = client_for(app, world["other"])
    assert other.get(f"/requests/{req.id}").status_code == 403
    resp = post(other, f"/requests/{req.id}/decide", {"decision": "approve"})
    assert resp.status_code == 403
    assert post(other, f"/requests/{req.id}/cancel").status_code == 403
    assert other.get("/approvals").status_code == 200 and "Nothing waits" in other.get("/approvals").get_data(True)
    assert _request(session).status == RequestStatus.pending and open_checkout(session, world["laptop"]) is None
    assert events(session, "approval_step_approved") == []


def test_a_decision_without_the_csrf_token_is_refused(app, session, world):
    _ask(app, world)
    req = _request(session)
    mori = client_for(app, world["mori"])
    assert mori.post(f"/requests/{req.id}/decide", data={"decision": "approve"}).status_code == 400
    assert _request(session).status == RequestStatus.pending


def test_the_deputy_and_the_desk_may_decide(app, session, world):
    _ask(app, world)
    req = _request(session)
    abe = client_for(app, world["abe"])
    page = abe.get(f"/requests/{req.id}").get_data(as_text=True)
    assert "You decide as deputy for Mori Manager." in page
    resp = _decide(abe, req, decision="reject", note="Not this week")
    assert flashes(resp) == [("success", "Rejected.")]
    text = resp.get_data(as_text=True)
    assert "rejected by Abe Deputy" in text and "(as deputy)" in text and "Not this week" in text
    assert _request(session).status == RequestStatus.denied

    # A second request: the desk decides for the manager.
    _ask(app, world)
    reread(session)
    second = session.scalars(select(CheckoutRequest).where(CheckoutRequest.status == RequestStatus.pending)).one()
    desk = client_for(app, world["desk"])
    assert "You decide for the approver, as the security desk." in desk.get(f"/requests/{second.id}").get_data(True)
    _decide(desk, second)
    assert open_checkout(session, world["laptop"]).holder_id == world["hanako"].id
    (event,) = [e for e in events(session, "approval_step_approved")]
    assert '"on_behalf": "desk"' in event.data


def test_the_requester_cancels_and_a_late_approver_is_told(app, session, world):
    requester, _ = _ask(app, world)
    req = _request(session)
    mori = client_for(app, world["mori"])
    stale = mori.get(f"/requests/{req.id}")  # Mori has the page open
    resp = post(requester, f"/requests/{req.id}/cancel", page=f"/requests/{req.id}", follow=True)
    assert flashes(resp) == [("success", "Your request is cancelled.")]
    assert "Cancelled by the requester." in resp.get_data(as_text=True)
    late = mori.post(f"/requests/{req.id}/decide", follow_redirects=True,
                     data={"csrf_token": csrf_from(stale.get_data(as_text=True)), "decision": "approve",
                           "step": _step_on(stale)})
    assert flashes(late) == [("error", "The requester cancelled this request. Nothing was changed.")]
    assert open_checkout(session, world["laptop"]) is None
    refused = events(session, "refused")[-1]  # the refusal is on the record
    assert refused.actor_id == world["mori"].id and "cancelled" in refused.data


def test_an_approval_in_advance_from_the_take_out_form(app, session, world):
    _, page = _ask(app, world, for_date="2026-06-05")
    req = _request(session)
    assert req.for_date.isoformat() == "2026-06-05" and req.status == RequestStatus.pending
    assert "Approval in advance for" in page.get_data(as_text=True)
    # The due time typed for today means that time on the day asked for (19:00 Tokyo on 5 June).
    assert req.due_at.isoformat() == "2026-06-05T10:00:00+00:00"


def test_signed_out_the_link_in_the_mail_signs_in_and_lands_on_the_request(app, session, world):
    _ask(app, world)
    req = _request(session)
    c = app.test_client()
    resp = c.get(f"/requests/{req.id}", headers=EN)
    assert resp.status_code == 302 and "/login" in resp.location and f"requests%2F{req.id}" in resp.location
    login = c.get(resp.location, headers=EN).get_data(as_text=True)
    action = re.search(r'<form[^>]*action="([^"]*)"', login)
    target = action.group(1).replace("&amp;", "&") if action and action.group(1) else resp.location
    landed = c.post(target, data={"email": world["mori"].email, "password": "correct-horse-battery",
                                  "csrf_token": csrf_from(login)}, headers=EN)
    assert landed.status_code == 302 and landed.location.endswith(f"/requests/{req.id}")


def test_the_manager_is_mailed_in_their_language_and_the_chat_is_told_and_the_requester_learns_the_outcome(
        new_app, session, world):
    world["mori"].language = "ja"  # Mori reads Japanese, Hanako English
    session.commit()
    hook = Hook()
    hook.thread.start()
    try:
        with SmtpServer() as smtp:
            app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, WEBHOOK_URL=hook.url, DESK_EMAILS="")
            _ask(app, world)
            req = _request(session)
            jobs.run_delivery(app, NOW)
            (mail,) = smtp.inbox.to(world["mori"].email)
            body = mail.get_content()
            assert "承認" in str(mail["Subject"]) and world["laptop"].asset_tag in str(mail["Subject"])
            assert f"https://track.example.com/requests/{req.id}" in body and "Hanako Yamada" in body
            assert "返却期限" in body and "Due back" not in body  # Mori reads Japanese
            (chat,) = hook.posts()
            assert f"/requests/{req.id}" in chat["text"] and "Mori Manager" in chat["text"]
            assert smtp.inbox.to(world["hanako"].email) == []
            (copy,) = smtp.inbox.to(world["abe"].email)  # his deputy may decide while he is away (in Japanese, the default)
            assert "Mori Managerさんの代理承認者" in copy.get_content() and f"/requests/{req.id}" in copy.get_content()

            _decide(client_for(app, world["mori"]), req)
            jobs.run_delivery(app, NOW)
            (outcome,) = smtp.inbox.to(world["hanako"].email)
            assert str(outcome["Subject"]) == f"Approved: {world['laptop'].asset_tag}"
            assert "It is checked out to you now, due back 2026-06-01 19:00." in outcome.get_content()
    finally:
        hook.server.shutdown()
        hook.server.server_close()


def test_the_request_page_in_japanese(app, session, world):
    _ask(app, world)
    req = _request(session)
    mori = client_for(app, world["mori"])
    page = mori.get(f"/requests/{req.id}", headers={"Accept-Language": "ja"})
    mori.environ_base["HTTP_ACCEPT_LANGUAGE"] = "ja"
    text = mori.get(f"/requests/{req.id}").get_data(as_text=True)
    assert page.status_code == 200 and '<html lang="ja">' in text
    assert ">承認<" in text and ">却下<" in text and "ルール第1版に基づく申請" in text
    assert "Mori Manager" in text and "上長" in text


def test_a_changed_rule_leaves_the_waiting_request_as_it_was(app, session, world, make_user):
    _ask(app, world)
    req = _request(session)
    newcomer = make_user(name="New Approver")
    current = rules.rule_for(session, world["laptop"], Policy())
    rules.save(session, NOW, replace(current, approval=Approval.named, approvers=(newcomer.id,)),
               actor=world["admin"])
    session.commit()
    assert client_for(app, newcomer).get(f"/requests/{req.id}").status_code == 403
    page = client_for(app, world["mori"]).get(f"/requests/{req.id}").get_data(as_text=True)
    assert "Made under rule version 1" in page and ">Approve<" in page



def test_the_desk_board_approves_the_step_it_shows_and_says_what_follows(app, session, world):
    current = rules.rule_for(session, world["laptop"], Policy())
    rules.save(session, NOW, replace(current, approval=Approval.manager_desk), actor=world["admin"])
    session.commit()
    _ask(app, world)
    req = _request(session)
    desk = client_for(app, world["desk"])
    board = desk.get("/desk/").get_data(as_text=True)
    assert f"/requests/{req.id}" in board
    first_step = re.search(r'name="step" value="(\d+)"', board).group(1)
    token = csrf_from(board)
    resp = desk.post(f"/desk/requests/{req.id}", data={"csrf_token": token, "decision": "approve",
                                                       "step": first_step}, follow_redirects=True)
    assert flashes(resp) == [("success", f"{world['laptop'].asset_tag}: approved; it now waits for the next "
                                         "approver.")]
    # A second tap on the same (stale) button does not approve the desk's own step as well.
    again = desk.post(f"/desk/requests/{req.id}", data={"csrf_token": token, "decision": "approve",
                                                        "step": first_step}, follow_redirects=True)
    assert flashes(again)[0][0] == "error" and "Desk One already decided this step" in flashes(again)[0][1]
    assert open_checkout(session, world["laptop"]) is None
    board = desk.get("/desk/").get_data(as_text=True)
    resp = desk.post(f"/desk/requests/{req.id}", follow_redirects=True, data={
        "csrf_token": token, "decision": "approve", "step": re.search(r'name="step" value="(\d+)"', board).group(1)})
    assert flashes(resp) == [("success", f"{world['laptop'].asset_tag}: approved, now out with Hanako Yamada.")]
    assert open_checkout(session, world["laptop"]).holder_id == world["hanako"].id


def test_the_expiry_job_tells_the_requester(new_app, session, world, frozen_clock):
    with SmtpServer() as smtp:
        app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=smtp.port, DESK_EMAILS="")
        _ask(app, world)
        req = _request(session)
        assert jobs.run_request_expiry(app, NOW) == 0
        assert jobs.run_request_expiry(app, req.expires_at) == 1
        assert jobs.run_request_expiry(app, req.expires_at) == 0
        (mail,) = smtp.inbox.to(world["hanako"].email)
        assert str(mail["Subject"]) == f"Expired: {world['laptop'].asset_tag}"
        assert _request(session).status == RequestStatus.expired
        frozen_clock["now"] = req.expires_at
        page = client_for(app, world["mori"]).get(f"/requests/{req.id}").get_data(as_text=True)
        assert "Expired: it was not decided or used by the end of its day." in page and ">Approve<" not in page


def test_on_the_approved_day_take_out_uses_the_approval_in_advance(app, session, world, frozen_clock):
    _ask(app, world, for_date="2026-06-03", due="2026-06-03T17:00")
    req = _request(session)
    _decide(client_for(app, world["mori"]), req)
    assert _request(session).status == RequestStatus.approved and open_checkout(session, world["laptop"]) is None
    c = client_for(app, world["hanako"])
    scan = f"/S/{label_token(session, world['laptop'])}"
    page = c.get(scan, headers=EN).get_data(as_text=True)  # before the day: the scan offers the usual take-out
    assert "Approved in advance for today" not in page and ">Take out</button>" in page
    frozen_clock["now"] = NOW + timedelta(days=2)  # 3 June, 10:00 in Tokyo
    tag = world["laptop"].asset_tag
    page = c.get(f"/items/{tag}").get_data(as_text=True)
    assert "Approved in advance for today" in page
    assert "Approved in advance for today" in c.get(scan, headers=EN).get_data(as_text=True)
    resp = post(c, f"/items/{tag}/checkout", {"rules_ack": "1"}, page=f"/items/{tag}", follow=True)
    assert flashes(resp) == [("success", f"{tag} is checked out to Hanako Yamada.")]
    co = open_checkout(session, world["laptop"])
    assert co.holder_id == world["hanako"].id and co.due_at.isoformat() == "2026-06-03T08:00:00+00:00"
    assert _request(session).checkout_id == co.id


def _header_count(page) -> int | None:
    match = re.search(r'Approvals <span class="badge out">(\d+)</span>', page.get_data(as_text=True))
    return int(match.group(1)) if match else None


def test_the_scan_pages_header_counts_what_waits_for_the_reader(app, session, world, make_item):
    """The scan reads the header's count with the label: the manager's and his deputy's, nobody else's, none once
    decided; and the desk's, for a manager step where the department has no manager (the page says the desk
    decides, so the desk's list has it)."""
    scanned = f"/S/{label_token(session, make_item(kind=Kind.usb, data_class=DataClass.none))}"
    people = {name: client_for(app, world[name]) for name in ("mori", "abe", "desk", "other", "hanako")}

    def counts() -> dict[str, int | None]:
        return {name: _header_count(c.get(scanned, headers=EN)) for name, c in people.items()}

    assert counts() == dict.fromkeys(people)
    _ask(app, world)
    assert counts() == {"mori": 1, "abe": 1, "desk": None, "other": None, "hanako": None}
    _decide(people["mori"], _request(session), decision="reject")
    assert counts() == dict.fromkeys(people)
    reread(session)  # after the pages' writes: write from a fresh snapshot
    world["hanako"].department_id = None  # no manager: the desk's turn
    session.commit()
    _ask(app, world)
    assert counts() == {"mori": None, "abe": None, "desk": 1, "other": None, "hanako": None}
    assert world["laptop"].asset_tag in people["desk"].get("/approvals", headers=EN).get_data(as_text=True)
