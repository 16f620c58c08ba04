"""Check-out tracking for media and bags that carry personal data."""

from __future__ import annotations

import os
from datetime import timedelta

from flask import Flask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory; `test_config` overrides the environment for tests."""
    from . import cli, config, error_pages, http, i18n, trail
    from .accounts import admin_views as admin_users
    from .accounts import sessions
    from .accounts import token_views as api_tokens
    from .accounts import views as auth
    from .api import views as api
    from .custody import views as custody
    from .desk import incident_views as incidents
    from .desk import views as desk
    from .items import department_views as admin_departments
    from .items import views as admin_items
    from .labels import views as admin_labels
    from .notify import views as admin_notifications
    from .ops import views as ops
    from .reports import views as reports

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
    api.init_app(app)
    for module in (auth, custody, desk, incidents, reports, admin_items, admin_users, admin_labels,
                   admin_notifications, admin_departments, api_tokens):
        app.register_blueprint(module.bp)
    if app.config["OIDC_ISSUER"] or app.config["SCIM_TOKEN"]:
        from . import sso  # only sites that use single sign-on or provisioning load it (and Authlib)

        sso.init_app(app)
    cli.init_app(app)
    return app
