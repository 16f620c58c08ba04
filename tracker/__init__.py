"""Check-out tracking for media and bags that carry personal data."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory; `test_config` overrides the environment for tests."""
    from . import audit, cli, config, error_pages, http, i18n, trail
    from .accounts import admin_views as admin_users
    from .accounts import sessions
    from .accounts import token_views as api_tokens
    from .accounts import views as auth
    from .api import views as api
    from .custody import approval_views as approvals
    from .custody import approvals as approval_rules
    from .custody import confirm_views, handover
    from .custody import rule_views as admin_rules
    from .custody import views as custody
    from .desk import incident_views as incidents
    from .desk import views as desk
    from .items import department_views as admin_departments
    from .items import site_views as admin_sites
    from .items import views as admin_items
    from .labels import views as admin_labels
    from .notify import approvals as approval_notices
    from .notify import hook_views as admin_webhooks
    from .notify import hooks
    from .notify import stocktake as stocktake_notices
    from .notify import views as admin_notifications
    from .ops import views as ops
    from .reports import views as reports
    from .stocktake import due_views as counts_due
    from .stocktake import sessions as stocktake_rules
    from .stocktake import views as stocktakes

    instance = (test_config or {}).get("INSTANCE_PATH") or config.instance_path(os.path.join(ROOT, "instance"))
    app = error_pages.TrackerFlask(__name__, instance_path=instance, template_folder=os.path.join(ROOT, "templates"))
    app.config.update(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)
        if "SECRET_KEY" in test_config:
            app.config["SECRET_KEY_FROM_INSTANCE"] = False
    config.check_shared(app.config)
    config.check_sign_in(app.config)
    app.config["PERMANENT_SESSION_LIFETIME"] = timedelta(days=app.config["STAFF_SESSION_DAYS"])

    http.init_app(app)
    trail.init_app(app)
    sessions.init_app(app)
    i18n.init_app(app)
    error_pages.init_app(app)
    ops.init_app(app)
    approval_notices.listen(approval_rules.turn_started, approval_rules.request_settled)
    stocktake_notices.listen(stocktake_rules.missing_found)
    audit.events_chained.connect(hooks.on_events)
    api.init_app(app)
    for module in (auth, custody, approvals, desk, incidents, reports, admin_items, admin_users, admin_labels,
                   admin_notifications, admin_webhooks, admin_departments, admin_sites, admin_rules, api_tokens,
                   confirm_views, counts_due):
        app.register_blueprint(module.bp)
    stocktakes.init_app(app)
    if app.config["OIDC_ISSUER"] or app.config["SCIM_TOKEN"]:
        from . import sso  # only sites that use single sign-on or provisioning load it (and Authlib)

        sso.init_app(app)
    cli.init_app(app)
    handover.offered.connect(_tell_receiver)
    handover.unanswered.connect(_tell_giver)
    return app


def _tell_giver(session, *, now, offer) -> None:
    """E-mail the giver that their offer was declined or lapsed (queued in that change's own transaction)."""
    from flask import current_app, has_app_context

    from .notify import outbox

    if has_app_context():
        outbox.queue_handover_unanswered(session, now, offer, current_app.config)


def _tell_receiver(session, *, now, offer) -> None:
    """E-mail the receiver of a hand-over offer, queued in the offer's own transaction (custody knows nothing of
    the outbox). A rules call outside any app (a bare domain test) has no outbox settings, so it tells nobody."""
    from flask import current_app, has_app_context

    from .notify import outbox

    if has_app_context():
        outbox.queue_handover_offer(session, now, offer, current_app.config)
