"""The desk's list of items due and overdue for a stock-take count (overdue first, by site and department), and
the holders who did not confirm custody when asked."""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request
from sqlalchemy import select

from ..custody import confirmations, policy
from ..http import db, now, privileged
from ..models import Department, Site
from ..text import as_int
from . import schedule

bp = Blueprint("counts_due", __name__, url_prefix="/desk/counts-due")


def _department(raw: str) -> int | None:
    return as_int(raw)


@bp.get("/")
@privileged
def index():
    s = db()
    args = {k: (request.args.get(k) or "").strip()[:20] for k in ("site", "department")}
    page = schedule.due_page(s, now(), policy.from_config(current_app.config), request.args.get("page", 1, type=int),
                             site=args["site"], department_id=_department(args["department"]))
    return render_template("stocktake/due.html", page=page, args=args, main=schedule.MAIN,
                           sites=list(s.execute(select(Site.id, Site.name).order_by(Site.name))),
                           departments=list(s.execute(select(Department.id, Department.name)
                                                      .order_by(Department.name))),
                           unconfirmed=confirmations.unconfirmed(s))
