"""Notifications people act on: one digest per holder, one to the desk, and a chat webhook.

Messages are queued in the same transaction as the sweep (so a sweep never half-notifies) and delivered
afterwards with retries and backoff; a failure never fails the sweep and is shown to admins.
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from collections import defaultdict
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime as email_date
from email.utils import make_msgid

from flask_babel import force_locale, format_datetime
from flask_babel import gettext as _
from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from .models import Checkout, Notification

BACKOFF = [timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30), timedelta(hours=2), timedelta(hours=6)]
MAX_ATTEMPTS = len(BACKOFF) + 1


def _queue(session: Session, now: datetime, channel: str, recipient: str, subject: str, body: str) -> None:
    session.add(Notification(channel=channel, recipient=recipient, subject=subject, body=body, created_at=now,
                             attempts=0, next_attempt_at=now))


def _line(co: Checkout) -> str:
    where = f" → {co.destination}" if co.destination else ""
    return f"- {co.item.asset_tag} ({co.item.name}) {_('Due back')}: {format_datetime(co.due_at, 'short')}{where}"


def _desk_line(co: Checkout) -> str:
    phone = f", {co.holder.phone}" if co.holder.phone else ""
    return f"{_line(co)} — {co.holder.name} <{co.holder.email}>{phone}"


def queue_overdue(session: Session, now: datetime, checkouts: list[Checkout], config: dict) -> int:
    """Queue the overdue digests for what a sweep flagged: one per holder, one to the desk, one webhook call."""
    if not checkouts:
        return 0
    count = 0
    email = bool(config.get("SMTP_HOST"))
    by_holder: dict[int, list[Checkout]] = defaultdict(list)
    for co in checkouts:
        by_holder[co.holder_id].append(co)
    default = config.get("DEFAULT_LANGUAGE", "ja")
    if email:
        for cos in by_holder.values():
            holder = cos[0].holder
            with force_locale(holder.language or default):
                subject = _("Overdue: please return %(n)d item(s) or contact the security desk", n=len(cos))
                body = "\n".join([_("Hello %(name)s,", name=holder.name), "",
                                  _("These items are past their due time:"), *[_line(c) for c in cos], "",
                                  _("Bring them back, or tell the security desk when you will."),
                                  f"{config['BASE_URL']}/my"])
            _queue(session, now, "email", holder.email, subject, body)
            count += 1
    with force_locale(default):
        subject = _("%(n)d item(s) overdue", n=len(checkouts))
        desk_body = "\n".join([_("Overdue at the day end:"), *[_desk_line(c) for c in checkouts], "",
                               f"{config['BASE_URL']}/desk/"])
    if email:
        for address in _addresses(config.get("DESK_EMAILS", "")):
            _queue(session, now, "email", address, subject, desk_body)
            count += 1
    if config.get("WEBHOOK_URL"):
        _queue(session, now, "webhook", config["WEBHOOK_URL"], subject, f"{subject}\n{desk_body}")
        count += 1
    return count


def queue_reminders(session: Session, now: datetime, checkouts: list[Checkout], config: dict) -> int:
    """One reminder per holder for items due soon."""
    if not checkouts or not config.get("SMTP_HOST"):
        return 0
    by_holder: dict[int, list[Checkout]] = defaultdict(list)
    for co in checkouts:
        by_holder[co.holder_id].append(co)
    for cos in by_holder.values():
        holder = cos[0].holder
        with force_locale(holder.language or config.get("DEFAULT_LANGUAGE", "ja")):
            subject = _("Reminder: %(n)d item(s) due back soon", n=len(cos))
            body = "\n".join([_("Hello %(name)s,", name=holder.name), "", _("These items are due back soon:"),
                              *[_line(c) for c in cos], "", f"{config['BASE_URL']}/my"])
        _queue(session, now, "email", holder.email, subject, body)
    return len(by_holder)


def _addresses(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(",") if a.strip()]


def send_email(config: dict, to: str, subject: str, body: str) -> None:
    msg = EmailMessage()
    msg["From"] = config.get("SMTP_FROM") or "tracker@localhost"
    msg["To"] = to
    msg["Subject"] = subject
    msg["Date"] = email_date(datetime.now().astimezone())
    msg["Message-ID"] = make_msgid(domain="tracker")
    msg.set_content(body)
    host, port = config["SMTP_HOST"], int(config.get("SMTP_PORT") or 0)
    context = ssl.create_default_context()
    if config.get("SMTP_CAFILE"):
        context.load_verify_locations(config["SMTP_CAFILE"])
    if config.get("SMTP_TLS"):
        client = smtplib.SMTP_SSL(host, port or 465, timeout=20, context=context)
    else:
        client = smtplib.SMTP(host, port or 25, timeout=20)
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
    with urllib.request.urlopen(req, timeout=10) as resp:  # noqa: S310 - scheme checked above
        if resp.status >= 300:
            raise RuntimeError(f"webhook answered {resp.status}")


def deliver(make_session: sessionmaker, now: datetime, config: dict, limit: int = 50) -> tuple[int, int]:
    """Send what is due; each message is claimed first, so two deliverers never send one twice."""
    sent = failed = 0
    with make_session() as s:
        ids = list(s.scalars(select(Notification.id).where(
            Notification.sent_at.is_(None), Notification.failed_at.is_(None), Notification.next_attempt_at <= now)
            .order_by(Notification.id).limit(limit)))
        s.commit()
    for nid in ids:
        with make_session() as s:
            claimed = s.execute(update(Notification).where(Notification.id == nid, Notification.sent_at.is_(None),
                                                           Notification.next_attempt_at <= now)
                                .values(next_attempt_at=now + timedelta(minutes=10))
                                .execution_options(synchronize_session=False))
            n = s.get(Notification, nid)
            channel, recipient, subject, body = n.channel, n.recipient, n.subject, n.body
            s.commit()  # never hold a database lock while talking to a mail server
        if claimed.rowcount != 1:
            continue
        error = None
        try:
            if channel == "email":
                send_email(config, recipient, subject, body)
            else:
                post_webhook(recipient, body)
        except Exception as exc:  # any delivery failure is recorded and retried, never raised
            error = f"{type(exc).__name__}: {exc}"[:1000]
        with make_session() as s:
            n = s.get(Notification, nid)
            n.attempts += 1
            if error is None:
                n.sent_at, n.last_error = now, None
                sent += 1
            else:
                n.last_error = error
                if n.attempts >= MAX_ATTEMPTS:
                    n.failed_at = now
                else:
                    n.next_attempt_at = now + BACKOFF[n.attempts - 1]
                failed += 1
            s.commit()
    return sent, failed
