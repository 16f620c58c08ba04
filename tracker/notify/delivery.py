"""Delivery of the outbox: e-mail over SMTP and a chat webhook, each message claimed once, retried with
backoff, and never sent while a database lock is held; failures are kept for the admins' page."""

from __future__ import annotations

import json
import logging
import smtplib
import ssl
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime as email_date
from email.utils import make_msgid

from sqlalchemy import case, select, update
from sqlalchemy.orm import sessionmaker

from .. import clock
from ..errors import N_
from ..models import Notification
from . import hooks

BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6)]
MAX_ATTEMPTS = len(BACKOFF) + 1
SMTP_TIMEOUT = 10  # seconds per network step; a mail server slower than that is retried later
WEBHOOK_TIMEOUT = 5
# A claimed message is left alone this long: far more than sending one can take (a handful of network steps,
# each cut off by the timeouts above), so a second deliverer never sends it again while the first still is.
LEASE = timedelta(minutes=15)
log = logging.getLogger(__name__)


def send_email(config: dict, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = config.get("SMTP_FROM") or "tracker@localhost"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email_date(clock.now())
    msg["Message-ID"] = make_msgid(domain="tracker")
    msg.set_content(body)
    host, port = config["SMTP_HOST"], int(config.get("SMTP_PORT") or 0)
    context = ssl.create_default_context()
    if config.get("SMTP_CAFILE"):
        context.load_verify_locations(config["SMTP_CAFILE"])
    if config.get("SMTP_TLS"):
        client = smtplib.SMTP_SSL(host, port or 465, timeout=SMTP_TIMEOUT, context=context)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=SMTP_TIMEOUT)
    with client:
        if config.get("SMTP_STARTTLS") and not config.get("SMTP_TLS"):
            client.starttls(context=context)
        if config.get("SMTP_USER"):
            client.login(config["SMTP_USER"], config.get("SMTP_PASSWORD") or "")
        client.send_message(msg)


def post_webhook(url: str, text: str) -> None:
    """POST {"text": ...}: the shape Slack and Microsoft Teams incoming webhooks both accept."""
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError("the webhook URL must start with https:// or http://")
    data = json.dumps({"text": text}, ensure_ascii=False).encode("utf-8")
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"}, method="POST")  # noqa: S310 - scheme checked above
    with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:  # noqa: S310 - scheme checked above
        if resp.status >= 300:
            raise RuntimeError(f"webhook answered {resp.status}")


class Undeliverable(Exception):
    """A message that no retry can send (its event webhook was disabled or deleted): it fails at once."""


def post_event(url: str, secret: str | None, event_type: str, body: str) -> None:
    """POST an event webhook's JSON body, signed now (not when queued), so a retry carries a fresh time stamp."""
    if secret is None:
        raise Undeliverable("the event webhook is disabled or deleted")
    if hooks.url_problem(url):
        raise Undeliverable("the webhook address must start with https:// (http:// only for localhost)")
    data = body.encode("utf-8")
    headers = {"Content-Type": "application/json", "User-Agent": "tracker-webhooks/1",
               hooks.EVENT_HEADER: event_type,
               hooks.SIGNATURE_HEADER: hooks.signature(secret, int(clock.now().timestamp()), data)}
    req = urllib.request.Request(url, data=data, headers=headers, method="POST")  # noqa: S310 - scheme checked above
    try:
        with urllib.request.urlopen(req, timeout=WEBHOOK_TIMEOUT) as resp:  # noqa: S310 - scheme checked above
            status = resp.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    if status >= 300:
        raise RuntimeError(f"the receiver answered {status}")


# Why a message failed, in words a person understands; the technical detail stays beside it, folded.
_REASONS = (
    ("auth", N_("The mail server refused the user name or password (TRACKER_SMTP_USER, TRACKER_SMTP_PASSWORD).")),
    ("refused", N_("The server refused the connection: check the host and port.")),
    ("timed out", N_("The server did not answer in time.")),
    ("timeout", N_("The server did not answer in time.")),
    ("name or service not known", N_("The server's name could not be found: check the host name.")),
    ("getaddrinfo", N_("The server's name could not be found: check the host name.")),
    ("certificate", N_("The secure connection failed: the server's certificate was not trusted.")),
    ("ssl", N_("The secure connection failed.")),
    ("recipient", N_("The mail server refused the address.")),
    ("undeliverable", N_("Not sent: the event webhook was disabled or deleted, or its address is not allowed.")),
    ("receiver answered", N_("The receiving service answered with an error.")),
    ("webhook answered", N_("The chat service refused the message.")),
    ("http error", N_("The chat service refused the message.")),
    ("must start with", N_("The webhook address must start with https:// or http://.")),
)


def reason(error: str | None) -> str | None:
    """The plain-words reason for a stored delivery error (a translatable N_ string), or None."""
    if not error:
        return None
    lowered = error.lower()
    return next((text for key, text in _REASONS if key in lowered), N_("Sending failed."))


def deliver(make_session: sessionmaker, now: datetime, config: dict, limit: int = 50) -> tuple[int, int]:
    """Send what is due, webhooks first (a slow mail server never holds up the chat); each message is claimed
    just before it is sent, for longer than its sending can take, so two deliverers never send one twice."""
    sent = failed = 0
    started = clock.now()
    with make_session() as s:
        ids = list(s.scalars(select(Notification.id).where(
            Notification.sent_at.is_(None), Notification.failed_at.is_(None), Notification.next_attempt_at <= now)
            .order_by(case((Notification.channel == "email", 1), else_=0), Notification.id).limit(limit)))
        s.commit()
    for nid in ids:
        claim_at = now + (clock.now() - started)  # this claim's own moment, however long the pass has run
        with make_session() as s:
            claimed = s.execute(update(Notification).where(Notification.id == nid, Notification.sent_at.is_(None),
                                                           Notification.next_attempt_at <= claim_at)
                                .values(next_attempt_at=claim_at + LEASE)
                                .execution_options(synchronize_session=False))
            n = s.get(Notification, nid)
            channel, recipient, subject, body = n.channel, n.recipient, n.subject, n.body
            hook = n.subscription
            secret = hook.secret if hook is not None and hook.active else None
            s.commit()  # never hold a database lock while talking to a mail server
        if claimed.rowcount != 1:
            continue
        error, final = None, False
        try:
            if channel == "email":
                send_email(config, recipient, subject, body)
            elif channel == hooks.CHANNEL:
                post_event(recipient, secret, subject, body)
            else:
                post_webhook(recipient, body)
        except Exception as exc:  # any delivery failure is logged, kept for the admins' page and retried
            error = f"{type(exc).__name__}: {exc}"[:1000]
            final = isinstance(exc, Undeliverable)
            log.warning("notification %d to %s failed: %s", nid, channel, error)
        with make_session() as s:
            n = s.get(Notification, nid)
            n.attempts += 1
            if error is None:
                n.sent_at, n.last_error = now, None
                sent += 1
            else:
                n.last_error = error
                if final or n.attempts >= MAX_ATTEMPTS:
                    n.failed_at = now
                else:
                    n.next_attempt_at = now + BACKOFF[n.attempts - 1]
                failed += 1
            s.commit()
    return sent, failed
