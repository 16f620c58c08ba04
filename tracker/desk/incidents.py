"""Incidents for lost items: opened when the desk marks a flag lost, then actions, the assessment, closing."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import audit
from ..models import Checkout, Flag, Incident, IncidentAction, User
from .common import clean_note, desk_only

HANDOVERS_BACK = 20  # how far back a chain of hand-overs is followed for the last known place


def last_known_place(session: Session, co: Checkout) -> str | None:
    """Where the item was last said to be going: this check-out's destination or, after a hand-over (which starts
    with no destination), the destination of the check-out it was handed over from, and so on back."""
    for _ in range(HANDOVERS_BACK):
        if co.destination:
            return co.destination
        before = session.scalar(select(Checkout).where(
            Checkout.item_id == co.item_id, Checkout.returned_at == co.out_at, Checkout.id != co.id,
            Checkout.holder_id != co.holder_id).order_by(Checkout.id.desc()).limit(1))
        if before is None:
            return None
        co = before
    return None


def open_for_lost(session: Session, now: datetime, flag: Flag, actor: User, note: str) -> Incident:
    """The incident record of a lost item: what it held, and where, when and with whom it was last known (for an
    item a stock-take found missing: its last count and its home place)."""
    co, item = flag.checkout, flag.item
    if co is not None:
        known = dict(checkout_id=co.id, holder_id=co.holder_id, last_known_at=co.out_at,
                     last_known_place=last_known_place(session, co))
    else:
        known = dict(last_known_at=item.last_counted_at,
                     last_known_place=item.home_place.name if item.home_place else None)
    incident = Incident(item_id=item.id, flag_id=flag.id, opened_at=now, opened_by_id=actor.id,
                        known_at=now, **known, data_class=item.data_class,
                        encrypted=item.encrypted, people_count=item.people_count,
                        # Never assumed: the desk confirms the encryption was proper and the key not lost with it.
                        properly_encrypted=False,
                        summary=note)
    session.add(incident)
    session.flush()
    session.add(IncidentAction(incident_id=incident.id, at=now, actor_id=actor.id,
                               text=note or "Marked lost; incident opened."))
    session.flush()
    return incident


def add_action(session: Session, now: datetime, incident: Incident, actor: User, text: str,
               source: str | None = None) -> IncidentAction:
    desk_only(actor)
    action = IncidentAction(incident_id=incident.id, at=now, actor_id=actor.id, text=clean_note(text, required=True))
    session.add(action)
    session.flush()
    audit.record(session, now, "incident_action", actor=actor, item=incident.item, source=source,
                 incident=incident.id)
    return action


def assess(session: Session, now: datetime, incident: Incident, actor: User, *, financial_harm: bool,
           wrongful_purpose: bool, properly_encrypted: bool, source: str | None = None) -> Incident:
    desk_only(actor)
    incident.financial_harm, incident.wrongful_purpose = financial_harm, wrongful_purpose
    incident.properly_encrypted = properly_encrypted
    session.flush()
    audit.record(session, now, "incident_assessed", actor=actor, item=incident.item, source=source,
                 incident=incident.id, financial_harm=financial_harm, wrongful_purpose=wrongful_purpose,
                 properly_encrypted=properly_encrypted)
    return incident


def close_incident(session: Session, now: datetime, incident: Incident, actor: User, source: str | None = None):
    desk_only(actor)
    incident.closed_at = now
    session.flush()
    audit.record(session, now, "incident_closed", actor=actor, item=incident.item, source=source,
                 incident=incident.id)
