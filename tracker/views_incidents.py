"""Incidents for lost items: the record, the actions taken, and the APPI report checklist; printable and PDF."""

from __future__ import annotations

import io

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, send_file, url_for
from flask_login import current_user
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from . import flags, policy, queries
from .errors import DomainError
from .i18n import gettext
from .models import Event, Incident
from .web import client_address, db, flash_error, now, privileged

bp = Blueprint("incidents", __name__, url_prefix="/desk/incidents")


def _incident(incident_id: int) -> Incident:
    incident = db().get(Incident, incident_id)
    if incident is None:
        abort(404)
    return incident


@bp.get("/")
@privileged
def index():
    stmt = (select(Incident).options(joinedload(Incident.item))
            .order_by(Incident.closed_at.is_not(None), Incident.opened_at.desc()))
    page = queries.paginate(db(), stmt, request.args.get("page", 1, type=int))
    return render_template("desk/incidents.html", page=page)


def _context(incident: Incident) -> dict:
    s = db()
    timeline = list(s.scalars(select(Event).where(Event.item_id == incident.item_id, Event.at >= incident.last_known_at)
                              .order_by(Event.at))) if incident.last_known_at else []
    return {"incident": incident, "duty": flags.report_duty(incident, policy.from_config(current_app.config)),
            "timeline": timeline}


@bp.get("/<int:incident_id>")
@privileged
def show(incident_id: int):
    incident = _incident(incident_id)
    return render_template("desk/incident.html", print_view=request.args.get("print") == "1", **_context(incident))


@bp.get("/by-flag/<int:flag_id>")
@privileged
def by_flag(flag_id: int):
    """The incident a lost flag opened (the board links here from the item's row)."""
    incident = db().scalar(select(Incident).where(Incident.flag_id == flag_id))
    if incident is None:
        abort(404)
    return render_template("desk/incident.html", print_view=False, **_context(incident))


@bp.post("/<int:incident_id>/action")
@privileged
def action(incident_id: int):
    s = db()
    incident = _incident(incident_id)
    try:
        flags.add_action(s, now(), incident, current_user._get_current_object(), request.form.get("text", ""),
                         source=client_address())
    except DomainError as err:
        s.rollback()
        flash_error(err)
    else:
        s.commit()
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.post("/<int:incident_id>/assess")
@privileged
def assess(incident_id: int):
    s = db()
    incident = _incident(incident_id)
    flags.assess(s, now(), incident, current_user._get_current_object(),
                 financial_harm=request.form.get("financial_harm") == "1",
                 wrongful_purpose=request.form.get("wrongful_purpose") == "1",
                 properly_encrypted=request.form.get("properly_encrypted") == "1", source=client_address())
    s.commit()
    flash(gettext("The assessment was saved."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.post("/<int:incident_id>/close")
@privileged
def close(incident_id: int):
    s = db()
    flags.close_incident(s, now(), _incident(incident_id), current_user._get_current_object(), source=client_address())
    s.commit()
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.get("/<int:incident_id>.pdf")
@privileged
def pdf(incident_id: int):
    from .incident_pdf import render

    incident = _incident(incident_id)
    data = render(_context(incident), current_app.config["TIMEZONE"])
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"incident-{incident.id}-{incident.item.asset_tag}.pdf")
