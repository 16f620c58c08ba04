"""Languages: the user's setting, else the browser's; local times; translated domain errors."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from flask import Flask, Request, current_app, has_app_context, request
from flask.globals import _cv_app
from flask_babel import Babel, force_locale, format_date, get_locale, get_timezone, get_translations
from flask_babel.speaklater import LazyString
from flask_login import current_user
from jinja2 import pass_eval_context
from markupsafe import Markup
from werkzeug.utils import cached_property

from .errors import N_, DomainError
from .models import LANGUAGES

KIND_LABELS = {"laptop": N_("Laptop"), "usb": N_("USB drive"), "folder": N_("Document folder"),
               "bag": N_("Bag"), "other": N_("Other")}
CLASS_LABELS = {"none": N_("No personal data"), "personal": N_("Personal data"),
                "sensitive": N_("Sensitive personal data"), "my_number": N_("My Number (specific personal information)")}
# Erasure at return (消去確認): what was said, and how it was done.
ERASURE_LABELS = {"erased": N_("Erased"), "nothing_written": N_("Nothing was written to it"),
                  "pending": N_("Waiting for return inspection"), "inspected": N_("Inspected by the desk")}
ERASURE_METHOD_LABELS = {"overwrite": N_("Overwritten with erasure software"), "format": N_("Formatted"),
                         "delete": N_("Files deleted"), "key_destroyed": N_("Encryption key destroyed"),
                         "nothing_found": N_("Checked: nothing on it")}
DISPOSAL_METHOD_LABELS = {"destroyed": N_("Physically destroyed (shredded or crushed)"),
                          "degaussed": N_("Degaussed"), "overwritten": N_("Overwritten, then scrapped"),
                          "contractor": N_("Handed to a disposal contractor")}
ROLE_LABELS = {"staff": N_("Staff"), "security": N_("Security desk"), "admin": N_("Admin")}
LANGUAGE_LABELS = {"ja": "日本語", "en": "English"}  # one per code in models.LANGUAGES
EVENT_LABELS = {
    "checkout": N_("Checked out"), "return": N_("Returned"), "missing_on_return": N_("Missing when the bag came back"),
    "handover": N_("Handed over"), "item_created": N_("Registered"), "item_updated": N_("Edited"),
    "item_retired": N_("Retired"), "label_issued": N_("Label issued"),
    "scan_replaced_label": N_("Old label scanned"),
    "found_scan": N_("Scanned by someone not signed in"), "found_message": N_("Message from a finder"),
    "found_handled": N_("Finder's report handled"), "checkout_requested": N_("Approval requested"),
    "checkout_approved": N_("Approved"), "checkout_denied": N_("Denied"),
    "flagged": N_("Flagged overdue"), "flag_acknowledged": N_("Flag acknowledged"),
    "flag_resolved": N_("Flag resolved"), "flag_escalated": N_("Flag escalated"), "item_lost": N_("Marked lost"), "incident_action": N_("Incident action"),
    "incident_assessed": N_("Incident assessed"), "incident_closed": N_("Incident closed"),
    "refused": N_("Refused"), "export": N_("Exported"), "erasure_inspected": N_("Return inspection done"),
    "item_disposed": N_("Disposed of"),
    "handover_offered": N_("Hand-over offered"), "handover_accepted": N_("Hand-over accepted"),
    "custody_confirmed": N_("Custody confirmed by the holder"), "custody_unconfirmed": N_("Custody not confirmed"),
    "handover_declined": N_("Hand-over declined"), "handover_cancelled": N_("Hand-over cancelled"),
    "handover_expired": N_("Hand-over offer lapsed"),
    "approval_step_approved": N_("Approval step approved"), "approval_step_rejected": N_("Approval step rejected"),
    "checkout_request_cancelled": N_("Request cancelled"), "checkout_request_expired": N_("Request expired"),
    "advance_approval_used": N_("Taken out under an approval in advance"),
    "api_request": N_("API request"), "api_token_created": N_("API token made"),
    "api_token_revoked": N_("API token revoked"), "event_webhook_changed": N_("Event webhook changed"),
    # Accounts, departments and rules: for the trail and for event webhooks (HR and SIEM integrations).
    "user_created": N_("Account created"), "user_updated": N_("Account edited"),
    "user_enabled": N_("Account enabled"), "user_disabled": N_("Account disabled"),
    "user_provisioned": N_("Account provisioned (SCIM)"), "password_changed": N_("Password changed"),
    "signin": N_("Signed in"), "signin_failed": N_("Sign-in refused"), "signout": N_("Signed out"),
    "password_check_failed": N_("Password check failed"), "witness_failed": N_("Witness confirmation failed"),
    "department_created": N_("Department created"), "department_renamed": N_("Department renamed"),
    "department_moved": N_("Department moved"), "department_managers_changed": N_("Department managers changed"),
    "rule_changed": N_("Take-out rule changed"),
    "site_created": N_("Site added"), "site_updated": N_("Site changed"),
    "place_created": N_("Storage place added"), "place_renamed": N_("Storage place renamed"),
    "place_retired": N_("Storage place retired"),
    # Stock-takes (棚卸): opening, each count, closing with the report's hash, and each item found missing.
    "stocktake_opened": N_("Stock-take opened"), "stocktake_counted": N_("Counted in a stock-take"),
    "stocktake_closed": N_("Stock-take closed"), "stocktake_missing": N_("Missing at a stock-take"),
}


def _babel_state() -> dict | None:
    """Flask-Babel's per-request state (its chosen locale, zone, ...), or None before it has any or outside Flask."""
    ctx = _cv_app.get(None)
    babel = ctx.g.__dict__.get("_flask_babel") if ctx is not None else None
    return babel.__dict__ if babel is not None else None


def _chosen(key: str):
    state = _babel_state()
    return state.get(key) if state is not None else None


def _locale():
    """`get_locale()`, read where Flask-Babel keeps its choice once made (force_locale swaps it there too)."""
    chosen = _chosen("babel_locale")
    return chosen if chosen is not None else get_locale()


def _timezone():
    """`get_timezone()`, likewise."""
    chosen = _chosen("babel_tzinfo")
    return chosen if chosen is not None else get_timezone()


# One way to write a date per language, the same on pages, PDFs, CSVs and mail: year first, never 12/1/26.
DATE_PATTERNS = {"ja": "yyyy/MM/dd", "en": "yyyy-MM-dd"}


def _date_pattern() -> str:
    return DATE_PATTERNS.get(str(_locale() or "ja"), DATE_PATTERNS["en"])


def when(value: datetime | None, seconds: bool = False) -> str:
    """A moment in the site's time zone as the reader writes it: 2026/12/01 19:00 (ja), 2026-12-01 19:00 (en)."""
    if value is None:
        return ""
    # What Babel's format_datetime(value, "yyyy/MM/dd HH:mm") writes, without parsing the pattern on each call
    # (a board of 100 rows formats 200 moments): naive means UTC, shown in the reader's time zone.
    local = (value if value.tzinfo else value.replace(tzinfo=UTC)).astimezone(_timezone())
    sep = _DATE_SEPARATORS.get(str(_locale() or "ja"), "-")
    text = f"{local.year:04d}{sep}{local.month:02d}{sep}{local.day:02d} {local.hour:02d}:{local.minute:02d}"
    return f"{text}:{local.second:02d}" if seconds else text


_DATE_SEPARATORS = {"ja": "/", "en": "-"}  # DATE_PATTERNS' separators, for `when`


def day(value: date | None) -> str:
    """A calendar date as the reader writes it: 2026/12/01 (ja), 2026-12-01 (en)."""
    return format_date(value, _date_pattern()) if value else ""


def _catalogue():
    """Flask-Babel's `get_translations()` for the locale in force, remembered next to that locale in Flask-Babel's
    own per-request state, so a page's seventy-odd messages look it up once instead of through a dozen context
    proxies each. The locale is compared by identity on every call: `force_locale` (an e-mail written in its
    reader's language in the middle of a request) and `refresh` replace it, and the catalogue follows at once.
    The catalogues themselves are Flask-Babel's process-wide cache (read from the .mo files: code, not state)."""
    state = _babel_state()
    if state is not None:
        seen = state.get("tracker_catalogue")
        if seen is not None and seen[0] is state.get("babel_locale"):
            return seen[1]
    found = get_translations()
    state = _babel_state()  # made by get_translations() inside Flask, with the locale it chose
    if state is not None:
        state["tracker_catalogue"] = (state.get("babel_locale"), found)
    return found


def _gettext(message: str, **params) -> str:
    """Flask-Babel's `gettext`, through `_catalogue`: the message translated, then filled in if given values."""
    text = _catalogue().ugettext(message)
    return text % params if params else text


def gettext(message: str, **params) -> str:
    return _gettext(message, **params)


def lazy_gettext(message: str, **params) -> LazyString:
    """A message translated when it is shown (form labels are made at import), through `_gettext`."""
    return LazyString(_gettext, message, **params)


@pass_eval_context
def _template_gettext(eval_ctx, message: str, **params) -> str:
    """`_()` and `gettext()` in templates: what Jinja's new-style gettext does with Flask-Babel's callable (Markup
    where the template autoescapes, always %-formatted so "%%" reads the same everywhere), in one call."""
    text = _catalogue().ugettext(message)
    if eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 - a message of ours, as Jinja marks it; the values are escaped by %
    return text % params if params or "%" in text else text  # without a "%", formatting would change nothing


@pass_eval_context
def _template_ngettext(eval_ctx, singular: str, plural: str, num: int, **params) -> str:
    params.setdefault("num", num)
    text = _catalogue().ungettext(singular, plural, num)
    if eval_ctx.autoescape:
        text = Markup(text)  # noqa: S704 - a message of ours, as Jinja marks it; the values are escaped by %
    return text % params


def _reader():
    """The signed-in user (or anonymous user) of this request, or None outside one: the object, not the proxy."""
    return current_user._get_current_object()


def _select_locale() -> str:
    user = _reader()
    if user and getattr(user, "is_authenticated", False) and user.language:
        return user.language
    best = request.accept_languages.best_match(LANGUAGES) if request else None
    return best or current_app.config.get("DEFAULT_LANGUAGE", "ja")


def _select_timezone() -> str:
    """Times are shown in the reader's office's zone: their site's, else the settings' (the main office's)."""
    user = _reader() if request else None
    if user and getattr(user, "is_authenticated", False) and user.site_id:
        return zone_of(user.site)
    return zone_of(None)


def zone_of(site) -> str:
    """An office's time zone: the site's, or the main office's (the settings') for None."""
    return site.timezone if site is not None else current_app.config["TIMEZONE"]


def reader_zone() -> str:
    """The zone the pages show times in (and read typed times in): see `_select_timezone`."""
    return str(_timezone())


@contextmanager
def speaking(language: str, zone: str) -> Iterator[None]:
    """Write in `language` with times in `zone` inside (an e-mail to someone at another office), whoever's request
    this is; as Flask-Babel's force_locale, which sets only the language. A zone this machine cannot read (a typo
    in the data) is the main office's, so one site's mistake never stops another's mail."""
    if not has_app_context():  # nothing to write in (force_locale does nothing there either)
        yield
        return
    get_timezone()  # Flask-Babel's per-request state, with the request's own choice made
    state = _babel_state()
    before = state.get("babel_tzinfo")
    try:
        state["babel_tzinfo"] = ZoneInfo(zone)
    except (ZoneInfoNotFoundError, ValueError):
        state["babel_tzinfo"] = ZoneInfo(zone_of(None))
    try:
        with force_locale(language):
            yield
    finally:
        state["babel_tzinfo"] = before


def describe(err: DomainError) -> str:
    """The error's message in the reader's language, with times shown locally."""
    params = {}
    for key, value in err.params.items():
        if isinstance(value, datetime):
            value = when(value)
        elif key == "field" and isinstance(value, str):
            value = _gettext(value)
        elif key == "kind" and isinstance(value, str):
            value = label(KIND_LABELS, value)
        elif key == "data_class" and isinstance(value, str):
            value = label(CLASS_LABELS, value)
        params[key] = value
    return _gettext(err.message, **params)


DEFAULT_RULES = N_(
    "Keep it on your person at all times. Never leave it on a luggage rack, in a car or at a restaurant. "
    "Do not take it to drinks or parties. Report a loss to the security desk at once."
)


def handling_rules() -> str:
    """The site's handling rules for personal data, in the reader's language."""
    lang = str(_locale() or "ja")
    configured = current_app.config.get(f"HANDLING_RULES_{lang.upper()}")
    return configured or _gettext(DEFAULT_RULES)


def label(mapping: dict[str, str], value) -> str:
    key = getattr(value, "value", value)
    return _gettext(mapping[key]) if key in mapping else str(key)


def compile_catalogues(folder: str) -> list[str]:
    """Compile each language's messages.po whose messages.mo is missing or older, so the app never falls back
    to English silently however it is started (make, flask, gunicorn). Returns the languages compiled."""
    from babel.messages.mofile import write_mo
    from babel.messages.pofile import read_po

    compiled = []
    for lang in LANGUAGES:
        po = os.path.join(folder, lang, "LC_MESSAGES", "messages.po")
        mo = po[:-2] + "mo"
        if not os.path.exists(po) or (os.path.exists(mo) and os.path.getmtime(mo) >= os.path.getmtime(po)):
            continue
        try:
            with open(po, "rb") as src:
                catalog = read_po(src, locale=lang)
            with open(mo + ".tmp", "wb") as out:
                write_mo(out, catalog)
            os.replace(mo + ".tmp", mo)
        except OSError as err:
            raise RuntimeError(f"The {lang} translations are not compiled and cannot be written here ({err}). "
                               "Run `make translations` (pybabel compile -d tracker/translations) when installing.") from err
        compiled.append(lang)
    return compiled


@functools.cache
def _wtforms_messages(locale: str):
    """WTForms' own messages for a locale, read once per process (Flask-WTF would read the file per request)."""
    from babel import support
    from wtforms.i18n import messages_path

    return support.Translations.load(messages_path(), [locale], domain="wtforms")


class _Request(Request):
    @cached_property
    def wtforms_translations(self):  # Flask-WTF asks the request for these before it loads them itself
        return _wtforms_messages(str(_locale()))


def init_app(app: Flask) -> None:
    app.request_class = type("Request", (_Request, app.request_class), {})
    app.config.setdefault("BABEL_TRANSLATION_DIRECTORIES",
                          os.path.join(os.path.dirname(os.path.abspath(__file__)), "translations"))
    compile_catalogues(app.config["BABEL_TRANSLATION_DIRECTORIES"])
    app.config["BABEL_DEFAULT_TIMEZONE"] = app.config["TIMEZONE"]
    app.config.setdefault("BABEL_DEFAULT_LOCALE", app.config.get("DEFAULT_LANGUAGE", "ja"))
    Babel(app, locale_selector=_select_locale, timezone_selector=_select_timezone)
    # Replaces what Babel installed (and the i18n extension's `_` alias, which looked `gettext` up again per call).
    app.jinja_env.globals.update(_=_template_gettext, gettext=_template_gettext, ngettext=_template_ngettext)

    @app.template_filter("dt")
    def _dt(value: datetime | None, fmt: str = "short") -> str:
        """`x|dt` to the minute, `x|dt('medium')` to the second."""
        return when(value, seconds=fmt == "medium")

    app.add_template_filter(day, "day")

    app.jinja_env.globals.update({
        "kind_label": lambda v: label(KIND_LABELS, v),
        "class_label": lambda v: label(CLASS_LABELS, v),
        "role_label": lambda v: label(ROLE_LABELS, v),
        "event_label": lambda v: label(EVENT_LABELS, v),
        "erasure_label": lambda v: label(ERASURE_LABELS, v),
        "erasure_method_label": lambda v: label(ERASURE_METHOD_LABELS, v),
        "disposal_method_label": lambda v: label(DISPOSAL_METHOD_LABELS, v),
        "LANGUAGE_LABELS": LANGUAGE_LABELS,
        "current_locale": lambda: str(_locale() or "ja"),
    })


__all__ = ["gettext", "lazy_gettext", "describe", "init_app", "label", "when", "day"]
