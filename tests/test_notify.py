"""Notifications against a real SMTP server (aiosmtpd) and a real HTTP listener on loopback."""

from __future__ import annotations

import json
import os
import shutil
import ssl
import subprocess
import threading
from datetime import timedelta

import pytest
from sqlalchemy import select

from tests.helpers import NOW, PASSWORD, free_port, tokyo
from tests.listeners import SmtpServer, smtp_config
from tracker import clock, jobs
from tracker.accounts import users
from tracker.custody import operations as custody
from tracker.items import register as items_mod
from tracker.models import DataClass, Flag, Kind, Notification
from tracker.notify import delivery

pytestmark = pytest.mark.postgres  # the jobs' sessions: the sweep, claiming reminders and messages, two deliverers

_serial = iter(range(1, 10_000))


# --- apps, people and items --------------------------------------------------------------------------------------


@pytest.fixture
def new_app(new_app):
    """The conftest factory, with two desk addresses unless told otherwise."""

    def make(**config):
        config.setdefault("DESK_EMAILS", "desk1@example.com, desk2@example.com")
        return new_app(**config)

    return make


class World:
    """Users, items and check-outs committed through the app's own sessions."""

    def __init__(self, app):
        self.app = app
        self.maker = app.extensions["tracker.sessionmaker"]
        self.s = self.maker()

    def user(self, name: str, language: str | None = None, phone: str | None = None):
        n = next(_serial)
        u = users.create(self.s, NOW, email=f"user{n}@example.com", name=name, role="staff", password=PASSWORD,
                         actor=None, language=language, phone=phone, must_change_password=False)
        self.s.commit()
        return u

    def item(self, name: str, kind=Kind.laptop, bag=None):
        data = items_mod.ItemData(kind=kind, name=name, data_class=DataClass.personal,
                                  bag_tag=bag.asset_tag if bag is not None else None)
        it = items_mod.create(self.s, NOW, data, actor=None)
        self.s.commit()
        return it

    def out(self, item, holder, due_at, destination=""):
        co = custody.check_out(self.s, tokyo(1, 9), item=item, holder=holder, actor=holder, due_at=due_at,
                               destination=destination)
        self.s.commit()
        return co

    def read(self, stmt) -> list:
        """Read in a short read-only session, so SQLite's write lock stays free for the jobs."""
        with self.app.extensions["tracker.read_sessionmaker"]() as r:
            rows = list(r.scalars(stmt))
            r.expunge_all()
        return rows

    def notifications(self) -> list[Notification]:
        return self.read(select(Notification).order_by(Notification.id))

    def close(self):
        self.s.rollback()
        self.s.close()


@pytest.fixture
def world_for():
    worlds = []

    def make(app):
        w = World(app)
        worlds.append(w)
        return w

    yield make
    for w in worlds:
        w.close()


# --- the digests -------------------------------------------------------------------------------------------------


def test_one_digest_per_holder_one_per_desk_address_and_one_webhook(new_app, world_for, smtp, hook):
    app = new_app(**smtp_config(smtp), WEBHOOK_URL=hook.url)
    w = world_for(app)
    emma = w.user("Emma Jones", language="en")
    kenji = w.user("山田 健二", language="ja", phone="090-1234-5678")
    later_user = w.user("Not Yet", language="en")
    laptop, usb = w.item("Sales laptop"), w.item("Client USB", Kind.usb)
    folder = w.item("契約書フォルダ", Kind.folder)
    fine = w.item("Spare laptop")
    w.out(laptop, emma, tokyo(1, 18), destination="Osaka")
    w.out(usb, emma, tokyo(1, 18, 30))
    w.out(folder, kenji, tokyo(1, 17))
    w.out(fine, later_user, tokyo(2, 12))

    result = jobs.run_sweep(app, tokyo(1, 19))
    assert len(result.flags) == 3

    assert len(smtp.inbox.messages) == 4
    assert {r for rcpt, _, _ in smtp.inbox.messages for r in rcpt} == {
        emma.email, kenji.email, "desk1@example.com", "desk2@example.com"}
    assert smtp.inbox.to(later_user.email) == []

    (en,) = smtp.inbox.to(emma.email)
    subject, body = str(en["Subject"]), en.get_content()
    assert "Overdue" in subject and "2 item(s)" in subject
    assert laptop.asset_tag in body and usb.asset_tag in body and folder.asset_tag not in body
    assert "Due back" in body and "Emma Jones" in body and "→ Osaka" in body
    assert "2026-06-01 18:00" in body and "2026-06-01 18:30" in body  # local time (Tokyo), not UTC; year first
    assert "https://track.example.com/my" in body
    assert en["From"] and en["Message-ID"] and en["Date"]

    (ja,) = smtp.inbox.to(kenji.email)
    body = ja.get_content()
    assert folder.asset_tag in body and laptop.asset_tag not in body
    assert "返却期限" in body and "2026/06/01 17:00" in body and "Due back" not in body
    assert "山田 健二" in body

    for address in ("desk1@example.com", "desk2@example.com"):
        (desk,) = smtp.inbox.to(address)
        body = desk.get_content()
        assert "3" in str(desk["Subject"])
        for tag in (laptop.asset_tag, usb.asset_tag, folder.asset_tag):
            assert tag in body
        assert emma.email in body and kenji.email in body and "090-1234-5678" in body
        assert "返却期限" in body  # the desk gets the site's language (ja by default)
        assert "https://track.example.com/desk/" in body

    assert len(hook.requests) == 1
    path, headers, raw = hook.requests[0]
    assert path == "/hooks/desk"
    assert headers.get("Content-Type", "").startswith("application/json")
    payload = json.loads(raw)
    assert set(payload) == {"text"}  # the one shape both Slack and Teams incoming webhooks accept
    for tag in (laptop.asset_tag, usb.asset_tag, folder.asset_tag):
        assert tag in payload["text"]

    rows = w.notifications()
    assert sorted(n.channel for n in rows) == ["email"] * 4 + ["webhook"]
    assert all(n.sent_at == tokyo(1, 19) and n.attempts == 1 and n.last_error is None for n in rows)

    # A second sweep, by hand or by the midnight job, notifies nobody again.
    again = jobs.run_sweep(app, tokyo(1, 19, 10))
    assert again.flags == []
    assert len(smtp.inbox.messages) == 4 and len(hook.requests) == 1
    assert len(w.notifications()) == 5


def test_english_site_default_for_users_without_a_language(new_app, world_for, smtp):
    app = new_app(**smtp_config(smtp), DEFAULT_LANGUAGE="en", DESK_EMAILS="desk@example.com")
    w = world_for(app)
    ann = w.user("Ann")
    laptop = w.item("Laptop A")
    w.out(laptop, ann, tokyo(1, 18))
    jobs.run_sweep(app, tokyo(1, 19))
    (mine,) = smtp.inbox.to(ann.email)
    assert "Due back" in mine.get_content() and "Overdue" in str(mine["Subject"])
    (desk,) = smtp.inbox.to("desk@example.com")
    assert "Due back" in desk.get_content() and laptop.asset_tag in desk.get_content()


def test_reminders_one_email_per_holder_listing_everything_due_soon(new_app, world_for, smtp):
    app = new_app(**smtp_config(smtp), REMINDER_MINUTES=30)
    w = world_for(app)
    emma, kenji = w.user("Emma", language="en"), w.user("健二", language="ja")
    a, b, c, d = w.item("A"), w.item("B"), w.item("C"), w.item("D")
    w.out(a, emma, tokyo(1, 19))
    w.out(b, emma, tokyo(1, 19, 5))
    w.out(c, kenji, tokyo(1, 19))
    w.out(d, emma, tokyo(1, 21))  # not due soon

    assert jobs.run_reminders(app, tokyo(1, 18, 40)) == 3
    assert len(smtp.inbox.messages) == 2  # one per holder, not one per item
    (en,) = smtp.inbox.to(emma.email)
    body = en.get_content()
    assert a.asset_tag in body and b.asset_tag in body and d.asset_tag not in body
    assert "2 item(s)" in str(en["Subject"]) and "2026-06-01 19:05" in body
    (ja,) = smtp.inbox.to(kenji.email)
    assert c.asset_tag in ja.get_content() and "返却期限" in ja.get_content()

    assert jobs.run_reminders(app, tokyo(1, 18, 41)) == 0
    assert len(smtp.inbox.messages) == 2


# --- transport security ------------------------------------------------------------------------------------------


@pytest.fixture
def certificate(tmp_path):
    if shutil.which("openssl") is None:
        if os.environ.get("CI"):
            pytest.fail("openssl is not installed; CI must provide it")
        pytest.skip("openssl is not installed here")
    key, cert = tmp_path / "k", tmp_path / "c"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
                    "-keyout", str(key), "-out", str(cert), "-days", "1"], check=True, capture_output=True)
    return key, cert


def test_starttls_with_the_sites_ca_file_delivers(new_app, world_for, certificate):
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    with SmtpServer(require_starttls=True, tls_context=context) as server:
        app = new_app(SMTP_HOST="localhost", SMTP_PORT=server.port, SMTP_STARTTLS=True, SMTP_CAFILE=str(cert),
                      DESK_EMAILS="desk@example.com")
        w = world_for(app)
        ann = w.user("Ann", language="en")
        w.out(w.item("Laptop"), ann, tokyo(1, 18))
        jobs.run_sweep(app, tokyo(1, 19))
        assert sorted(r for rcpt, _, _ in server.inbox.messages for r in rcpt) == sorted([ann.email, "desk@example.com"])
        assert all(tls for _, _, tls in server.inbox.messages)  # every message went over TLS
        assert all(n.sent_at is not None and n.last_error is None for n in w.notifications())


def test_plain_smtp_to_a_server_that_requires_starttls_is_recorded(new_app, world_for, certificate):
    key, cert = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(str(cert), str(key))
    with SmtpServer(require_starttls=True, tls_context=context) as server:
        app = new_app(SMTP_HOST="localhost", SMTP_PORT=server.port, DESK_EMAILS="")
        w = world_for(app)
        w.out(w.item("Laptop"), w.user("Ann"), tokyo(1, 18))
        result = jobs.run_sweep(app, tokyo(1, 19))
        assert len(result.flags) == 1
        assert server.inbox.messages == []
        (n,) = w.notifications()
        assert n.sent_at is None and n.attempts == 1 and "STARTTLS" in (n.last_error or "").upper()


# --- failures never fail the sweep -------------------------------------------------------------------------------


def test_smtp_down_the_sweep_commits_and_delivery_retries_with_backoff(new_app, world_for):
    port = free_port()  # nothing listens here yet
    app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, DESK_EMAILS="desk@example.com")
    w = world_for(app)
    ann, bob = w.user("Ann", language="en"), w.user("Bob", language="en")
    w.out(w.item("L1"), ann, tokyo(1, 18))
    w.out(w.item("L2"), bob, tokyo(1, 18))

    result = jobs.run_sweep(app, tokyo(1, 19))
    assert len(result.flags) == 2
    assert len(w.read(select(Flag))) == 2  # committed despite the mail server being down
    rows = w.notifications()
    assert len(rows) == 3
    for n in rows:
        assert n.attempts == 1 and n.sent_at is None and n.failed_at is None
        assert "ConnectionRefused" in n.last_error
        assert n.next_attempt_at > tokyo(1, 19)
        assert n.next_attempt_at == tokyo(1, 19) + delivery.BACKOFF[0]

    with SmtpServer(port=port) as server:
        assert jobs.run_delivery(app, tokyo(1, 19) + timedelta(seconds=30)) == (0, 0)  # still backing off
        assert server.inbox.messages == []
        assert jobs.run_delivery(app, tokyo(1, 19, 2)) == (3, 0)
        assert jobs.run_delivery(app, tokyo(1, 19, 30)) == (0, 0)
        assert sorted(r for rcpt, _, _ in server.inbox.messages for r in rcpt) == sorted(
            [ann.email, bob.email, "desk@example.com"])
    rows = w.notifications()
    assert all(n.sent_at == tokyo(1, 19, 2) and n.attempts == 2 and n.last_error is None for n in rows)


def test_after_max_attempts_a_notification_is_marked_failed(new_app, world_for):
    app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port(), DESK_EMAILS="")
    w = world_for(app)
    w.out(w.item("L1"), w.user("Ann"), tokyo(1, 18))
    jobs.run_sweep(app, tokyo(1, 19))
    (n,) = w.notifications()
    waits = [n.next_attempt_at - tokyo(1, 19)]
    while n.failed_at is None and n.attempts < delivery.MAX_ATTEMPTS + 2:
        previous = n.next_attempt_at
        assert jobs.run_delivery(app, previous - timedelta(seconds=1)) == (0, 0)  # not before its time
        assert jobs.run_delivery(app, previous) == (0, 1)
        (n,) = w.notifications()
        if n.failed_at is None:
            waits.append(n.next_attempt_at - previous)
    assert n.attempts == delivery.MAX_ATTEMPTS
    assert n.failed_at is not None and n.sent_at is None and n.last_error
    assert waits == delivery.BACKOFF and waits == sorted(waits)  # the waits grow
    assert jobs.run_delivery(app, tokyo(10, 0)) == (0, 0)  # given up: never tried again by itself
    (n,) = w.notifications()
    assert n.attempts == delivery.MAX_ATTEMPTS


def test_webhook_answering_500_is_recorded_and_retried(new_app, world_for, hook):
    hook.status = 500
    app = new_app(WEBHOOK_URL=hook.url)  # no SMTP: the webhook only
    w = world_for(app)
    w.out(w.item("L1"), w.user("Ann"), tokyo(1, 18))
    result = jobs.run_sweep(app, tokyo(1, 19))
    assert len(result.flags) == 1 and len(hook.requests) == 1
    (n,) = w.notifications()
    assert n.channel == "webhook" and n.sent_at is None and n.attempts == 1
    assert "500" in n.last_error and n.next_attempt_at > tokyo(1, 19)

    hook.status = 200
    assert jobs.run_delivery(app, tokyo(1, 19, 5)) == (1, 0)
    assert jobs.run_delivery(app, tokyo(1, 19, 50)) == (0, 0)
    assert len(hook.requests) == 2 and hook.posts()[0] == hook.posts()[1]
    (n,) = w.notifications()
    assert n.sent_at == tokyo(1, 19, 5) and n.last_error is None


def test_two_deliverers_at_once_send_each_message_once(new_app, world_for):
    port = free_port()
    app = new_app(SMTP_HOST="127.0.0.1", SMTP_PORT=port, DESK_EMAILS="d1@example.com, d2@example.com")
    w = world_for(app)
    people = [w.user(f"P{i}") for i in range(4)]
    for p in people:
        w.out(w.item(f"L-{p.name}"), p, tokyo(1, 18))
    jobs.run_sweep(app, tokyo(1, 19))  # server down: six messages wait
    assert len(w.notifications()) == 6

    with SmtpServer(port=port, overlap=2) as server:
        barrier = threading.Barrier(2)
        outcomes: list = []

        def deliver():
            barrier.wait()
            try:
                outcomes.append(jobs.run_delivery(app, tokyo(1, 19, 5)))
            except Exception as exc:  # pragma: no cover - shown by the assertion
                outcomes.append(repr(exc))

        threads = [threading.Thread(target=deliver) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert all(isinstance(o, tuple) for o in outcomes), outcomes
        assert sum(o[0] for o in outcomes) == 6 and sum(o[1] for o in outcomes) == 0
        recipients = sorted(r for rcpt, _, _ in server.inbox.messages for r in rcpt)
    assert recipients == sorted([p.email for p in people] + ["d1@example.com", "d2@example.com"])
    assert all(n.attempts == 2 and n.sent_at is not None for n in w.notifications())


def test_nothing_is_queued_without_smtp_or_webhook(new_app, world_for):
    app = new_app(DESK_EMAILS="desk@example.com")
    w = world_for(app)
    w.out(w.item("L1"), w.user("Ann"), tokyo(1, 18))
    result = jobs.run_sweep(app, tokyo(1, 19))
    assert len(result.flags) == 1 and w.notifications() == []



# --- what a chat shows, and claims that last ----------------------------------------------------------------------


@pytest.mark.parametrize("fmt, shown, not_shown", [
    ("slack", "&lt;!channel&gt; &lt;https://evil.example|win&gt; &amp;", "<!channel>"),
    ("teams", r"\[click\]\(https://evil.example\)", "[click](https://evil.example)"),
])
def test_names_and_destinations_arrive_in_the_chat_as_text(new_app, world_for, hook, fmt, shown, not_shown):
    app = new_app(WEBHOOK_URL=hook.url, WEBHOOK_FORMAT=fmt)
    w = world_for(app)
    mallory = w.user("<!channel> <https://evil.example|win> &", language="en")
    laptop = w.item("Laptop")
    w.out(laptop, mallory, tokyo(1, 18), destination="[click](https://evil.example)")
    jobs.run_sweep(app, tokyo(1, 19))
    (post,) = hook.posts()
    assert shown in post["text"] and not_shown not in post["text"]


def test_a_slow_delivery_pass_never_lets_a_second_deliverer_send_the_same_message(app, hook, monkeypatch):
    """Each message is claimed when its turn comes, for longer than sending it can take: a pass that spent eleven
    minutes on its first message still holds its second while it sends it, so a second deliverer leaves it alone."""
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as s:
        for n in range(2):
            s.add(Notification(channel="webhook", recipient=hook.url, subject=f"m{n}", body=f"m{n}",
                               created_at=tokyo(1, 19, 30), attempts=0, next_attempt_at=tokyo(1, 19, 30)))
        s.commit()
    moment = {"now": tokyo(1, 19, 30)}
    monkeypatch.setattr(clock, "now", lambda: moment["now"])
    real_post, second = delivery.post_webhook, []

    def slow_post(url, text):
        real_post(url, text)
        moment["now"] += timedelta(minutes=11)  # a mail server or chat this slow is cut off in real life
        if text == "m1":  # the second message is still being sent: another deliverer starts now
            second.append(delivery.deliver(maker, moment["now"], app.config))

    monkeypatch.setattr(delivery, "post_webhook", slow_post)
    assert delivery.deliver(maker, tokyo(1, 19, 30), app.config) == (2, 0)
    assert second == [(0, 0)]
    assert [p["text"] for p in hook.posts()] == ["m0", "m1"]


def test_webhooks_go_out_before_e_mail_so_a_slow_mail_server_never_holds_up_the_chat(app, hook, monkeypatch):
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=free_port())  # nobody listens: the mail fails, later
    maker = app.extensions["tracker.sessionmaker"]
    with maker() as s:
        for channel, recipient in (("email", "desk@example.com"), ("email", "staff@example.com"),
                                   ("webhook", hook.url)):
            s.add(Notification(channel=channel, recipient=recipient, subject="s", body=channel, created_at=NOW,
                               attempts=0, next_attempt_at=NOW))
        s.commit()
    order = []
    real_email, real_post = delivery.send_email, delivery.post_webhook
    monkeypatch.setattr(delivery, "send_email", lambda *a: (order.append("email"), real_email(*a)))
    monkeypatch.setattr(delivery, "post_webhook", lambda *a: (order.append("webhook"), real_post(*a)))
    assert delivery.deliver(maker, NOW, app.config) == (1, 2)
    assert order == ["webhook", "email", "email"]
    assert delivery.SMTP_TIMEOUT <= 10 and delivery.WEBHOOK_TIMEOUT <= 5


# --- a stock-take's missing items ----------------------------------------------------------------------------------


def test_a_stock_take_that_finds_items_missing_tells_each_sites_desk_and_the_chat(new_app, world_for, smtp, hook):
    """Closed by one desk person, it reaches the whole desk: each item's site's addresses (the main office's from
    the settings) get the list, the webhook one message, in the default language; a close with nothing missing
    sends nothing."""
    from tests.helpers import client_for, post
    from tracker.items import sites as sites_mod

    app = new_app(**smtp_config(smtp), WEBHOOK_URL=hook.url, DEFAULT_LANGUAGE="en")
    w = world_for(app)
    osaka = sites_mod.create_site(w.s, NOW, name="Osaka", timezone="Asia/Tokyo", day_end="19:00",
                                  desk_emails="osaka-desk@example.com", actor=None)
    w.s.commit()
    found, tokyo_usb = w.item("Found laptop"), w.item("Payroll USB", kind=Kind.usb)
    osaka_folder = w.item("Osaka contracts", kind=Kind.folder)
    osaka_folder.site_id = osaka.id
    w.s.commit()
    closer = users.create(w.s, NOW, email="closer@example.com", name="Closer Desk", role="security",
                          password=PASSWORD, actor=None, must_change_password=False)
    w.s.commit()
    desk = client_for(app, closer)

    def stocktake(count: list) -> int:
        resp = post(desk, "/stocktakes/", {"scope": "all"}, page="/stocktakes/")
        st = int(resp.headers["Location"].rstrip("/").rsplit("/", 1)[1])
        for item in count:
            post(desk, f"/stocktakes/{st}/count", {"code": item.asset_tag, "js": "1"}, page=f"/stocktakes/{st}")
        assert post(desk, f"/stocktakes/{st}/close", page=f"/stocktakes/{st}").status_code == 303
        return st

    st = stocktake([found])
    jobs.run_delivery(app, clock.now())  # the pages ran on the real clock
    main = [smtp.inbox.to(a) for a in ("desk1@example.com", "desk2@example.com")]
    assert all(len(m) == 1 for m in main)
    body = main[0][0].get_content()
    assert str(main[0][0]["Subject"]) == f"Stock-take {st}: 1 item(s) missing"
    assert f"- {tokyo_usb.asset_tag} (Payroll USB) Personal data" in body and found.asset_tag not in body
    assert osaka_folder.asset_tag not in body and f"/stocktakes/{st}" in body
    (osaka_mail,) = smtp.inbox.to("osaka-desk@example.com")
    assert osaka_folder.asset_tag in osaka_mail.get_content() and tokyo_usb.asset_tag not in osaka_mail.get_content()
    (post_,) = hook.posts()
    assert tokyo_usb.asset_tag in json.dumps(post_) and osaka_folder.asset_tag in json.dumps(post_)

    before = len(smtp.inbox.messages)
    stocktake([found, tokyo_usb, osaka_folder])  # everything counted: nothing to tell
    jobs.run_delivery(app, clock.now())
    assert len(smtp.inbox.messages) == before and len(hook.requests) == 1
