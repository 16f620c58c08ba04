"""SCIM 2.0 users (RFC 7643/7644) for the identity provider to create, change and deactivate accounts.

Only the bearer token in TRACKER_SCIM_TOKEN opens it; every answer, errors included, is SCIM JSON.
"""

from __future__ import annotations

import hmac
import logging
import re

from flask import Blueprint, current_app, jsonify, request
from sqlalchemy import func, select
from werkzeug.exceptions import HTTPException

from ..http import attempt, client_address, db, now
from ..models import User
from . import provisioning

log = logging.getLogger(__name__)
bp = Blueprint("scim", __name__, url_prefix="/scim/v2")
MEDIA_TYPE = "application/scim+json"
USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
PATCH_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"
MAX_PAGE = 200
MAX_START = 10**9  # past every user there will ever be, and within what a database's OFFSET takes
_FILTER = re.compile(r'^\s*userName\s+eq\s+"((?:[^"\\]|\\.)*)"\s*$', re.IGNORECASE)


class ScimError(Exception):
    """A request the SCIM protocol answers with an error document."""

    def __init__(self, status: int, detail: str, scim_type: str | None = None):
        super().__init__(detail)
        self.status, self.detail, self.scim_type = status, detail, scim_type


def _answer(body: dict, status: int = 200):
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = MEDIA_TYPE
    return resp


@bp.errorhandler(ScimError)
def _scim_error(err: ScimError):
    body = {"schemas": [ERROR_SCHEMA], "status": str(err.status), "detail": err.detail}
    if err.scim_type:
        body["scimType"] = err.scim_type
    resp = _answer(body, err.status)
    if err.status == 401:
        resp.headers["WWW-Authenticate"] = 'Bearer realm="scim"'
    return resp


@bp.errorhandler(HTTPException)
def _http_error(err: HTTPException):
    return _scim_error(ScimError(err.code or 400, err.description or err.name))


@bp.before_request
def _authenticate():
    """Constant-time comparison with the configured token; nothing else (no cookie, no CSRF) counts here."""
    expected = current_app.config["SCIM_TOKEN"] or ""
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if not expected or scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), expected.encode()):
        log.warning("SCIM request from %s refused: no valid bearer token", client_address())
        raise ScimError(401, "A valid bearer token is required.")


def resource(user: User) -> dict:
    location = current_app.config["BASE_URL"] + f"/scim/v2/Users/{user.id}"
    created = user.created_at.isoformat().replace("+00:00", "Z")
    return {
        "schemas": [USER_SCHEMA],
        "id": str(user.id),
        "userName": user.email,
        "name": {"formatted": user.name},
        "displayName": user.name,
        "emails": [{"value": user.email, "type": "work", "primary": True}],
        "active": user.active,
        "meta": {"resourceType": "User", "created": created, "lastModified": created, "location": location},
    }


def _body() -> dict:
    try:
        body = request.get_json(force=True, silent=True)
    except RecursionError:  # nested deeper than the JSON parser goes
        body = None
    if not isinstance(body, dict):
        raise ScimError(400, "The request body must be a JSON object.", "invalidSyntax")
    return body


def _text(value, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScimError(400, f"{what} must be a non-empty string.", "invalidValue")
    return value.strip()


def _bool(value, what: str = "active") -> bool:
    """A boolean; Entra ID sends "True"/"False" as strings in PATCH operations."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false"):
        return value.strip().lower() == "true"
    raise ScimError(400, f"{what} must be true or false.", "invalidValue")


def _name_from(body: dict) -> str | None:
    """The display name, or the name's formatted or given + family parts."""
    name = body.get("name")
    if name is not None and not isinstance(name, dict):
        raise ScimError(400, "name must be an object.", "invalidValue")
    name = name or {}
    for candidate in (body.get("displayName"), name.get("formatted"),
                      " ".join(str(name.get(k) or "").strip() for k in ("givenName", "familyName")).strip()):
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return None


def _email_from(body: dict) -> str | None:
    """The primary (else first) e-mail address, else the userName: this tracker knows people by address."""
    emails = body.get("emails")
    if emails is not None:
        if not isinstance(emails, list) or not all(isinstance(e, dict) for e in emails):
            raise ScimError(400, "emails must be a list of objects.", "invalidValue")
        chosen = next((e for e in emails if e.get("primary") is True), emails[0] if emails else None)
        if chosen is not None:
            return _text(chosen.get("value"), "emails.value")
    if "userName" in body:
        return _text(body["userName"], "userName")
    return None


def _find(user_id: str) -> User:
    user = db().get(User, int(user_id)) if user_id.isascii() and user_id.isdigit() and len(user_id) < 12 else None
    if user is None:
        raise ScimError(404, f"User {user_id[:40]} not found.")
    return user


def _run(action) -> User:
    """Run the change in one transaction; a rule's refusal becomes a SCIM error, never a 500."""
    with attempt(explain=False) as done:
        user = action()
    if not done:
        if isinstance(done.error, provisioning.EmailTaken):
            raise ScimError(409, str(done.error), "uniqueness")
        raise ScimError(400, str(done.error), "invalidValue")
    return user


@bp.get("/Users")
def list_users():
    query = select(User).order_by(User.id)
    given = request.args.get("filter")
    if given is not None:
        match = _FILTER.match(given)
        if not match:
            raise ScimError(400, 'Only filter=userName eq "..." is supported.', "invalidFilter")
        wanted = re.sub(r"\\(.)", r"\1", match.group(1)).strip().lower()
        query = query.where(func.lower(User.email) == wanted)
    try:
        start = min(MAX_START, max(1, int(request.args.get("startIndex", 1))))
        count = min(MAX_PAGE, max(0, int(request.args.get("count", 100))))
    except ValueError:
        raise ScimError(400, "startIndex and count must be whole numbers.", "invalidValue") from None
    total = db().scalar(select(func.count()).select_from(query.subquery()))
    page = db().scalars(query.offset(start - 1).limit(count)).all() if count else []
    return _answer({"schemas": [LIST_SCHEMA], "totalResults": total, "startIndex": start,
                    "itemsPerPage": len(page), "Resources": [resource(u) for u in page]})


@bp.post("/Users")
def create_user():
    body = _body()
    email = _email_from(body)
    if email is None:
        raise ScimError(400, "userName is required.", "invalidValue")
    name = _name_from(body) or email.split("@")[0]
    active = _bool(body["active"]) if "active" in body else True
    user = _run(lambda: provisioning.provision(db(), now(), email=email, name=name, active=active,
                                               source=client_address()))
    resp = _answer(resource(user), 201)
    resp.headers["Location"] = resource(user)["meta"]["location"]
    return resp


@bp.get("/Users/<user_id>")
def get_user(user_id: str):
    return _answer(resource(_find(user_id)))


@bp.put("/Users/<user_id>")
def replace_user(user_id: str):
    """Replace: what the body leaves out of name and e-mail stays; `active` left out means active (RFC 7644 3.5.1)."""
    body = _body()
    email = _email_from(body)
    if email is None:
        raise ScimError(400, "userName is required.", "invalidValue")
    name, active = _name_from(body), _bool(body["active"]) if "active" in body else True
    user = _find(user_id)
    _run(lambda: provisioning.change(db(), now(), user, email=email, name=name, active=active, source=client_address()))
    return _answer(resource(user))


# PATCH paths this tracker keeps; anything else a provider sends (title, department, ...) is accepted and ignored.
_NAME_PATHS = {"displayname", "name.formatted"}
_EMAIL_PATHS = {"username", "emails", 'emails[type eq "work"].value', "emails[primary eq true].value"}


def _patch_changes(operations) -> dict:
    """The changes a list of PatchOp operations asks for, as keyword arguments of provisioning.change."""
    if not isinstance(operations, list) or not operations:
        raise ScimError(400, "Operations must be a non-empty list.", "invalidSyntax")
    changes: dict = {}
    for op in operations:
        if not isinstance(op, dict) or str(op.get("op", "")).lower() not in ("add", "replace", "remove"):
            raise ScimError(400, "Each operation needs op: add, replace or remove.", "invalidSyntax")
        path, value = op.get("path"), op.get("value")
        if path is None:  # a value object holding attributes, as Okta sends
            if not isinstance(value, dict):
                raise ScimError(400, "An operation without a path needs an object value.", "invalidValue")
            pairs = list(value.items())
        elif isinstance(path, str):
            pairs = [(path, value)]
        else:
            raise ScimError(400, "path must be a string.", "invalidPath")
        for key, val in pairs:
            key = key.strip()
            low = key.lower()
            if str(op["op"]).lower() == "remove" and low in {"active", "username", *_NAME_PATHS}:
                raise ScimError(400, f"{key} cannot be removed.", "mutability")
            if low == "active":
                changes["active"] = _bool(val)
            elif low in _NAME_PATHS:
                changes["name"] = _text(val, key)
            elif low == "name" and isinstance(val, dict):
                if (name := _name_from({"name": val})) is not None:
                    changes["name"] = name
            elif low in _EMAIL_PATHS:
                changes["email"] = _email_from({"emails": val}) if low == "emails" else _text(val, key)
    return changes


@bp.patch("/Users/<user_id>")
def patch_user(user_id: str):
    body = _body()
    if PATCH_SCHEMA not in (body.get("schemas") or []):
        raise ScimError(400, f"schemas must name {PATCH_SCHEMA}.", "invalidSyntax")
    changes = _patch_changes(body.get("Operations"))
    user = _find(user_id)
    _run(lambda: provisioning.change(db(), now(), user, source=client_address(), **changes))
    return _answer(resource(user))


@bp.delete("/Users/<user_id>")
def delete_user(user_id: str):
    """Deprovisioning deactivates: the account and its history stay, every session ends, open check-outs stay
    on the desk's board as a leaver's."""
    user = _find(user_id)
    _run(lambda: provisioning.change(db(), now(), user, active=False, source=client_address()))
    return "", 204


@bp.route("/<path:rest>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
def elsewhere(rest: str):
    if re.fullmatch(r"Users(/[^/]+)?", rest):  # a known address, asked with a method it does not take
        raise ScimError(405, f"{request.method} is not allowed here.")
    raise ScimError(404, "Only /scim/v2/Users is served here.")
