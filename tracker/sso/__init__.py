"""Single sign-on (OpenID Connect) and SCIM provisioning: loaded by the app factory only where configured."""

from __future__ import annotations

from authlib.integrations.flask_client import OAuth
from flask import Flask

from ..http import csrf


def _register_oidc(app: Flask) -> None:
    """One Authlib client: discovery from the issuer, PKCE with S256, and timeouts on every call to the provider."""
    cfg = app.config
    oauth = OAuth(app)
    oauth.register(
        "idp",
        client_id=cfg["OIDC_CLIENT_ID"],
        client_secret=cfg["OIDC_CLIENT_SECRET"],
        server_metadata_url=cfg["OIDC_ISSUER"].rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": cfg["OIDC_SCOPES"], "code_challenge_method": "S256", "default_timeout": 10},
    )
    app.extensions["tracker.oidc"] = oauth


def init_app(app: Flask) -> None:
    if app.config["OIDC_ISSUER"]:
        from . import views

        _register_oidc(app)
        app.register_blueprint(views.bp)
    if app.config["SCIM_TOKEN"]:
        from . import scim

        app.register_blueprint(scim.bp)
        csrf.exempt(scim.bp)
