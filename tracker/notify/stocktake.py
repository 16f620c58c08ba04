"""The stock-take notice: when a closed stock-take found items missing, the security desk of each item's site is
e-mailed the list and the chat webhook gets it, so a missing USB drive is known beyond whoever closed the session.

Queued in the closing transaction (the stock-take rules send `missing_found`; the app connects it here with
`listen`). The notify package knows nothing of stock-takes: it reads the items from the models.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime

from flask import current_app, has_app_context
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from ..i18n import CLASS_LABELS, label, speaking, zone_of
from ..models import Item, StockTake
from .outbox import _queue, chat_text, desk_addresses, desk_zone, webhook_format


def listen(missing_found) -> None:
    """Connect the stock-take rules' signal to the outbox (connecting again changes nothing)."""
    missing_found.connect(_on_missing)


def _on_missing(session: Session, *, now: datetime, stocktake: StockTake, item_ids: list[int]) -> None:
    if has_app_context():  # the rules run without an app only in tests of the rules themselves
        queue_missing(session, now, stocktake, item_ids, current_app.config)


def queue_missing(session: Session, now: datetime, stocktake: StockTake, item_ids: list[int], config: dict) -> int:
    """One e-mail to each address of the desk of each site the missing items belong to, and one chat message, in
    the default language; how many were queued."""
    items = list(session.scalars(select(Item).options(selectinload(Item.site)).where(Item.id.in_(item_ids))
                                 .order_by(Item.asset_tag)))
    link = f"{config['BASE_URL']}/stocktakes/{stocktake.id}"
    queued = 0
    default = config.get("DEFAULT_LANGUAGE", "ja")

    def message(found: list[Item]) -> tuple[str, str]:
        subject = _("Stock-take %(n)d: %(count)d item(s) missing", n=stocktake.id, count=len(found))
        lines = [f"- {i.asset_tag} ({i.name}) {label(CLASS_LABELS, i.data_class)}" for i in found]
        ask = _("Each is flagged on the desk's board: find it, or mark it lost to open an incident.")
        return subject, "\n".join([_("The stock-take did not find these items:"), *lines, "", ask, link])

    if config.get("SMTP_HOST"):
        by_site: dict[int | None, list[Item]] = defaultdict(list)
        for item in items:
            by_site[item.site_id].append(item)
        for found in by_site.values():
            site = found[0].site
            with speaking(default, desk_zone(config, site)):
                subject, body = message(found)
            for address in desk_addresses(config, site):
                _queue(session, now, "email", address, subject, body)
                queued += 1
    if config.get("WEBHOOK_URL") and items:
        with speaking(default, zone_of(None)):
            subject, body = message(items)
        _queue(session, now, "webhook", config["WEBHOOK_URL"], subject,
               chat_text(f"{subject}\n{body}", webhook_format(config)))
        queued += 1
    return queued
