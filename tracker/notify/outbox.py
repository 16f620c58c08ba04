"""The outbox: messages people act on (one digest per holder, one to the desk, a chat webhook), queued in the
same transaction as the sweep or reminder job, so a job never half-notifies; `delivery` sends them afterwards.

Each message is written in its reader's language with times on its reader's office's clock, as their pages show
them: a person's site's zone, a site's own desk's zone, the main office's for its desk and the chat; never the zone
of whoever's request happened to queue it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime
from urllib.parse import urlsplit

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from ..i18n import day, speaking, when, zone_of
from ..models import Checkout, HandoverOffer, Notification, OfferStatus, Site, User


def _queue(session: Session, now: datetime, channel: str, recipient: str, subject: str, body: str) -> None:
    session.add(Notification(channel=channel, recipient=recipient, subject=subject, body=body, created_at=now,
                             attempts=0, next_attempt_at=now))


_HTML = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_MARKDOWN = set("\\`*_[]()#~|")
TEAMS_HOSTS = (".webhook.office.com", ".office.com", ".logic.azure.com", ".powerplatform.com")


def webhook_format(config: dict) -> str:
    """Either "teams" or "slack": TRACKER_WEBHOOK_FORMAT, else told by the webhook's host."""
    if config.get("WEBHOOK_FORMAT") in ("slack", "teams"):
        return config["WEBHOOK_FORMAT"]
    host = (urlsplit(config.get("WEBHOOK_URL") or "").hostname or "").lower()
    return "teams" if host.endswith(TEAMS_HOSTS) else "slack"


def chat_text(text: str, fmt: str) -> str:
    """Text a chat shows as written: names, destinations and notes cannot post mentions, links or formatting.

    Slack reads &, < and > as its markup (<!channel>, <url|text>); Teams reads Markdown and some HTML.
    """
    text = text.translate(_HTML)
    if fmt == "teams":
        text = "".join("\\" + ch if ch in _MARKDOWN else ch for ch in text)
    return text


def _line(co: Checkout) -> str:
    where = f" → {co.destination}" if co.destination else ""
    return f"- {co.item.asset_tag} ({co.item.name}) {_('Due back')}: {when(co.due_at)}{where}"


def _desk_line(co: Checkout) -> str:
    phone = f", {co.holder.phone}" if co.holder.phone else ""
    return f"{_line(co)} — {co.holder.name} <{co.holder.email}>{phone}"


def _to_each_holder(session: Session, now: datetime, checkouts: list[Checkout], config: dict,
                    write: Callable[[User, list[Checkout]], tuple[str, str]]) -> int:
    """One e-mail per holder about their `checkouts`, its subject and body from `write` in the holder's language;
    how many were queued (none without a mail server)."""
    if not checkouts or not config.get("SMTP_HOST"):
        return 0
    by_holder = _by_holder(checkouts)
    for cos in by_holder.values():
        holder = cos[0].holder
        with as_read_by(holder, config):
            subject, body = write(holder, cos)
        _queue(session, now, "email", holder.email, subject, body)
    return len(by_holder)


def _by_holder(checkouts: list[Checkout]) -> dict[int, list[Checkout]]:
    """One digest per person: their check-outs together, in the order given."""
    grouped: dict[int, list[Checkout]] = defaultdict(list)
    for co in checkouts:
        grouped[co.holder_id].append(co)
    return grouped


def desk_addresses(config: dict, site: Site | None) -> list[str]:
    """The security desk's addresses at `site`: its own, else (and for the main office) the settings' DESK_EMAILS,
    so a site's overdue items never reach nobody."""
    own = _addresses(site.desk_emails or "") if site is not None else []
    return own or _addresses(config.get("DESK_EMAILS", ""))


def as_read_by(person: User, config: dict):
    """Write for `person`: in their language (else the default) with times on their office's clock."""
    return speaking(person.language or config.get("DEFAULT_LANGUAGE", "ja"), zone_of(person.site))


def desk_zone(config: dict, site: Site | None) -> str:
    """The zone of the desk that `desk_addresses` names: the site's for its own desk, else the main office's."""
    return zone_of(site if site is not None and _addresses(site.desk_emails or "") else None)


def _by_site(checkouts: list[Checkout]) -> dict[int | None, list[Checkout]]:
    """The check-outs by their item's site (None: the main office), in the order given."""
    grouped: dict[int | None, list[Checkout]] = defaultdict(list)
    for co in checkouts:
        grouped[co.item.site_id].append(co)
    return grouped


def queue_overdue(session: Session, now: datetime, checkouts: list[Checkout], config: dict,
                  at_curfew: bool = False) -> int:
    """Queue the overdue digests for what a sweep flagged: one per holder, one to the desk of each site the items
    belong to, one webhook call. `at_curfew`: flagged the minute a take-out rule's curfew or maximum duration
    passed, not at the day end."""
    if not checkouts:
        return 0
    count = 0
    email = bool(config.get("SMTP_HOST"))
    by_holder = _by_holder(checkouts)
    default = config.get("DEFAULT_LANGUAGE", "ja")
    if email:
        for cos in by_holder.values():
            holder = cos[0].holder
            with as_read_by(holder, config):
                subject = _("Overdue: please return %(n)d item(s) or contact the security desk", n=len(cos))
                body = "\n".join([_("Hello %(name)s,", name=holder.name), "",
                                  _("These items are past their due time:"), *[_line(c) for c in cos], "",
                                  _("Bring them back, or tell the security desk when you will."),
                                  f"{config['BASE_URL']}/my"])
            _queue(session, now, "email", holder.email, subject, body)
            count += 1
    def desk_message(cos: list[Checkout], board: str) -> tuple[str, str]:
        heading = _("Overdue at a take-out rule's curfew or time limit:") if at_curfew else _("Overdue at the day end:")
        return _("%(n)d item(s) overdue", n=len(cos)), "\n".join([heading, *[_desk_line(c) for c in cos], "", board])

    if email:
        for cos in _by_site(checkouts).values():
            site = cos[0].item.site
            with speaking(default, desk_zone(config, site)):
                subject, body = desk_message(cos, f"{config['BASE_URL']}/desk/"
                                                  + (f"?site={site.id}" if site is not None else ""))
            for address in desk_addresses(config, site):
                _queue(session, now, "email", address, subject, body)
                count += 1
    if config.get("WEBHOOK_URL"):
        with speaking(default, zone_of(None)):
            subject, body = desk_message(checkouts, f"{config['BASE_URL']}/desk/")
        _queue(session, now, "webhook", config["WEBHOOK_URL"], subject,
               chat_text(f"{subject}\n{body}", webhook_format(config)))
        count += 1
    return count


def _escalation_line(step) -> str:
    flagged = _("flagged %(when)s", when=when(step.flag.created_at))
    if step.flag.checkout is None:  # nobody holds it: a stock-take did not find it
        item = step.flag.item
        return f"- {item.asset_tag} ({item.name}) {_('Missing at a stock-take')} ({flagged})"
    return f"{_desk_line(step.flag.checkout)} ({flagged})"


def _escalation_mail(step_level: int, name: str | None, steps: list, base_url: str, lead: bool = True) -> tuple[str, str]:
    """The message to a manager (level 1) or a desk lead (level 2; the desk's addresses when there is no lead,
    `lead` False), in the locale in force."""
    lines = [_escalation_line(s) for s in steps]
    if step_level == 1:
        subject = _("Not acknowledged: %(n)d overdue item(s) held by your team", n=len(steps))
        intro = _("These items held by people in your department are overdue, and nobody has acknowledged them yet:")
        ask = _("Please contact them, and tell the security desk when the items will be back.")
        link = ""  # a manager may not be on the desk: the lines carry whom to call
    else:
        subject = _("Escalated to you: %(n)d overdue item(s) nobody acknowledged", n=len(steps))
        intro = (_("These overdue items were not acknowledged in time, and are now escalated to you as desk lead:")
                 if lead else _("These overdue items were not acknowledged in time. No desk lead is set, so they "
                                "are escalated to the security desk:"))
        ask = _("Please make sure each is followed up, and acknowledge it on the board.")
        link = f"{base_url}/desk/"
    greeting = [_("Hello %(name)s,", name=name), ""] if name else []  # a shared desk address gets none
    return subject, "\n".join([*greeting, intro, *lines, "", ask, *([link] if link else [])])


def queue_escalations(session: Session, now: datetime, result, config: dict) -> int:
    """Queue what an escalation run decided (tracker.desk.escalation): one message per person told and level, in
    their language, and one webhook call for the desk's chat."""
    if not result.steps:
        return 0
    count = 0
    default = config.get("DEFAULT_LANGUAGE", "ja")
    if config.get("SMTP_HOST"):
        for (user_id, level), steps in result.by_recipient().items():
            person = next(u for u in steps[0].told if u.id == user_id)
            with as_read_by(person, config):
                subject, body = _escalation_mail(level, person.name, steps, config["BASE_URL"])
            _queue(session, now, "email", person.email, subject, body)
            count += 1
        # No active desk lead to tell: the desk's own addresses get the last step, so it never reaches nobody.
        unheard = [s for s in result.steps if s.level == 2 and not s.told]
        by_site: dict[int | None, list] = defaultdict(list)  # each site's desk hears of its own items
        for step in unheard:
            by_site[step.flag.item.site_id].append(step)
        for steps in by_site.values():
            site = steps[0].flag.item.site
            desk = desk_addresses(config, site)
            if desk:
                with speaking(default, desk_zone(config, site)):
                    subject, body = _escalation_mail(2, None, steps, config["BASE_URL"], lead=False)
                for address in desk:
                    _queue(session, now, "email", address, subject, body)
                    count += 1
    if config.get("WEBHOOK_URL"):
        with speaking(default, zone_of(None)):
            subject = _("%(n)d overdue flag(s) escalated: nobody acknowledged them in time", n=len(result.steps))
            lines = [f"{_escalation_line(s)} → {_escalated_to(s)}" for s in result.steps]
            text = "\n".join([subject, *lines, "", f"{config['BASE_URL']}/desk/"])
        _queue(session, now, "webhook", config["WEBHOOK_URL"], subject, chat_text(text, webhook_format(config)))
        count += 1
    return count


def _escalated_to(step) -> str:
    names = ", ".join(u.name for u in step.told)
    what = _("the manager") if step.level == 1 else _("the desk lead")
    return f"{what}: {names}" if names else what


def queue_reminders(session: Session, now: datetime, checkouts: list[Checkout], config: dict) -> int:
    """One reminder per holder for items due soon."""
    def write(holder: User, cos: list[Checkout]) -> tuple[str, str]:
        return (_("Reminder: %(n)d item(s) due back soon", n=len(cos)),
                "\n".join([_("Hello %(name)s,", name=holder.name), "", _("These items are due back soon:"),
                           *[_line(c) for c in cos], "", f"{config['BASE_URL']}/my"]))

    return _to_each_holder(session, now, checkouts, config, write)


def queue_handover_offer(session: Session, now: datetime, offer: HandoverOffer, config: dict) -> int:
    """Tell the receiver of a hand-over offer, in their language, with the link that opens it to accept."""
    if not config.get("SMTP_HOST"):
        return 0
    to, item = offer.to_user, offer.item
    with as_read_by(to, config):
        subject = _("%(name)s is handing %(tag)s over to you", name=offer.from_user.name, tag=item.asset_tag)
        body = "\n".join([_("Hello %(name)s,", name=to.name), "",
                          _("%(name)s offers to hand this item over to you:", name=offer.from_user.name),
                          f"- {item.asset_tag} ({item.name})", "",
                          _("It becomes yours only when you accept; until then %(name)s holds it. Accept or "
                            "decline here (the offer lapses at the end of today):", name=offer.from_user.name),
                          f"{config['BASE_URL']}/handovers/{offer.id}"])
    _queue(session, now, "email", to.email, subject, body)
    return 1


def queue_handover_unanswered(session: Session, now: datetime, offer: HandoverOffer, config: dict) -> int:
    """Tell the giver that their offer was declined or lapsed: the item is still theirs to bring back."""
    if not config.get("SMTP_HOST"):
        return 0
    giver, item = offer.from_user, offer.item
    with as_read_by(giver, config):
        if offer.status == OfferStatus.declined:
            subject = _("%(name)s declined the hand-over of %(tag)s", name=offer.to_user.name, tag=item.asset_tag)
        else:
            subject = _("Your hand-over of %(tag)s to %(name)s lapsed", tag=item.asset_tag, name=offer.to_user.name)
        body = "\n".join([_("Hello %(name)s,", name=giver.name), "",
                          _("%(tag)s is still checked out to you: bring it back by its due time, or offer it again.",
                            tag=item.asset_tag), f"{config['BASE_URL']}/items/{item.asset_tag}"])
    _queue(session, now, "email", giver.email, subject, body)
    return 1


def _addresses(text: str) -> list[str]:
    return [a.strip() for a in (text or "").split(",") if a.strip()]


def _count_line(due) -> str:
    overdue = _("overdue by %(n)d day(s)", n=due.days_overdue) if due.overdue else ""
    next_count = _("Next count")
    return f"- {due.item.asset_tag} ({due.item.name}) {next_count}: {day(due.next_on)}" + (
        f" — {overdue}" if overdue else "")


def _held_line(co: Checkout) -> str:
    since = _("out since %(when)s", when=when(co.out_at))
    return f"- {co.item.asset_tag} ({co.item.name}) {since}"


def _unconfirmed_line(co: Checkout) -> str:
    asked = _("asked %(when)s", when=when(co.custody_prompted_at))
    return f"{_desk_line(co)} ({asked})"


def queue_count_digests(session: Session, now: datetime, digests: list, config: dict) -> int:
    """The desk's daily list of items due for a count (tracker.stocktake.schedule.Digest), one message per desk
    address of each site, in the site's default language."""
    if not config.get("SMTP_HOST"):
        return 0
    count = 0
    for digest in digests:
        with speaking(config.get("DEFAULT_LANGUAGE", "ja"), desk_zone(config, digest.site)):
            where = f" ({digest.site.name})" if digest.site is not None else ""
            subject = _("%(n)d item(s) due for a stock-take count", n=digest.total) + where
            lines = [_count_line(d) for d in digest.due]
            more = [_("… and %(n)d more.", n=digest.total - len(digest.due))] if digest.total > len(digest.due) else []
            body = "\n".join([_("These items are due for a count today or overdue:"), *lines, *more, "",
                              f"{config['BASE_URL']}/desk/counts-due"])
        for address in desk_addresses(config, digest.site):
            _queue(session, now, "email", address, subject, body)
            count += 1
    return count


def queue_custody_prompts(session: Session, now: datetime, checkouts: list[Checkout], config: dict) -> int:
    """Ask each holder, in their language, to confirm they still have what they took out long ago: one message
    per holder, with the link that tells how (scan each item's own label)."""
    def write(holder: User, cos: list[Checkout]) -> tuple[str, str]:
        return (_("Please confirm you still have %(n)d item(s)", n=len(cos)),
                "\n".join([_("Hello %(name)s,", name=holder.name), "",
                           _("You have had these items for a while. Please confirm you still have them:"),
                           *[_held_line(c) for c in cos], "",
                           _("Scan the label on each item with your phone and tap “I still have it”. If you "
                             "no longer have one, tell the security desk at once. How to confirm:"),
                           f"{config['BASE_URL']}/still-have-it"]))

    return _to_each_holder(session, now, checkouts, config, write)


def queue_custody_unconfirmed(session: Session, now: datetime, checkouts: list[Checkout], config: dict) -> int:
    """Tell the desk of each item's site which holders did not confirm custody when asked."""
    if not checkouts or not config.get("SMTP_HOST"):
        return 0
    by_site: dict[int | None, list[Checkout]] = defaultdict(list)
    for co in checkouts:
        by_site[co.item.site_id].append(co)
    count = 0
    for cos in by_site.values():
        site = cos[0].item.site
        with speaking(config.get("DEFAULT_LANGUAGE", "ja"), desk_zone(config, site)):
            subject = _("Not confirmed: %(n)d holder(s) did not confirm they still have an item", n=len(cos))
            lines = [_unconfirmed_line(c) for c in cos]
            body = "\n".join([_("These holders were asked to confirm custody and have not. Please contact them:"),
                              *lines, "", f"{config['BASE_URL']}/desk/counts-due"])
        for address in desk_addresses(config, site):
            _queue(session, now, "email", address, subject, body)
            count += 1
    return count


def queue_checkpoint(session: Session, now: datetime, recipient: str, line: str, ok: bool, summary: str) -> None:
    """The day's audit checkpoint, mailed to an address kept apart from this system (the one copy it cannot
    rewrite). Plain text in English and Japanese: it is read by an auditor, and only the line matters."""
    subject = f"[tracker] audit checkpoint {'OK' if ok else 'BROKEN'} / 監査証跡チェックポイント"
    body = "\n".join([
        "Keep this line: `flask --app app audit verify --checkpoint FILE` checks the trail against it.",
        "この行を保管してください。照合には audit verify --checkpoint を使います。", "", line, "", summary])
    _queue(session, now, "email", recipient, subject, body)

