"""Sign-in through the company's OpenID Connect provider: Authorization Code with PKCE, the ID token verified
by Authlib (signature against the provider's keys, issuer, audience, expiry, nonce), then the usual session."""

from __future__ import annotations

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.base_client import MismatchingStateError, OAuthError
from flask import Blueprint, current_app, redirect, render_template, request, session, url_for
from joserfc.errors import JoseError

from .. import audit
from ..accounts import sessions
from ..errors import N_
from ..http import attempt, client_address, db, now, record_aside, safe_next
from ..i18n import describe, gettext
from . import provisioning

log = logging.getLogger(__name__)
bp = Blueprint("sso", __name__, url_prefix="/sso")
NEXT_KEY = "sso_next"
UNVERIFIED = "no_id_token"

# Why a sign-in was refused: the page's words, and the code it answers with.
_REFUSALS = {
    "wrong_issuer": (400, N_("The identity provider does not call itself the issuer this tracker is set up for, so "
                             "nothing was signed in. Tell an administrator.")),
    "unreachable": (502, N_("The identity provider could not be reached. Please try again in a moment.")),
    "state": (400, N_("This sign-in was already used or has expired. Please start the sign-in again.")),
    "id_token": (400, N_("The identity provider's answer could not be verified, so you were not signed in. Please "
                         "start the sign-in again; if it happens again, tell an administrator.")),
    "provider_error": (400, N_("The identity provider did not sign you in. Please try again, or tell an administrator "
                               "if it keeps happening.")),
}


def client():
    """The Authlib client registered for this app (see tracker.sso.init_app)."""
    return current_app.extensions["tracker.oidc"].idp


def _issuer() -> str:
    return current_app.config["OIDC_ISSUER"]


def _callback_url() -> str:
    # The address registered at the provider: from BASE_URL, never from the request's Host header.
    return current_app.config["BASE_URL"] + url_for("sso.callback")


def refuse(reason: str, detail: str = ""):
    """Log the refusal, keep it in the audit trail and answer with a clear page (never a 500)."""
    status, text = _REFUSALS[reason]
    log.warning("single sign-on refused from %s: %s %s", client_address(), reason, detail[:300])
    try:
        record_aside(lambda s: audit.record(s, now(), "signin_failed", source=client_address(), method="oidc",
                                            reason=reason, detail=detail[:300]))
    except Exception:  # noqa: BLE001 - the page must still answer; the failure is logged
        log.exception("a refused single sign-on could not be written to the audit trail")
    return render_template("error.html", code=status, title=gettext("Sign-in failed"), text=gettext(text)), status


def _metadata_issuer_ok():
    """The provider's discovery document, loaded once, must name exactly the configured issuer."""
    try:
        metadata = client().load_server_metadata()
    except (requests.RequestException, ValueError) as err:
        return refuse("unreachable", repr(err))
    if metadata.get("issuer") != _issuer():
        return refuse("wrong_issuer", f"configured {_issuer()!r}, provider says {metadata.get('issuer')!r}")
    return None


@bp.get("/start")
def start():
    """Send the browser to the provider; state, nonce and PKCE verifier wait in the signed session."""
    refused = _metadata_issuer_ok()
    if refused:
        return refused
    session[NEXT_KEY] = safe_next(request.args.get("next"))
    try:
        return client().authorize_redirect(_callback_url())
    except (requests.RequestException, AuthlibBaseError, RuntimeError) as err:
        return refuse("unreachable", repr(err))


def _verified_claims() -> dict:
    """Exchange the code (with the PKCE verifier) and verify the ID token; AuthlibBaseError/JoseError say why not."""
    cfg = current_app.config
    options = {"iss": {"essential": True, "value": cfg["OIDC_ISSUER"]},
               "aud": {"essential": True, "value": cfg["OIDC_CLIENT_ID"]}}
    token = client().authorize_access_token(claims_options=options)
    claims = token.get("userinfo")
    if not claims:  # no ID token, or no nonce was waiting for it: nothing verified to sign in with
        raise OAuthError(error=UNVERIFIED, description="the token response had no verified ID token")
    return dict(claims)


@bp.get("/callback")
def callback():
    """Where the provider sends the browser back: verify everything, then start a session like a password does."""
    refused = _metadata_issuer_ok()
    if refused:
        return refused
    try:
        claims = _verified_claims()
    except MismatchingStateError as err:
        return refuse("state", repr(err))
    except OAuthError as err:  # the provider's error, at the callback or from its token endpoint
        return refuse("id_token" if err.error == UNVERIFIED else "provider_error", f"{err.error}: {err.description}")
    except (JoseError, AuthlibBaseError, ValueError, KeyError) as err:
        return refuse("id_token", repr(err))
    except requests.RequestException as err:
        return refuse("unreachable", repr(err))
    cfg = current_app.config
    with attempt(explain=False, keep_on_error=True) as done:
        user = provisioning.sign_in(db(), now(), claims, role_claim=cfg["OIDC_ROLE_CLAIM"],
                                    role_map=cfg["OIDC_ROLE_MAP"], source=client_address(), issuer=_issuer())
    if not done:
        log.warning("single sign-on refused from %s: %s", client_address(), done.error.message)
        return render_template("error.html", code=403, title=gettext("Sign-in failed"),
                               text=describe(done.error)), 403
    target = safe_next(session.pop(NEXT_KEY, None))  # begin() clears the session: read it first
    sessions.begin(user, method="oidc")
    return redirect(target or url_for("auth.home"))
