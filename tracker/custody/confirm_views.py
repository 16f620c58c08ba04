""""I still have it": the holder confirms custody from the page of the label they scanned (the label's own address
is the proof the item is in their hands), and the page the e-mail asking for it links to."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for

from .. import queries
from ..http import actor, attempt, client_address, db, flash_error, now, signed_in
from ..i18n import gettext
from . import confirmations, policy

bp = Blueprint("confirm", __name__)


def _policy() -> policy.Policy:
    return policy.from_config(current_app.config)


@bp.post("/s/<token>/still-have-it")
@bp.post("/S/<token>/still-have-it")
@signed_in
def still_have_it(token: str):
    label = queries.label_by_token(db(), token)
    if label is None:
        return render_template("custody/invalid.html"), 404
    with attempt(explain=False) as done:
        co = confirmations.confirm(db(), now(), label=label, actor=actor(), policy=_policy(), source=client_address())
    if done:
        flash(gettext("Thank you: you confirmed you still have %(tag)s.", tag=co.item.asset_tag), "success")
    elif isinstance(done.error, confirmations.AlreadyConfirmed):  # a double tap: it is done
        flash(gettext("Thank you: you confirmed you still have %(tag)s.", tag=label.item.asset_tag), "info")
    else:
        flash_error(done.error)
    return redirect(url_for("custody.scan", token=label.token), 303)


@bp.get("/still-have-it")
@signed_in
def how_to():
    """Where the e-mail asking for a confirmation leads: how to confirm, and what waits for it."""
    return render_template("custody/still_have_it.html",
                           waiting=confirmations.awaiting(db(), actor(), now(), _policy()))
