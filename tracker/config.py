"""Settings read from TRACKER_* environment variables, with safe defaults."""

from __future__ import annotations

import os
import re
import secrets
from datetime import time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

PREFIX = "TRACKER_"


def _env(name: str, default: str | None = None) -> str | None:
    value = os.environ.get(PREFIX + name)
    return value if value not in (None, "") else default


def parse_day_end(text: str) -> time:
    """Parse HH:MM into a time; refuse anything else so a typo cannot move the sweep."""
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 23 or int(match[2]) > 59:
        raise ValueError(f"{PREFIX}DAY_END must be HH:MM, got {text!r}")
    return time(int(match[1]), int(match[2]))


def _secret_key(instance: Path) -> str:
    """Use TRACKER_SECRET_KEY, else one generated once and kept in instance/."""
    given = _env("SECRET_KEY")
    if given:
        return given
    path = instance / "secret_key"
    if not path.exists():
        instance.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip()


def load(instance_path: str) -> dict:
    """Build the Flask config mapping from the environment."""
    instance = Path(instance_path)
    instance.mkdir(parents=True, exist_ok=True)
    timezone = _env("TIMEZONE", "Asia/Tokyo")
    ZoneInfo(timezone)  # fail at start-up, not at the first sweep
    base_url = (_env("BASE_URL", "http://127.0.0.1:5000") or "").rstrip("/")
    return {
        "DATABASE_URL": _env("DATABASE_URL", f"sqlite:///{instance / 'tracker.db'}"),
        "SECRET_KEY": _secret_key(instance),
        "BASE_URL": base_url,
        "TIMEZONE": timezone,
        "DAY_END": parse_day_end(_env("DAY_END", "19:00") or "19:00"),
        "STAFF_SESSION_DAYS": int(_env("STAFF_SESSION_DAYS", "30") or 30),
        "PRIVILEGED_SESSION_HOURS": int(_env("PRIVILEGED_SESSION_HOURS", "12") or 12),
        "PRIVILEGED_IDLE_MINUTES": int(_env("PRIVILEGED_IDLE_MINUTES", "30") or 30),
        "LABELS_DIR": _env("LABELS_DIR", "labels"),
        "LABEL_FINDER_TEXT": _env("LABEL_FINDER_TEXT", "拾得された方はQRコードを読み取るか、お近くの交番へお届けください"),
        "LABEL_SHOW_NAME": (_env("LABEL_SHOW_NAME", "0") or "0").lower() in ("1", "true", "yes", "on"),
        "LABEL_PRINTER": _env("LABEL_PRINTER"),
        "LATE_SWEEPS": _env("LATE_SWEEPS", "00:00") or "",
        "REMINDER_MINUTES": int(_env("REMINDER_MINUTES", "30") or 30),
        "SMTP_HOST": _env("SMTP_HOST"),
        "SMTP_PORT": int(_env("SMTP_PORT", "0") or 0),
        "SMTP_USER": _env("SMTP_USER"),
        "SMTP_PASSWORD": _env("SMTP_PASSWORD"),
        "SMTP_STARTTLS": (_env("SMTP_STARTTLS", "0") or "0").lower() in ("1", "true", "yes", "on"),
        "SMTP_TLS": (_env("SMTP_TLS", "0") or "0").lower() in ("1", "true", "yes", "on"),
        "SMTP_FROM": _env("SMTP_FROM", "tracker@localhost"),
        "SMTP_CAFILE": _env("SMTP_CAFILE"),
        "DESK_EMAILS": _env("DESK_EMAILS", "") or "",
        "WEBHOOK_URL": _env("WEBHOOK_URL"),
        "APPROVAL_REQUIRED": (_env("APPROVAL_REQUIRED", "0") or "0").lower() in ("1", "true", "yes", "on"),
        "COMPANY_NAME": _env("COMPANY_NAME", "") or "",
        "FOUND_HOTLINE": _env("FOUND_HOTLINE", "") or "",
        "HANDLING_RULES_JA": _env("HANDLING_RULES_JA", "") or "",
        "HANDLING_RULES_EN": _env("HANDLING_RULES_EN", "") or "",
        "LABEL_PRINTER_MODEL": _env("LABEL_PRINTER_MODEL", "QL-820NWB"),
        "DEFAULT_LANGUAGE": _env("DEFAULT_LANGUAGE", "ja"),
        "TRUSTED_PROXIES": int(_env("TRUSTED_PROXIES", "0") or 0),
        "SESSION_COOKIE_SECURE": base_url.startswith("https://"),
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "PERMANENT_SESSION_LIFETIME": timedelta(days=int(_env("STAFF_SESSION_DAYS", "30") or 30)),
        "MAX_CONTENT_LENGTH": 5 * 1024 * 1024,
        "WTF_CSRF_TIME_LIMIT": None,
    }
