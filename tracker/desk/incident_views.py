"""Incidents for lost items: the record, the actions taken, and the APPI report checklist; printable and PDF."""

from __future__ import annotations

import io

from flask import Blueprint, current_app, flash, redirect, render_template, request, send_file, url_for
from sqlalchemy import select
from sqlalchemy.orm import joinedload

from .. import queries
from ..custody import policy
from ..http import actor, attempt, client_address, db, found_or_404, get_or_404, now, privileged, record_export
from ..i18n import gettext
from ..models import Event, Incident
from . import appi, incidents
from .forms import AssessmentForm, IncidentActionForm
from .incident_pdf import render

bp = Blueprint("incidents", __name__, url_prefix="/desk/incidents")


@bp.get("/")
@privileged
def index():
    stmt = (select(Incident).options(joinedload(Incident.item))
            .order_by(Incident.closed_at.is_not(None), Incident.opened_at.desc()))
    page = queries.paginate(db(), stmt, request.args.get("page", 1, type=int))
    return render_template("incidents/index.html", page=page)


def _context(incident: Incident) -> dict:
    timeline = list(db().scalars(select(Event).where(Event.item_id == incident.item_id,
                                                     Event.at >= incident.last_known_at)
                                 .order_by(Event.at))) if incident.last_known_at else []
    return {"incident": incident, "duty": appi.report_duty(incident, policy.from_config(current_app.config)),
            "timeline": timeline}


@bp.get("/<int:incident_id>")
@privileged
def show(incident_id: int):
    incident = get_or_404(Incident, incident_id)
    return render_template("incidents/show.html", print_view=request.args.get("print") == "1", **_context(incident))


@bp.get("/by-flag/<int:flag_id>")
@privileged
def by_flag(flag_id: int):
    """The incident a lost flag opened (the board links here from the item's row)."""
    incident = found_or_404(db().scalar(select(Incident).where(Incident.flag_id == flag_id)))
    return render_template("incidents/show.html", print_view=False, **_context(incident))


@bp.post("/<int:incident_id>/action")
@privileged
def action(incident_id: int):
    incident = get_or_404(Incident, incident_id)
    form = IncidentActionForm()
    with attempt():
        incidents.add_action(db(), now(), incident, actor(), form.text.data, source=client_address())
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.post("/<int:incident_id>/assess")
@privileged
def assess(incident_id: int):
    incident = get_or_404(Incident, incident_id)
    form = AssessmentForm()
    with attempt() as done:
        incidents.assess(db(), now(), incident, actor(), financial_harm=form.financial_harm.data,
                         wrongful_purpose=form.wrongful_purpose.data, properly_encrypted=form.properly_encrypted.data,
                         source=client_address())
    if done:
        flash(gettext("The assessment was saved."), "success")
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.post("/<int:incident_id>/close")
@privileged
def close(incident_id: int):
    incident = get_or_404(Incident, incident_id)
    with attempt():
        incidents.close_incident(db(), now(), incident, actor(), source=client_address())
    return redirect(url_for("incidents.show", incident_id=incident_id), 303)


@bp.get("/<int:incident_id>.pdf")
@privileged
def pdf(incident_id: int):
    incident = get_or_404(Incident, incident_id)
    data = render(_context(incident))
    record_export("incident.pdf", incident=incident.id)
    return send_file(io.BytesIO(data), mimetype="application/pdf", as_attachment=True,
                     download_name=f"incident-{incident.id}-{incident.item.asset_tag}.pdf")
