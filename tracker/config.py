"""Settings read from TRACKER_* environment variables, each once, through small typed helpers."""

from __future__ import annotations

import os
import re
import secrets
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo

PREFIX = "TRACKER_"
TRUE = ("1", "true", "yes", "on")
FALSE = ("0", "false", "no", "off")


def env_str(name: str, default: str = "") -> str:
    """The variable's text, or `default` when it is unset or empty."""
    value = os.environ.get(PREFIX + name, "")
    return value if value != "" else default


def env_optional(name: str) -> str | None:
    return env_str(name) or None


def _number(name: str, default, kind: type, what: str):
    text = env_str(name)
    if not text:
        return default
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"{PREFIX}{name} must be {what}, got {text!r}") from None


def env_int(name: str, default: int) -> int:
    return _number(name, default, int, "a whole number")


def env_float(name: str, default: float) -> float:
    return _number(name, default, float, "a number")


def env_bool(name: str, default: bool = False) -> bool:
    text = env_str(name).lower()
    if not text:
        return default
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise ValueError(f"{PREFIX}{name} must be 1 or 0, got {text!r}")


def parse_time(text: str, name: str = "DAY_END") -> time:
    """Parse HH:MM into a time; refuse anything else so a typo cannot move the sweep."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{PREFIX}{name} must be HH:MM, got {text!r}")
    return time(int(match[1]), int(match[2]))


def parse_times(text: str, name: str) -> list[time]:
    """A comma list of HH:MM times (empty parts ignored)."""
    return [parse_time(part, name) for part in text.split(",") if part.strip()]


# Erasure is confirmed at return (消去確認) for these kind:class pairs; `*` stands for any, `none` turns it off.
DEFAULT_ERASURE_ON_RETURN = "usb:personal,usb:sensitive,usb:my_number"


def parse_kind_classes(text: str, name: str) -> frozenset[tuple[str, str]]:
    """`usb:personal,*:my_number` as pairs, each part a kind or data class of the models (or `*`)."""
    from .models import DataClass, Kind

    pairs = set()
    for part in (p.strip().lower() for p in text.split(",")):
        if not part or part == "none":
            continue
        kind, _, data_class = part.partition(":")
        if kind not in {"*", *(k.value for k in Kind)} or data_class not in {"*", *(c.value for c in DataClass)}:
            raise ValueError(f"TRACKER_{name}: {part!r} is not kind:class (such as usb:personal, *:my_number)")
        pairs.add((kind, data_class))
    return frozenset(pairs)


def parse_role_map(text: str, name: str = "OIDC_ROLE_MAP") -> dict[str, str]:
    """`tracker-admins=admin,tracker-desk=security`: which identity-provider group gives which role."""
    from .models import Role

    mapping = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        group, _, role = part.rpartition("=")
        if not group.strip() or role.strip() not in {r.value for r in Role}:
            raise ValueError(f"{PREFIX}{name}: {part!r} is not group=role (role one of staff, security, admin)")
        mapping[group.strip()] = role.strip()
    return mapping


def parse_emails(text: str) -> frozenset[str]:
    return frozenset(part.strip().lower() for part in text.split(",") if part.strip())


def instance_path(default: str) -> str:
    return env_str("INSTANCE_PATH", default)


def _secret_key(instance: Path) -> str:
    """Use TRACKER_SECRET_KEY, else one generated once and kept in instance/ (one host only: see check_shared)."""
    given = env_str("SECRET_KEY")
    if given:
        return given
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def check_shared(config: dict) -> None:
    """Several hosts share a PostgreSQL database, and a session signed on one must be accepted on every other: they
    must all sign with the same TRACKER_SECRET_KEY, never with a key each generated into its own instance folder."""
    if not config["DATABASE_URL"].startswith("sqlite") and config.get("SECRET_KEY_FROM_INSTANCE"):
        raise ValueError(f"{PREFIX}SECRET_KEY must be set (the same on every host) when the database is shared: "
                         f"generate one with  python -c 'import secrets; print(secrets.token_hex(32))'")


def check_sign_in(config: dict) -> None:
    """Refuse settings that would lock everyone out: passwords turned off with no single sign-on to replace them,
    or an issuer without the client it must sign in as."""
    if config.get("OIDC_ISSUER") and not config.get("OIDC_CLIENT_ID"):
        raise ValueError(f"{PREFIX}OIDC_CLIENT_ID must be set with {PREFIX}OIDC_ISSUER")
    if not config.get("LOCAL_PASSWORDS", True) and not config.get("OIDC_ISSUER"):
        raise ValueError(f"{PREFIX}LOCAL_PASSWORDS=off needs single sign-on: set {PREFIX}OIDC_ISSUER")


def load(instance_path: str) -> dict:
    """Build the Flask config mapping from the environment."""
    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    timezone = env_str("TIMEZONE", "Asia/Tokyo")
    ZoneInfo(timezone)  # fail at start-up, not at the first sweep
    base_url = env_str("BASE_URL", "http://127.0.0.1:5000").rstrip("/")
    return {
        "DATABASE_URL": env_str("DATABASE_URL", f"sqlite:///{instance / 'tracker.db'}"),
        "SECRET_KEY": _secret_key(instance),
        "SECRET_KEY_FROM_INSTANCE": not env_str("SECRET_KEY"),
        "DB_BUSY_SECONDS": env_float("DB_BUSY_SECONDS", 10.0),
        "BASE_URL": base_url,
        "TIMEZONE": timezone,
        "DAY_END": parse_time(env_str("DAY_END", "19:00")),
        "LATE_SWEEPS": parse_times(env_str("LATE_SWEEPS", "00:00"), "LATE_SWEEPS"),
        "STAFF_SESSION_DAYS": env_int("STAFF_SESSION_DAYS", 30),
        "PRIVILEGED_SESSION_HOURS": env_int("PRIVILEGED_SESSION_HOURS", 12),
        "PRIVILEGED_IDLE_MINUTES": env_int("PRIVILEGED_IDLE_MINUTES", 30),
        "LABELS_DIR": env_str("LABELS_DIR", "labels"),
        "LABEL_FINDER_TEXT": env_str("LABEL_FINDER_TEXT", "拾得された方はQRコードを読み取るか、お近くの交番へお届けください"),
        "LABEL_SHOW_NAME": env_bool("LABEL_SHOW_NAME"),
        "LABEL_PRINTER": env_optional("LABEL_PRINTER"),
        "LABEL_PRINTER_MODEL": env_str("LABEL_PRINTER_MODEL", "QL-820NWB"),
        "REMINDER_MINUTES": env_int("REMINDER_MINUTES", 30),
        "SMTP_HOST": env_optional("SMTP_HOST"),
        "SMTP_PORT": env_int("SMTP_PORT", 0),
        "SMTP_USER": env_optional("SMTP_USER"),
        "SMTP_PASSWORD": env_optional("SMTP_PASSWORD"),
        "SMTP_STARTTLS": env_bool("SMTP_STARTTLS"),
        "SMTP_TLS": env_bool("SMTP_TLS"),
        "SMTP_FROM": env_str("SMTP_FROM", "tracker@localhost"),
        "SMTP_CAFILE": env_optional("SMTP_CAFILE"),
        "DESK_EMAILS": env_str("DESK_EMAILS"),
        "WEBHOOK_URL": env_optional("WEBHOOK_URL"),
        "WEBHOOK_FORMAT": env_str("WEBHOOK_FORMAT", "auto"),
        "APPROVAL_REQUIRED": env_bool("APPROVAL_REQUIRED"),
        "ERASURE_ON_RETURN": parse_kind_classes(env_str("ERASURE_ON_RETURN", DEFAULT_ERASURE_ON_RETURN),
                                                "ERASURE_ON_RETURN"),
        "COMPANY_NAME": env_str("COMPANY_NAME"),
        "FOUND_HOTLINE": env_str("FOUND_HOTLINE"),
        "HANDLING_RULES_JA": env_str("HANDLING_RULES_JA"),
        "HANDLING_RULES_EN": env_str("HANDLING_RULES_EN"),
        "DEFAULT_LANGUAGE": env_str("DEFAULT_LANGUAGE", "ja"),
        "TRUSTED_PROXIES": env_int("TRUSTED_PROXIES", 0),
        # The audit trail: the daily check, its checkpoint file (keep it off the database host, or mail it),
        # retention (nothing younger is ever removed) and shipping to a SIEM as events are committed.
        "AUDIT_CHECK_AT": parse_time(env_str("AUDIT_CHECK_AT", "02:30"), "AUDIT_CHECK_AT"),
        "AUDIT_CHECKPOINT_FILE": env_str("AUDIT_CHECKPOINT_FILE", str(instance / "audit-checkpoints.jsonl")),
        "AUDIT_CHECKPOINT_MAIL": env_optional("AUDIT_CHECKPOINT_MAIL"),
        "AUDIT_RETENTION_YEARS": env_float("AUDIT_RETENTION_YEARS", 5.0),
        "AUDIT_SIEM_FILE": env_optional("AUDIT_SIEM_FILE"),
        "AUDIT_SYSLOG": env_optional("AUDIT_SYSLOG"),
        # Single sign-on through OpenID Connect, on when the issuer is set: the provider's issuer URL exactly as its
        # discovery document names it, this app's client id and secret there, the name on the sign-in button, the
        # ID token claim that lists the person's groups and which group gives which role to a new user.
        "OIDC_ISSUER": env_optional("OIDC_ISSUER"),
        "OIDC_CLIENT_ID": env_optional("OIDC_CLIENT_ID"),
        "OIDC_CLIENT_SECRET": env_optional("OIDC_CLIENT_SECRET"),
        "OIDC_PROVIDER_NAME": env_str("OIDC_PROVIDER_NAME", "SSO"),
        "OIDC_SCOPES": env_str("OIDC_SCOPES", "openid email profile"),
        "OIDC_ROLE_CLAIM": env_str("OIDC_ROLE_CLAIM", "groups"),
        "OIDC_ROLE_MAP": parse_role_map(env_str("OIDC_ROLE_MAP")),
        # Off: only the break-glass admins below may sign in with a password; everyone else uses single sign-on.
        "LOCAL_PASSWORDS": env_bool("LOCAL_PASSWORDS", True),
        "BREAK_GLASS_EMAILS": parse_emails(env_str("BREAK_GLASS_EMAILS")),
        # SCIM 2.0 provisioning (/scim/v2/Users), on when a bearer token is set for the identity provider to use.
        "SCIM_TOKEN": env_optional("SCIM_TOKEN"),
        "HOST": env_str("HOST", "127.0.0.1"),
        "PORT": env_int("PORT", 5000),
        "WORKERS": env_int("WORKERS", 4),
        "METRICS_TOKEN": env_optional("METRICS_TOKEN"),
        "API_RATE_PER_MINUTE": env_int("API_RATE_PER_MINUTE", 120),  # requests per API token and minute
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "SESSION_COOKIE_HTTPONLY": True,
        # The cookie is sent again when the session changes (sign-in, a flash, the idle clock each minute), not on
        # every response: signing it is a measurable part of a phone page.
        "SESSION_REFRESH_EACH_REQUEST": False,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
    }
