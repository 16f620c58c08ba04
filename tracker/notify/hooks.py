"""Event webhooks for integrations: admins subscribe a URL to chosen audit actions; each event of those actions is
queued in the outbox in the transaction that records it (audit's `events_chained` signal, connected by the app),
and delivered as signed JSON with the outbox's retries (tracker.notify.delivery).

A receiver checks `X-Tracker-Signature: t=<unix time>,v1=<hex HMAC-SHA256 of "<t>.<body>">` with the subscription's
secret and refuses a `t` older than five minutes, so a captured delivery cannot be replayed later.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import secrets
from datetime import UTC, datetime
from typing import NamedTuple
from urllib.parse import urlsplit

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from .. import audit
from ..errors import N_, DomainError
from ..i18n import EVENT_LABELS
from ..models import EventWebhook, Item, Notification, User

# Every audit action but the API's own request log: a receiver that calls the API would otherwise feed itself.
EVENT_TYPES = tuple(a for a in EVENT_LABELS if a not in ("api_request", "event_webhook_changed"))
_SUBSCRIBABLE = frozenset(EVENT_TYPES)
CHANNEL = "event"
SIGNATURE_HEADER = "X-Tracker-Signature"
EVENT_HEADER = "X-Tracker-Event"
REPLAY_WINDOW = 300  # seconds a receiver accepts a signature's time stamp


class InvalidWebhook(DomainError):
    message = N_("The webhook could not be saved.")


BAD_URL = N_("Enter an https:// address (http:// only for localhost), with a host name.")
NO_EVENTS = N_("Choose at least one kind of event.")


def url_problem(url: str) -> str | None:
    """Why `url` cannot receive events (an N_ message), or None: https only, so a typo never sends personal data
    in clear over the internet; plain http only to this machine (a local relay, and the tests)."""
    parts = urlsplit((url or "").strip())
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("https", "http") or len(url) > 500:
        return BAD_URL
    if parts.scheme == "http" and not _loopback(host):
        return BAD_URL
    return None


def _loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check(name: str, url: str, events: list[str]) -> tuple[str, str, str]:
    name, url = (name or "").strip(), (url or "").strip()
    if not name or len(name) > 100:
        raise InvalidWebhook(N_("Enter a name of up to 100 characters."), about="name")
    if problem := url_problem(url):
        raise InvalidWebhook(problem, about="url")
    chosen = [e for e in EVENT_TYPES if e in set(events)]
    if not chosen or len(chosen) != len(set(events)):
        raise InvalidWebhook(NO_EVENTS, about="events")
    return name, url, ",".join(chosen)


def create(session: Session, now: datetime, *, name: str, url: str, events: list[str], actor: User | None,
           source: str | None = None) -> EventWebhook:
    """A new active subscription with a fresh secret (the caller shows it once)."""
    name, url, chosen = _check(name, url, events)
    hook = EventWebhook(name=name, url=url, events=chosen, secret=_new_secret(), active=True, created_at=now,
                        created_by_id=actor.id if actor else None)
    session.add(hook)
    session.flush()
    _audit(session, now, hook, "created", actor, source)
    return hook


def update_hook(session: Session, now: datetime, hook: EventWebhook, *, name: str, url: str, events: list[str],
                actor: User | None, source: str | None = None) -> None:
    hook.name, hook.url, hook.events = _check(name, url, events)
    session.flush()
    _audit(session, now, hook, "updated", actor, source)


def set_active(session: Session, now: datetime, hook: EventWebhook, active: bool, *, actor: User | None,
               source: str | None = None) -> None:
    """Disabling stops new deliveries at once; those already queued are not sent (delivery checks the flag)."""
    hook.active = active
    session.flush()
    _audit(session, now, hook, "enabled" if active else "disabled", actor, source)


def rotate(session: Session, now: datetime, hook: EventWebhook, *, actor: User | None,
           source: str | None = None) -> str:
    """A new secret, used for every delivery from now on (retries included); the old one stops verifying."""
    hook.secret = _new_secret()
    session.flush()
    _audit(session, now, hook, "secret_rotated", actor, source)
    return hook.secret


def delete(session: Session, now: datetime, hook: EventWebhook, *, actor: User | None,
           source: str | None = None) -> None:
    """Remove the subscription; its deliveries stay listed (unsent ones marked failed), without the link."""
    _audit(session, now, hook, "deleted", actor, source, listen=False)
    session.execute(update(Notification).where(Notification.subscription_id == hook.id,
                                               Notification.sent_at.is_(None), Notification.failed_at.is_(None))
                    .values(failed_at=now, last_error="Undeliverable: the subscription was deleted")
                    .execution_options(synchronize_session=False))
    session.execute(update(Notification).where(Notification.subscription_id == hook.id)
                    .values(subscription_id=None).execution_options(synchronize_session=False))
    session.delete(hook)
    session.flush()
    _listen(session)


def _new_secret() -> str:
    return "whsec_" + secrets.token_urlsafe(32)


def _audit(session, now, hook, change, actor, source, listen: bool = True) -> None:
    """The change's audit event; then, unless the caller does it once its change is made (`listen` False), the
    trail learns what the subscriptions now listen to."""
    _forget(session)
    audit.record(session, now, "event_webhook_changed", actor=actor, source=source, webhook=hook.id,
                 name=hook.name, url=hook.url, change=change)
    if listen:
        _listen(session)


def _listen(session: Session) -> None:
    """Tell the trail which actions the active subscriptions chose: it hands over events of those only."""
    _forget(session)
    audit.listen_to(session, set().union(*(h.events for h in _active(session))))


# --- queueing, in the transaction that records the events -----------------------------------------------------


def on_events(session: Session, *, rows: list[dict]) -> None:
    """Queue one delivery per subscription per event of an action it chose (audit's `events_chained`, sent only
    for events of the actions `_listen` named: a take-out with no webhook on it reads no subscription)."""
    actions = {r["action"] for r in rows}
    if not actions & _SUBSCRIBABLE:
        return
    hooks = [h for h in _active(session) if h.events & actions]
    for row in rows:
        for hook in hooks:
            if row["action"] in hook.events:
                session.add(Notification(channel=CHANNEL, recipient=hook.url, subject=row["action"],
                                         body=payload(session, row), created_at=row["at"], attempts=0,
                                         next_attempt_at=row["at"], subscription_id=hook.id))


class _Active(NamedTuple):
    id: int
    url: str
    events: frozenset[str]


_ACTIVE = "tracker.hooks.active"
_ACTIVE_HOOKS = select(EventWebhook.id, EventWebhook.url, EventWebhook.events).where(EventWebhook.active.is_(True))


def _active(session: Session) -> list[_Active]:
    """The active subscriptions, read once per transaction (a bag's check-out records an event per item), as
    rows."""
    txn = session.get_transaction()
    cached = session.info.get(_ACTIVE)
    if cached is None or cached[0] is not txn:
        found = [_Active(i, url, frozenset(e for e in events.split(",") if e))
                 for i, url, events in session.connection().execute(_ACTIVE_HOOKS)]
        cached = session.info[_ACTIVE] = (txn, found)
    return cached[1]


def _forget(session: Session) -> None:
    """A subscription changed in this transaction: read them again at the next event."""
    session.info.pop(_ACTIVE, None)


def payload(session: Session, row: dict) -> str:
    """The delivery's body: the event as the trail holds it, with who and what by name, and its chain hash."""
    return json.dumps({
        "id": row["seq"], "type": row["action"], "occurred_at": _utc(row["at"]),
        "actor": _person(session, row["actor_id"]), "item": _item(session, row["item_id"]),
        "subject": _person(session, row["subject_user_id"]), "data": json.loads(row["data"] or "{}"),
        "hash": row["hash"],
    }, ensure_ascii=False, sort_keys=True)


def _utc(at: datetime) -> str:
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _person(session: Session, user_id: int | None) -> dict | None:
    user = session.get(User, user_id) if user_id else None
    return {"id": user.id, "name": user.name, "email": user.email} if user else None


def _item(session: Session, item_id: int | None) -> dict | None:
    item = session.get(Item, item_id) if item_id else None
    return {"id": item.id, "asset_tag": item.asset_tag, "name": item.name, "kind": item.kind.value} if item else None


# --- signing, at delivery ---------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The header value: the time of sending and the HMAC over "<time>.<body>", so the time cannot be changed."""
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"
