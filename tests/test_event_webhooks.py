"""Event webhooks: an integration receives the events it chose, signed, through a real HTTP listener on loopback;
failures are retried with backoff and shown on the notifications page; only admins manage the subscriptions."""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from tests.helpers import NOW, client_for, flashes, post, reread
from tracker import jobs
from tracker.custody import operations as custody
from tracker.models import AuditHead, Event, EventWebhook, Notification
from tracker.notify import delivery, hooks

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_verify():
    """The receiver's check exactly as the README tells integrators to write it."""
    text = README.read_text(encoding="utf-8")
    code = re.search(r"```python\n(import hashlib, hmac, time\n.*?)```", text, re.S).group(1)
    assert len(code.strip().splitlines()) == 6
    scope: dict = {}
    exec(code, scope)  # noqa: S102 - our own README's snippet, run to prove it works
    return scope["verify"]


def add_webhook(client, name="Chat bot", url="", events=("checkout",)):
    return post(client, "/admin/webhooks/new", {"name": name, "url": url, "events": list(events)},
                page="/admin/webhooks/new")


def shown_secret(page: str) -> str:
    return re.search(r'id="new-secret"[^>]*>([^<]+)<', page).group(1)


def deliveries(session) -> list[Notification]:
    reread(session)
    return list(session.scalars(select(Notification).where(Notification.channel == "event")
                                .order_by(Notification.id)))


# --- delivery ----------------------------------------------------------------------------------------------------


@pytest.mark.postgres
def test_a_subscription_made_on_one_host_hears_the_next_take_out_on_another_and_stops_when_disabled(
        app, new_app, session, make_user, make_item):
    """The writers on every host learn what is listened to from the chain's head they lock: no host keeps a stale
    list, and a take-out nobody listens to reads no subscription at all."""
    admin, staff = make_user("admin"), make_user()
    item = make_item(data_class="none")
    other_host = new_app(SECRET_KEY=app.config["SECRET_KEY"])
    phone = client_for(other_host, staff)
    page = f"/items/{item.asset_tag}"

    def take_out_and_back() -> None:
        assert post(phone, f"{page}/checkout", {"purpose": "visit"}, page=page).status_code == 303
        assert post(phone, f"{page}/return", {}, page=page).status_code == 303

    take_out_and_back()  # nobody listens: nothing queued
    created = hooks.create(session, NOW, name="SIEM", url="https://siem.example.com/in", events=["checkout"],
                           actor=admin)
    session.commit()
    take_out_and_back()
    assert [n.subject for n in deliveries(session)] == ["checkout"]
    hooks.set_active(session, NOW, session.get(EventWebhook, created.id), False, actor=admin)
    session.commit()
    take_out_and_back()
    assert [n.subject for n in deliveries(session)] == ["checkout"]



@pytest.mark.postgres
def test_a_subscribed_event_arrives_signed_and_an_unsubscribed_one_does_not(app, session, make_user, make_item,
                                                                             hook):
    admin, ann = make_user("admin"), make_user(name="Ann")
    resp = add_webhook(client_for(app, admin), url=hook.url, events=["checkout"])
    assert resp.status_code == 200
    secret = shown_secret(resp.get_data(as_text=True))

    laptop = make_item(name="Sales laptop")
    custody.check_out(session, NOW, item=laptop, holder=ann, actor=ann, due_at=NOW + timedelta(hours=3))
    session.commit()
    custody.return_item(session, NOW + timedelta(hours=1), item=laptop, actor=ann)  # not subscribed
    session.commit()

    assert jobs.run_delivery(app, NOW + timedelta(hours=1)) == (1, 0)
    assert len(hook.requests) == 1
    path, headers, body = hook.requests[0]
    assert headers["X-Tracker-Event"] == "checkout"
    assert headers["Content-Type"] == "application/json"

    verify = readme_verify()
    signature = headers["X-Tracker-Signature"]
    assert verify(secret, signature, body)
    assert not verify(secret, signature, body.replace(b"Sales laptop", b"Other laptop"))  # tampered body
    assert not verify("whsec_someone-else", signature, body)
    sent_at = int(dict(p.split("=", 1) for p in signature.split(","))["t"])
    assert not verify(secret, signature, body, now=sent_at + 301)  # replayed six minutes later

    event = json.loads(body)
    (recorded,) = session.scalars(select(Event).where(Event.action == "checkout"))
    assert set(event) == {"id", "type", "occurred_at", "actor", "item", "subject", "data", "hash"}
    assert event["type"] == "checkout" and event["id"] == recorded.seq and event["hash"] == recorded.hash
    assert event["occurred_at"] == "2026-06-01T01:00:00Z"
    assert event["item"]["asset_tag"] == laptop.asset_tag and event["item"]["name"] == "Sales laptop"
    assert event["actor"] == {"id": ann.id, "name": "Ann", "email": ann.email}

    (n,) = deliveries(session)
    assert n.sent_at is not None and n.subscription.name == "Chat bot"
    page = client_for(app, admin).get("/admin/notifications/").get_data(as_text=True)
    assert "Event webhook" in page and "Chat bot" in page and "Checked out" in page


@pytest.mark.postgres
def test_a_failing_receiver_is_retried_with_backoff_and_the_pages_show_why(app, session, make_user, make_item, hook):
    admin, ann = make_user("admin"), make_user()
    created = hooks.create(session, NOW, name="SIEM", url=hook.url, events=["checkout", "return"], actor=admin)
    session.commit()
    secret = created.secret
    hook.status = 500
    custody.check_out(session, NOW, item=make_item(), holder=ann, actor=ann, due_at=NOW + timedelta(hours=3))
    session.commit()

    assert jobs.run_delivery(app, NOW) == (0, 1)
    (n,) = deliveries(session)
    assert n.attempts == 1 and n.sent_at is None and n.failed_at is None
    assert n.next_attempt_at == NOW + delivery.BACKOFF[0]
    admin_client = client_for(app, admin)
    for url in ("/admin/notifications/", "/admin/webhooks/"):
        page = admin_client.get(url).get_data(as_text=True)
        assert "SIEM" in page and "The receiving service answered with an error." in page, url

    assert jobs.run_delivery(app, NOW + timedelta(seconds=30)) == (0, 0)  # still backing off
    hook.status = 200
    assert jobs.run_delivery(app, NOW + delivery.BACKOFF[0]) == (1, 0)
    assert len(hook.requests) == 2 and hook.requests[0][2] == hook.requests[1][2]  # the same event again
    verify = readme_verify()
    assert all(verify(secret, headers["X-Tracker-Signature"], body) for _, headers, body in hook.requests)
    (n,) = deliveries(session)
    assert n.sent_at is not None and n.attempts == 2 and n.last_error is None


def test_a_disabled_webhook_gets_nothing_new_and_its_queued_deliveries_fail_at_once(app, session, make_user,
                                                                                    make_item, hook):
    admin, ann = make_user("admin"), make_user()
    created = hooks.create(session, NOW, name="Bot", url=hook.url, events=["checkout"], actor=admin)
    session.commit()
    laptop, usb = make_item(), make_item("usb")
    custody.check_out(session, NOW, item=laptop, holder=ann, actor=ann, due_at=NOW + timedelta(hours=3))
    session.commit()

    c = client_for(app, admin)
    resp = post(c, f"/admin/webhooks/{created.id}/active", {"active": "0"}, page="/admin/webhooks/")
    assert resp.status_code == 303
    custody.check_out(session, NOW, item=usb, holder=ann, actor=ann, due_at=NOW + timedelta(hours=3))
    session.commit()

    assert jobs.run_delivery(app, NOW) == (0, 1)
    assert hook.requests == []
    (n,) = deliveries(session)  # the second check-out queued nothing
    assert n.failed_at is not None and n.attempts == 1
    page = c.get("/admin/notifications/").get_data(as_text=True)
    assert "Not sent: the event webhook was disabled or deleted" in page


# --- the admin pages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["staff", "security"])
def test_only_admins_manage_webhooks(app, session, make_user, role):
    admin = make_user("admin")
    created = hooks.create(session, NOW, name="Bot", url="https://hooks.example.com/x", events=["checkout"],
                           actor=admin)
    session.commit()
    c = client_for(app, make_user(role))
    assert c.get("/admin/webhooks/").status_code == 403
    assert add_webhook(c, url="https://evil.example.com/").status_code == 403
    for action in ("rotate", "delete", "active", "edit"):
        resp = post(c, f"/admin/webhooks/{created.id}/{action}", {"name": "x", "url": "https://evil.example.com/",
                                                                   "events": ["return"], "active": "0"})
        assert resp.status_code == 403, action
    reread(session)
    (row,) = session.scalars(select(EventWebhook))
    assert (row.name, row.url, row.secret, row.active) == ("Bot", "https://hooks.example.com/x", created.secret, True)


@pytest.mark.parametrize("url", ["http://hooks.example.com/in", "hooks.example.com/in", "ftp://127.0.0.1/x",
                                 "https://", "javascript:alert(1)"])
def test_an_address_that_could_leak_or_go_nowhere_is_refused_and_nothing_saved(app, session, admin, url):
    resp = add_webhook(client_for(app, admin), url=url)
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    assert "Enter an https:// address (http:// only for localhost), with a host name." in page
    assert 'aria-invalid="true"' in page
    reread(session)
    assert session.scalars(select(EventWebhook)).all() == []


def test_no_event_types_is_refused_with_the_field_marked(app, session, admin):
    resp = add_webhook(client_for(app, admin), url="https://hooks.example.com/in", events=[])
    assert resp.status_code == 400
    assert "Choose at least one kind of event." in resp.get_data(as_text=True)
    reread(session)
    assert session.scalars(select(EventWebhook)).all() == []


@pytest.mark.parametrize("url, ok", [("https://hooks.example.com/in", True), ("http://127.0.0.1:8080/x", True),
                                     ("http://localhost/x", True), ("http://[::1]/x", True),
                                     ("http://10.0.0.5/x", False), ("http://localhost.example.com/x", False)])
def test_plain_http_only_to_this_machine(url, ok):
    assert (hooks.url_problem(url) is None) is ok


@pytest.mark.postgres
def test_edit_rotate_and_delete(app, session, admin, make_user, make_item, hook):
    c = client_for(app, admin)
    first = shown_secret(add_webhook(c, url=hook.url, events=["checkout"]).get_data(as_text=True))
    (row,) = session.scalars(select(EventWebhook))
    page = c.get(f"/admin/webhooks/{row.id}/edit").get_data(as_text=True)
    assert first not in page  # shown once only

    resp = post(c, f"/admin/webhooks/{row.id}/edit", {"name": "Bot", "url": "http://example.com/", "events": ["return"]},
                page=f"/admin/webhooks/{row.id}/edit")
    assert resp.status_code == 400
    resp = post(c, f"/admin/webhooks/{row.id}/edit", {"name": "Bot", "url": hook.url, "events": ["return", "flagged"]},
                page=f"/admin/webhooks/{row.id}/edit")
    assert resp.status_code == 303
    resp = post(c, f"/admin/webhooks/{row.id}/rotate", page=f"/admin/webhooks/{row.id}/edit")
    second = shown_secret(resp.get_data(as_text=True))
    assert second != first
    reread(session)
    assert (row.name, row.event_set, row.secret) == ("Bot", {"return", "flagged"}, second)

    ann, item = make_user(), make_item()
    custody.check_out(session, NOW, item=item, holder=ann, actor=ann, due_at=NOW + timedelta(hours=3))
    custody.return_item(session, NOW, item=item, actor=ann)
    session.commit()
    assert [n.subject for n in deliveries(session)] == ["return"]

    resp = post(c, f"/admin/webhooks/{row.id}/delete", page="/admin/webhooks/")
    assert resp.status_code == 303
    assert ("success", "The webhook Bot is deleted; its past deliveries stay listed.") in flashes(c.get("/admin/webhooks/"))
    (n,) = deliveries(session)
    assert n.subscription_id is None and n.failed_at is not None  # never sent, and it says so
    assert jobs.run_delivery(app, NOW) == (0, 0) and hook.requests == []
    changes = [json.loads(e.data)["change"] for e in session.scalars(
        select(Event).where(Event.action == "event_webhook_changed").order_by(Event.seq))]
    assert changes == ["created", "updated", "secret_rotated", "deleted"]
    reread(session)
    assert session.scalar(select(AuditHead.listened)) == ""  # nothing listens now: no writer looks for a hook


def test_the_page_is_in_japanese(app, session, make_user):
    c = client_for(app, make_user("admin", language="ja"))
    page = c.get("/admin/webhooks/new").get_data(as_text=True)
    assert "イベント" in page and "Add a webhook" not in page


def test_an_hr_integration_hears_that_an_account_was_disabled(app, session, make_user, hook):
    from tracker.accounts import users

    admin, leaver = make_user("admin"), make_user(name="Leaving Lee")
    hooks.create(session, NOW, name="HR", url=hook.url, events=["user_disabled"], actor=admin)
    session.commit()
    assert "user_disabled" in hooks.EVENT_TYPES and "signin_failed" in hooks.EVENT_TYPES  # offered on the form
    users.set_active(session, NOW, leaver, False, actor=admin)
    session.commit()
    hook.status = 200
    assert jobs.run_delivery(app, NOW) == (1, 0)
    (_path, headers, body) = hook.requests[0]
    sent = json.loads(body)
    assert headers["X-Tracker-Event"] == "user_disabled" and sent["subject"]["name"] == "Leaving Lee"
