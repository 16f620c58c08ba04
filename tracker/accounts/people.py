"""A "who" field: a person is typed (a name or an e-mail address, resolved by `queries.person_named`), and the
browser suggests people as one types, from /people/suggest (static/suggest.js fills the field's datalist). Pages
that name a person use it instead of a list of everyone in the company."""

from __future__ import annotations

from flask import url_for
from wtforms import Field


def suggesting_people(*fields: Field) -> None:
    """Make each text field suggest people as one types (render_field writes its datalist)."""
    for f in fields:
        f.render_kw = {**(f.render_kw or {}), "autocomplete": "off", "list": f"{f.id}-suggestions",
                       "data-suggest": url_for("auth.people_suggest")}


def typed(user) -> str:
    """How a person is written into a "who" field: what choosing their suggestion writes."""
    return f"{user.name} <{user.email}>" if user is not None else ""
