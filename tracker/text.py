"""Free text typed by people: trimmed, bounded, and named in the error when it is too long or missing; and whole
numbers sent as text (ids from a form's list, counts)."""

from __future__ import annotations

from .errors import N_, InvalidInput


def clean(value: str | None, field: str, limit: int, required: bool = False, about: str | None = None) -> str:
    """The trimmed text, or InvalidInput naming `field` (a translatable N_ string) and the limit;
    `about` names the rule's argument, for a form to mark (see errors.DomainError.about)."""
    text = (value if isinstance(value, str) else "" if value is None else str(value)).strip()
    if required and not text:
        raise InvalidInput(N_("%(field)s is required."), field=field, about=about)
    if len(text) > limit:
        raise InvalidInput(N_("%(field)s is too long (at most %(limit)d characters)."), field=field, limit=limit,
                           about=about)
    return text


def as_int(value) -> int | None:
    """The whole number `value` spells in ASCII digits (an id from a form's list, a count), or None: not for other
    scripts' digits, which `str.isdigit` accepts and `int` may not ("²"), nor for more than nine digits, which
    would overflow the database's integer columns."""
    text = value.strip() if isinstance(value, str) else "" if value is None else str(value)
    return int(text) if 0 < len(text) < 10 and text.isascii() and text.isdigit() else None
