"""The pages of a take-out request: what it asks and under which rule, its steps, Approve / Reject for whoever's turn
it is (or their deputy, or the desk), Cancel for the requester, and each approver's list of what waits for them."""

from __future__ import annotations

import logging

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy.exc import SQLAlchemyError

from ..http import actor, attempt, client_address, db, get_or_404, now, signed_in
from ..i18n import gettext
from ..models import CheckoutRequest, RequestStatus
from . import approvals, policy
from .forms import ApprovalForm, CancelRequestForm

bp = Blueprint("approvals", __name__)
log = logging.getLogger(__name__)


_COUNTED = "tracker.approvals_waiting"  # flask.g: the header's count, where the page read it with its own statement


def counted(n: int) -> None:
    """The header's count, read by the page with what it shows (`approvals.waiting_count_column`)."""
    g.setdefault(_COUNTED, n)


@bp.app_context_processor
def _navigation() -> dict:
    """`approvals_waiting()` for the navigation: asked only when a page's header is drawn, by a signed-in user."""

    def approvals_waiting() -> int:
        """The count is a hint in the header: a page, an error page above all (its request's transaction may be the
        failed one it explains), is drawn without it when the database fails."""
        user = current_user._get_current_object()  # the user itself: read twice below, not through the proxy
        if user is None or not user.is_authenticated:
            return 0
        if g.get(_COUNTED) is not None:
            return g.get(_COUNTED)
        try:
            return approvals.waiting_count(db(), user, now())
        except SQLAlchemyError as err:
            log.warning("the approvals waiting could not be counted for the header: %s", err)
            return 0

    return {"approvals_waiting": approvals_waiting}


def _visible(request_id: int) -> CheckoutRequest:
    req = get_or_404(CheckoutRequest, request_id)
    if not approvals.may_see(db(), req, current_user):
        abort(403)
    return req


@bp.get("/requests/<int:request_id>")
@signed_in
def show(request_id: int):
    """The request's page; `fragment=1` is its state alone, which the requester's page fetches to stay current."""
    s = db()
    req = _visible(request_id)
    step = approvals.current_step(req)
    context = dict(req=req, now=now(), step=step, rule=approvals.rule_of(req),
                   people={st.id: approvals.approvers(s, req, st) for st in req.steps})
    if request.args.get("fragment") == "1":
        return render_template("custody/_request_state.html", **context)
    standing = approvals.standing(s, req, step, current_user) if step is not None else None
    expired = req.expires_at is not None and req.expires_at <= context["now"]
    return render_template("custody/request.html", standing=None if expired else standing, form=ApprovalForm(),
                           **context)


@bp.post("/requests/<int:request_id>/decide")
@signed_in
def decide(request_id: int):
    req = _visible(request_id)
    form = ApprovalForm()
    if form.decision.data not in ("approve", "reject"):
        abort(400)
    approve = form.decision.data == "approve"
    with attempt() as done:
        approvals.decide(db(), now(), request=req, actor=actor(), approve=approve, note=form.note.data or "",
                         step_id=form.step.data, policy=policy.from_config(current_app.config),
                         source=client_address())
    if done:
        flash(gettext("Approved.") if approve else gettext("Rejected."), "success")
    return redirect(url_for("approvals.show", request_id=request_id), 303)


@bp.post("/requests/<int:request_id>/cancel")
@signed_in
def cancel(request_id: int):
    req = _visible(request_id)
    CancelRequestForm()  # the CSRF check happens on every POST; the form carries nothing else
    with attempt() as done:
        approvals.cancel(db(), now(), request=req, actor=actor(), source=client_address())
    if done:
        flash(gettext("Your request is cancelled."), "success")
    return redirect(url_for("approvals.show", request_id=request_id), 303)


@bp.get("/approvals")
@signed_in
def mine():
    """What waits for the signed-in person's decision (as approver, deputy, or the desk's own steps)."""
    moment = now()
    return render_template("custody/approvals.html", requests=approvals.waiting_for(db(), current_user, moment),
                           now=moment, pending=RequestStatus.pending)
