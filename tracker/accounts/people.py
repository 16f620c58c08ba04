"""A "who" field: a person is typed (a name or an e-mail address, resolved by `queries.person_named`), and the
browser suggests people as one types, from /people/suggest (static/suggest.js fills the field's datalist). Pages
that name a person use it instead of a list of everyone in the company."""

from __future__ import annotations

from flask import url_for
from sqlalchemy.orm import Session
from wtforms import Field

from .. import queries
from ..errors import InvalidInput


def suggesting_people(*fields: Field) -> None:
    """Make each text field suggest people as one types (render_field writes its datalist)."""
    for f in fields:
        f.render_kw = {**(f.render_kw or {}), "autocomplete": "off", "list": f"{f.id}-suggestions",
                       "data-suggest": url_for("auth.people_suggest")}


def typed(user) -> str:
    """How a person is written into a "who" field: what choosing their suggestion writes."""
    return f"{user.name} <{user.email}>" if user is not None else ""


def named_in(session: Session, *fields: Field) -> list[int]:
    """The ids of the people typed into `fields`, in order, empty fields skipped; one who is no one, or two people,
    is refused about its field (the error's `about` is the field's name)."""
    ids = []
    for f in fields:
        if (f.data or "").strip():
            try:
                ids.append(queries.person_named(session, f.data).id)
            except InvalidInput as err:
                err.about = f.name
                raise
    return ids
