"""Admin pages for event webhooks: list with each one's last delivery, add, edit, disable or enable, rotate the
secret, delete. A secret is shown once, on the page that made it (adding, rotating), never again."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..http import actor, admin_only, attempt, client_address, db, get_or_404, now
from ..i18n import gettext
from ..models import EventWebhook, Notification
from . import delivery, hooks
from .forms import EventWebhookForm

bp = Blueprint("admin_webhooks", __name__, url_prefix="/admin/webhooks")


def _form_page(form: EventWebhookForm, hook: EventWebhook | None, secret: str | None = None, status: int = 200):
    return render_template("admin_notifications/webhook_form.html", form=form, hook=hook, secret=secret,
                           signature_header=hooks.SIGNATURE_HEADER), status


@bp.get("/")
@admin_only
def index():
    s = db()
    rows = list(s.scalars(select(EventWebhook).order_by(EventWebhook.name, EventWebhook.id)))
    latest = select(func.max(Notification.id)).where(Notification.subscription_id.is_not(None)) \
        .group_by(Notification.subscription_id)
    last = {n.subscription_id: n for n in s.scalars(select(Notification).where(Notification.id.in_(latest)))}
    return render_template("admin_notifications/webhooks.html", rows=rows, last=last, reason=delivery.reason)


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = EventWebhookForm()
    if not form.is_submitted():
        return _form_page(form, None)
    if not form.validate():
        return _form_page(form, None, status=400)
    with attempt() as done:
        hook = hooks.create(db(), now(), name=form.name.data, url=form.url.data, events=form.events.data,
                            actor=actor(), source=client_address())
    if not done:
        return _form_page(form, None, status=400)
    flash(gettext("The webhook %(name)s is added. Its secret is shown below once: copy it into the receiving "
                  "service now.", name=hook.name), "success")
    return _form_page(_filled(hook), hook, secret=hook.secret)


def _filled(hook: EventWebhook) -> EventWebhookForm:
    form = EventWebhookForm(formdata=None)
    form.name.data, form.url.data, form.events.data = hook.name, hook.url, sorted(hook.event_set)
    return form


@bp.route("/<int:hook_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(hook_id: int):
    hook = get_or_404(EventWebhook, hook_id)
    if request.method == "GET":
        return _form_page(_filled(hook), hook)
    form = EventWebhookForm()
    if not form.validate():
        return _form_page(form, hook, status=400)
    with attempt() as done:
        hooks.update_hook(db(), now(), hook, name=form.name.data, url=form.url.data, events=form.events.data,
                          actor=actor(), source=client_address())
    if not done:
        return _form_page(form, hook, status=400)
    flash(gettext("The webhook %(name)s is saved.", name=hook.name), "success")
    return redirect(url_for("admin_webhooks.index"), 303)


@bp.post("/<int:hook_id>/active")
@admin_only
def set_active(hook_id: int):
    hook = get_or_404(EventWebhook, hook_id)
    active = request.form.get("active") == "1"
    with attempt() as done:
        hooks.set_active(db(), now(), hook, active, actor=actor(), source=client_address())
    if done:
        flash(gettext("The webhook %(name)s is on.", name=hook.name) if active else
              gettext("The webhook %(name)s is off: nothing more is sent to it.", name=hook.name), "success")
    return redirect(url_for("admin_webhooks.index"), 303)


@bp.post("/<int:hook_id>/rotate")
@admin_only
def rotate(hook_id: int):
    hook = get_or_404(EventWebhook, hook_id)
    with attempt() as done:
        secret = hooks.rotate(db(), now(), hook, actor=actor(), source=client_address())
    if not done:
        return redirect(url_for("admin_webhooks.edit", hook_id=hook_id), 303)
    flash(gettext("A new secret is made and shown below once; the old one no longer verifies."), "success")
    return _form_page(_filled(hook), hook, secret=secret)


@bp.post("/<int:hook_id>/delete")
@admin_only
def delete(hook_id: int):
    hook = get_or_404(EventWebhook, hook_id)
    name = hook.name
    with attempt() as done:
        hooks.delete(db(), now(), hook, actor=actor(), source=client_address())
    if done:
        flash(gettext("The webhook %(name)s is deleted; its past deliveries stay listed.", name=name), "success")
    return redirect(url_for("admin_webhooks.index"), 303)
