"""Admins see what the notifications did: sent, waiting for a retry, or failed, with the reason."""

from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import queries
from ..http import admin_only, attempt, db, get_or_404, now
from ..i18n import gettext
from ..models import Notification
from . import delivery

bp = Blueprint("admin_notifications", __name__, url_prefix="/admin/notifications")


@bp.get("/")
@admin_only
def index():
    stmt = select(Notification).options(selectinload(Notification.subscription))
    state = request.args.get("state", "")
    if state == "failed":
        stmt = stmt.where(Notification.failed_at.is_not(None))
    elif state == "pending":
        stmt = stmt.where(Notification.sent_at.is_(None), Notification.failed_at.is_(None))
    page = queries.paginate(db(), stmt.order_by(Notification.id.desc()), request.args.get("page", 1, type=int))
    cfg = current_app.config
    setup = {"email": cfg.get("SMTP_HOST"), "desk": cfg.get("DESK_EMAILS"), "webhook": cfg.get("WEBHOOK_URL")}
    return render_template("admin_notifications/index.html", page=page, state=state, setup=setup,
                           reason=delivery.reason)


@bp.post("/<int:notification_id>/retry")
@admin_only
def retry(notification_id: int):
    n = get_or_404(Notification, notification_id)
    if n.sent_at is None:
        with attempt():
            n.failed_at, n.next_attempt_at = None, now()
        flash(gettext("It will be sent again within a minute."), "success")
    return redirect(url_for("admin_notifications.index"), 303)
