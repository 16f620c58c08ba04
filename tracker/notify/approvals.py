"""Approval notices: whoever's turn it is on a take-out request is told at once (e-mail in their language, and the
site's chat webhook), with a link that opens the request; the requester is told how it ended.

Queued in the transaction of the decision itself (the custody rules send `turn_started` / `request_settled`; the app
connects them here with `listen`), so a request is never decided without its notice, nor noticed without its
decision. The notify package knows nothing of custody: it reads the request, its item and people from the models.
"""

from __future__ import annotations

from datetime import datetime

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from ..errors import N_
from ..i18n import day, speaking, when, zone_of
from ..models import ApprovalStep, CheckoutRequest, RequestStatus, User
from .outbox import _queue, as_read_by, chat_text, desk_addresses, desk_zone, webhook_format


def listen(turn_started, request_settled) -> None:
    """Connect the custody rules' signals to the outbox (connecting again changes nothing)."""
    turn_started.connect(_on_turn)
    request_settled.connect(_on_settled)


def _on_turn(session: Session, *, now: datetime, request: CheckoutRequest, step: ApprovalStep,
             approvers: list[User]) -> None:
    if has_app_context():  # the rules run without an app only in tests of the rules themselves
        queue_turn(session, now, request, approvers, current_app.config)


def _on_settled(session: Session, *, now: datetime, request: CheckoutRequest) -> None:
    if has_app_context():
        queue_outcome(session, now, request, current_app.config)


def link(request: CheckoutRequest, config: dict) -> str:
    """The request's page; signed out, sign-in comes first and lands back on it."""
    return f"{config['BASE_URL']}/requests/{request.id}"


def _summary(request: CheckoutRequest) -> list[str]:
    item = request.item
    lines = [f"{item.asset_tag} ({item.name})", f"{_('Requested by')}: {request.requester.name}",
             f"{_('Due back')}: {when(request.due_at)}"]
    if request.for_date is not None:
        lines.append(f"{_('Approval in advance for')}: {day(request.for_date)}")
    if request.reason:
        lines.append(f"{_('Reason')}: {request.reason}")
    if request.destination:
        lines.append(f"{_('Destination')}: {request.destination}")
    return lines


def queue_turn(session: Session, now: datetime, request: CheckoutRequest, approvers: list[User], config: dict) -> int:
    """One e-mail per approver in their language (the desk's addresses when the turn is the desk's or nobody is
    named), and one chat message; how many were queued."""
    default = config.get("DEFAULT_LANGUAGE", "ja")
    queued = 0
    if config.get("SMTP_HOST"):
        site = request.item.site
        people = [(u.email, u.language or default, zone_of(u.site), u.name, None) for u in approvers]
        if not people:
            people = [(address, default, desk_zone(config, site), None, None)
                      for address in desk_addresses(config, site)]
        # Each approver's deputy (代理承認者) is told too, in case the approver is away; they may decide for them.
        named = {u.id for u in approvers} | {request.requester_id}
        people += [(u.deputy.email, u.deputy.language or default, zone_of(u.deputy.site), u.deputy.name, u.name)
                   for u in approvers if u.deputy is not None and u.deputy.active and u.deputy.id not in named]
        for address, language, zone, name, stands_in_for in people:
            with speaking(language, zone):
                subject = _("Approval needed: %(tag)s for %(name)s", tag=request.item.asset_tag,
                            name=request.requester.name)
                deputy = ([_("You are %(name)s's deputy: if they are away, you may decide for them.",
                             name=stands_in_for), ""] if stands_in_for else [])
                body = "\n".join([*([_("Hello %(name)s,", name=name), ""] if name else []), *deputy,
                                  _("%(name)s asks to take an item out. Approve or reject it here:",
                                    name=request.requester.name), link(request, config), "",
                                  *_summary(request)])
            _queue(session, now, "email", address, subject, body)
            queued += 1
    if config.get("WEBHOOK_URL"):
        with speaking(default, zone_of(None)):
            subject = _("Approval needed: %(tag)s for %(name)s", tag=request.item.asset_tag,
                        name=request.requester.name)
            waiting = ", ".join(u.name for u in approvers) or _("the security desk")
            text = "\n".join([subject, f"{_('Waiting for')}: {waiting}", *_summary(request), link(request, config)])
        _queue(session, now, "webhook", config["WEBHOOK_URL"], subject, chat_text(text, webhook_format(config)))
        queued += 1
    return queued


_OUTCOMES = {
    RequestStatus.approved: (N_("Approved: %(tag)s"), N_("Your request to take %(tag)s out was approved.")),
    RequestStatus.denied: (N_("Rejected: %(tag)s"), N_("Your request to take %(tag)s out was rejected.")),
    RequestStatus.expired: (N_("Expired: %(tag)s"), N_("Your request to take %(tag)s out expired unused at the end "
                                                       "of its day. Ask again if you still need it.")),
}


def queue_outcome(session: Session, now: datetime, request: CheckoutRequest, config: dict) -> int:
    """The requester's e-mail, in their language: approved (out with them now, or ready for its day), rejected
    (with the note), or expired."""
    if not config.get("SMTP_HOST") or request.status not in _OUTCOMES:
        return 0
    requester = request.requester
    subject_text, body_text = _OUTCOMES[request.status]
    with as_read_by(requester, config):
        lines = [_("Hello %(name)s,", name=requester.name), "", _(body_text, tag=request.item.asset_tag)]
        if request.status == RequestStatus.approved:
            lines.append(_("It is checked out to you now, due back %(due)s.", due=when(request.due_at))
                         if request.checkout_id else
                         _("Take it out on %(day)s: scan its label and tap Take out.",
                           day=day(request.for_date)))
        if request.note:
            lines.append(f"{_('Note')}: {request.note}")
        lines += ["", link(request, config)]
        subject = _(subject_text, tag=request.item.asset_tag)
    _queue(session, now, "email", requester.email, subject, "\n".join(lines))
    return 1
