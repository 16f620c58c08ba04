"""The life of an overdue flag on the security desk: acknowledge, resolve, or mark lost (opening an incident)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from . import audit, custody
from .errors import N_, InvalidInput, NotPermitted
from .models import DataClass, Flag, FlagStatus, Incident, IncidentAction, Role, User
from .policy import Policy

OPEN = (FlagStatus.open, FlagStatus.acknowledged)
NOTE_LIMIT = 2000


def _desk(actor: User) -> None:
    if actor.role not in (Role.security, Role.admin):
        raise NotPermitted()


def _note(text: str | None, required: bool = False) -> str:
    text = (text or "").strip()
    if required and not text:
        raise InvalidInput(N_("%(field)s is required."), field=N_("Note"))
    if len(text) > NOTE_LIMIT:
        raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."), field=N_("Note"),
                           limit=NOTE_LIMIT)
    return text


def _open(flag: Flag) -> None:
    if flag.status not in OPEN:
        raise InvalidInput(N_("This flag is already closed."))


def acknowledge(session: Session, now: datetime, flag: Flag, actor: User, note: str,
                new_due: datetime | None = None, source: str | None = None) -> Flag:
    """Record that the desk is on it (for example 'called: bringing it back tomorrow 9:00'), maybe with a new due."""
    _desk(actor)
    _open(flag)
    note = _note(note, required=True)
    if new_due is not None:
        if new_due <= now:
            raise InvalidInput(N_("The due time must be in the future."))
        flag.checkout.due_at = new_due
    flag.status, flag.note = FlagStatus.acknowledged, note
    flag.acknowledged_at, flag.acknowledged_by_id = now, actor.id
    session.flush()
    audit.record(session, now, "flag_acknowledged", actor=actor, item=flag.item, checkout=flag.checkout,
                 source=source, note=note, new_due=new_due.isoformat() if new_due else None)
    return flag


def resolve(session: Session, now: datetime, flag: Flag, actor: User, how: str, confirmed_by: str = "",
            note: str = "", source: str | None = None) -> Flag:
    """Close the flag: the item came back (returned now) or someone confirmed it is safe."""
    _desk(actor)
    _open(flag)
    note = _note(note)
    if how == "returned":
        if flag.checkout.returned_at is None:
            custody.return_item(session, now, item=flag.item, actor=actor, source=source)
        flag.status, flag.resolution = FlagStatus.resolved, "returned"
    elif how == "confirmed_safe":
        confirmed_by = (confirmed_by or "").strip()
        if not confirmed_by:
            raise InvalidInput(N_("Say who confirmed that the item is safe."))
        if len(confirmed_by) > 200:
            raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."),
                               field=N_("Confirmed by"), limit=200)
        flag.status, flag.resolution, flag.confirmed_by = FlagStatus.resolved, "confirmed_safe", confirmed_by
    else:
        raise InvalidInput(N_("Choose how the flag was resolved."))
    flag.closed_at, flag.closed_by_id = now, actor.id
    if note:
        flag.note = note
    session.flush()
    audit.record(session, now, "flag_resolved", actor=actor, item=flag.item, checkout=flag.checkout, source=source,
                 how=how, confirmed_by=confirmed_by, note=note)
    return flag


def mark_lost(session: Session, now: datetime, flag: Flag, actor: User, note: str,
              source: str | None = None) -> Incident:
    """The item is lost: close the flag as lost and open an incident with what the item held."""
    _desk(actor)
    _open(flag)
    note = _note(note)
    co, item = flag.checkout, flag.item
    flag.status, flag.resolution, flag.closed_at, flag.closed_by_id = FlagStatus.lost, "lost", now, actor.id
    incident = Incident(item_id=item.id, checkout_id=co.id, flag_id=flag.id, opened_at=now, opened_by_id=actor.id,
                        known_at=now, holder_id=co.holder_id, last_known_at=co.out_at,
                        last_known_place=co.destination or None, data_class=item.data_class,
                        encrypted=item.encrypted, people_count=item.people_count,
                        # Never assumed: the desk confirms the encryption was proper and the key not lost with it.
                        properly_encrypted=False,
                        summary=note)
    session.add(incident)
    session.flush()
    session.add(IncidentAction(incident_id=incident.id, at=now, actor_id=actor.id,
                               text=note or "Marked lost; incident opened."))
    session.flush()
    audit.record(session, now, "item_lost", actor=actor, item=item, checkout=co, source=source, incident=incident.id)
    return incident


def add_action(session: Session, now: datetime, incident: Incident, actor: User, text: str,
               source: str | None = None) -> IncidentAction:
    _desk(actor)
    action = IncidentAction(incident_id=incident.id, at=now, actor_id=actor.id, text=_note(text, required=True))
    session.add(action)
    session.flush()
    audit.record(session, now, "incident_action", actor=actor, item=incident.item, source=source,
                 incident=incident.id)
    return action


def assess(session: Session, now: datetime, incident: Incident, actor: User, *, financial_harm: bool,
           wrongful_purpose: bool, properly_encrypted: bool, source: str | None = None) -> Incident:
    _desk(actor)
    incident.financial_harm, incident.wrongful_purpose = financial_harm, wrongful_purpose
    incident.properly_encrypted = properly_encrypted
    session.flush()
    audit.record(session, now, "incident_assessed", actor=actor, item=incident.item, source=source,
                 incident=incident.id, financial_harm=financial_harm, wrongful_purpose=wrongful_purpose,
                 properly_encrypted=properly_encrypted)
    return incident


def close_incident(session: Session, now: datetime, incident: Incident, actor: User, source: str | None = None):
    _desk(actor)
    incident.closed_at = now
    session.flush()
    audit.record(session, now, "incident_closed", actor=actor, item=incident.item, source=source,
                 incident=incident.id)


@dataclass
class ReportDuty:
    """What Japan's APPI asks the business to report to the Personal Information Protection Commission."""

    sensitive: bool
    over_1000: bool
    financial_harm: bool
    wrongful_purpose: bool
    exempt_by_encryption: bool
    required: bool
    known_on: date
    preliminary_by: date  # 'promptly': the PPC guidelines read this as about 3 to 5 days
    final_by: date  # 30 days, or 60 when the leak may be for a wrongful purpose


def report_duty(incident: Incident, policy: Policy) -> ReportDuty:
    sensitive = incident.data_class == DataClass.sensitive
    over_1000 = (incident.people_count or 0) > 1000
    triggers = sensitive or over_1000 or incident.financial_harm or incident.wrongful_purpose
    # Properly encrypted data is exempt, except where the leak may be for a wrongful purpose.
    exempt = incident.properly_encrypted and not incident.wrongful_purpose
    known_on = policy.local_day_start(incident.known_at).astimezone(
        __import__("zoneinfo").ZoneInfo(policy.timezone)).date()
    return ReportDuty(sensitive=sensitive, over_1000=over_1000, financial_harm=incident.financial_harm,
                      wrongful_purpose=incident.wrongful_purpose, exempt_by_encryption=exempt and triggers,
                      required=triggers and not exempt, known_on=known_on,
                      preliminary_by=known_on + timedelta(days=5),
                      final_by=known_on + timedelta(days=60 if incident.wrongful_purpose else 30))


def board_flags_by_checkout(session: Session, checkout_ids: list[int]) -> dict[int, Flag]:
    """Flags the board shows (open, acknowledged, or lost while the item is still out), in one query."""
    if not checkout_ids:
        return {}
    return {f.checkout_id: f for f in session.scalars(
        select(Flag).where(Flag.checkout_id.in_(checkout_ids), Flag.status.in_([*OPEN, FlagStatus.lost])))}
