"""A form field as the pages show it: its label, its input, a hint and its errors, written in Python.

Jinja's `field` macro (templates/_macros.html) calls `render_field`; the scan page (custody/item.html) calls it
directly, which spares each field a macro call. It writes what WTForms' widgets write for
the common inputs (text, e-mail, password, dates, numbers) without their general machinery, which cost a
phone page more than its database reads; selects, check boxes and text areas still go through WTForms.
"""

from __future__ import annotations

from markupsafe import Markup, escape
from wtforms.widgets import DateInput, Input, PasswordInput

# The widgets written here: plain inputs, passwords, and the date and time inputs (whose min and max may be dates).
_WRITTEN = {Input.__call__, PasswordInput.__call__, DateInput.__call__}

_BOOLEAN = ("BooleanField",)


def _attributes(attrs: dict) -> str:
    """HTML attributes in name order, as WTForms writes them: True alone, False left out, values escaped."""
    out = []
    for name in sorted(attrs):
        value = attrs[name]
        if value is True:
            out.append(name)
        elif value is not False:
            out.append(f'{name}="{escape(value)}"')
    return " ".join(out)


def _input(f, attrs: dict) -> Markup:
    """An <input> for a field whose widget is a plain WTForms Input, with the validators' attributes
    (maxlength, required, ...) that the widget would add."""
    widget = f.widget
    attrs = {"id": f.id, "type": widget.input_type, "name": f.name, **(f.render_kw or {}), **attrs}
    attrs["value"] = "" if isinstance(widget, PasswordInput) and widget.hide_value else f._value()
    flags = vars(f.flags)  # the flags the validators set (WTForms' Flags answers None for any other name)
    for name in widget.validation_attrs:
        value = flags.get(name)
        if value is not None and name not in attrs:
            attrs[name] = value() if callable(value) else value
    format = getattr(f, "format", None)
    if format is not None and type(widget).__call__ is DateInput.__call__:  # a date's bounds in its own format
        format = format[0] if isinstance(format, list) else format
        for name in ("min", "max"):
            if hasattr(attrs.get(name), "strftime"):
                attrs[name] = attrs[name].strftime(format)
    return Markup(f"<input {_attributes(attrs)}>")  # noqa: S704 - every value is escaped in _attributes


def _control(f, attrs: dict) -> Markup:
    widget = f.widget
    if type(widget).__call__ in _WRITTEN:
        return _input(f, attrs)
    return f(**{k.replace("-", "_"): v for k, v in attrs.items()})


def render_field(f, autofocus: bool = False, autocomplete: str | None = None, hint: str | None = None) -> Markup:
    """The field's block: label, control (with the field's own `render_kw`; a field with suggestions gets the
    datalist they fill), hint (described by), errors (marked invalid, described by)."""
    hint = hint or f.description
    errors = f.errors
    described = " ".join(x for x in ((f"{f.id}-hint" if hint else ""), (f"{f.id}-error" if errors else "")) if x)
    attrs = {"autofocus": bool(autofocus), "autocomplete": autocomplete or (f.render_kw or {}).get("autocomplete", False),
             "aria-invalid": "true" if errors else False, "aria-describedby": described or False}
    label_text = escape(f.label.text)
    if f.type in _BOOLEAN:
        body = f"<label>{_control(f, attrs)} {label_text}</label>"
    else:
        body = f'<label for="{escape(f.id)}">{label_text}</label>\n  {_control(f, attrs)}'
        suggest = f.render_kw or {}
        if suggest.get("list") and suggest.get("data-suggest"):  # filled as one types (static/suggest.js)
            body += f'\n  <datalist id="{escape(suggest["list"])}"></datalist>'
    parts = [f'<div class="field{" has-error" if errors else ""}">', f"  {body}"]
    if hint:
        parts.append(f'  <small id="{escape(f.id)}-hint">{escape(hint)}</small>')
    if errors:
        messages = "".join(f'<p class="error">{escape(e)}</p>' for e in errors)
        parts.append(f'  <div id="{escape(f.id)}-error">{messages}</div>')
    parts.append("</div>")
    return Markup("\n".join(parts))  # noqa: S704 - every value above is escaped
