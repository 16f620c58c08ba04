"""What the desk's rules share: who may act on the desk, and the notes they write."""

from __future__ import annotations

from .. import text
from ..errors import N_, NotPermitted
from ..models import User

NOTE_LIMIT = 2000


def desk_only(actor: User) -> None:
    if not actor.privileged:
        raise NotPermitted()


def clean_note(value: str | None, required: bool = False) -> str:
    return text.clean(value, N_("Note"), NOTE_LIMIT, required=required)
