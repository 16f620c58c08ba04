"""The security desk's list of everything out, overdue first."""

from __future__ import annotations

from flask import Blueprint, render_template, request

from . import queries
from .web import db, now, privileged

bp = Blueprint("desk", __name__, url_prefix="/desk")


@bp.get("/")
@privileged
def board():
    moment = now()
    page = queries.paginate(db(), queries.desk_stmt(moment), request.args.get("page", 1, type=int))
    return render_template("desk/board.html", page=page, now=moment)
