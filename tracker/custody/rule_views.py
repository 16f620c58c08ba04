"""The take-out rules page: every kind and data class with its rule, edited one row at a time by admins (the
security desk may read it), and the recommended set applied with one button."""

from __future__ import annotations

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ..accounts.people import named_in, suggesting_people, typed
from ..http import actor, admin_only, attempt, client_address, db, now, privileged
from ..i18n import describe, gettext
from ..models import Approval, DataClass, Kind, Overnight, User
from ..text import as_int
from . import policy, rules
from .forms import APPROVAL_LABELS, OVERNIGHT_LABELS, RuleForm

bp = Blueprint("admin_rules", __name__, url_prefix="/admin/rules")

# The form's field for each argument of `rules.save` a refusal can be about.
_FIELD_OF = {"approvers": "approver1", "max_hours": "max_hours", "escalate_after_hours": "escalate_after_hours",
             "count_every_months": "count_every_months", "confirm_every_days": "confirm_every_days"}


def _policy() -> policy.Policy:
    return policy.from_config(current_app.config)


def _names(ids: set[int]) -> dict[int, str]:
    return {i: name for i, name in db().execute(select(User.id, User.name).where(User.id.in_(ids)))} if ids else {}


@bp.get("/")
@privileged
def index():
    s = db()
    table = rules.all_rules(s, _policy())
    return render_template("admin_rules/index.html", rules=table, changes=rules.changes(s),
                           names=_names({i for r in table for i in r.approvers}),
                           approval_labels=APPROVAL_LABELS, overnight_labels=OVERNIGHT_LABELS)


def _rule_or_404(kind: str, data_class: str) -> rules.Rule:
    if kind not in {k.value for k in Kind} or data_class not in {c.value for c in DataClass}:
        abort(404)
    return next(r for r in rules.all_rules(db(), _policy()) if (r.kind, r.data_class) == (kind, data_class))


def _form(current: rules.Rule) -> RuleForm:
    """The form, its approvers typed (suggested as one types); on the page first shown, the rule's current
    approvers, even one disabled since (saving then refuses them at their field)."""
    form = RuleForm()
    suggesting_people(*form.approvers())
    if request.method == "GET":
        form.version.data = str(current.version)
        form.approval.data, form.overnight.data = current.approval.value, current.overnight.value
        named = {u.id: u for u in db().scalars(select(User).where(User.id.in_(current.approvers)))}
        for f, ident in zip(form.approvers(), current.approvers, strict=False):
            f.data = typed(named.get(ident))
        form.curfew.data, form.max_hours.data = current.curfew, current.max_hours
        form.erasure_on_return.data, form.witness.data = current.erasure_on_return, current.witness
        form.handling_ack.data, form.escalate_after_hours.data = current.handling_ack, current.escalate_after_hours
        form.count_every_months.data, form.confirm_every_days.data = (current.count_every_months,
                                                                      current.confirm_every_days)
    return form


def _from_form(current: rules.Rule, form: RuleForm) -> rules.Rule:
    """The rule as the form has it, made to the version the page showed (a page from before versions were sent
    changes the current one). An approver typed who is no one, or two people, is refused about their field."""
    shown = as_int(form.version.data)
    named = form.approval.data == Approval.named.value  # else no approvers are kept
    approvers = named_in(db(), *form.approvers()) if named else []
    return rules.Rule(kind=current.kind, data_class=current.data_class, approval=Approval(form.approval.data),
                      approvers=tuple(approvers),
                      overnight=Overnight(form.overnight.data), curfew=form.curfew.data,
                      max_hours=form.max_hours.data, erasure_on_return=form.erasure_on_return.data,
                      witness=form.witness.data, handling_ack=form.handling_ack.data,
                      escalate_after_hours=form.escalate_after_hours.data,
                      count_every_months=form.count_every_months.data,
                      confirm_every_days=form.confirm_every_days.data,
                      version=shown if shown is not None else current.version)


@bp.route("/<kind>/<data_class>", methods=["GET", "POST"])
@admin_only
def edit(kind: str, data_class: str):
    current = _rule_or_404(kind, data_class)
    form = _form(current)
    if form.validate_on_submit():
        with attempt(explain=False) as done:
            rules.save(db(), now(), _from_form(current, form), actor=actor(), source=client_address())
        if done:
            flash(gettext("The take-out rule is saved."), "success")
            return redirect(url_for("admin_rules.index"))
        if isinstance(done.error, rules.RuleChanged):  # someone saved meanwhile: the form again, as it is now
            flash(describe(done.error), "error")
            return redirect(url_for("admin_rules.edit", kind=kind, data_class=data_class), 303)
        if done.error.about in _FIELD_OF or done.error.about in form:
            field = form[_FIELD_OF.get(done.error.about, done.error.about)]
            field.errors = [*field.errors, describe(done.error)]
        else:
            flash(describe(done.error), "error")
    return (render_template("admin_rules/form.html", form=form, rule=current),
            400 if request.method == "POST" else 200)


@bp.post("/recommended")
@admin_only
def recommended():
    with attempt() as done:
        saved = rules.apply_recommended(db(), now(), actor=actor(), policy=_policy(), source=client_address())
    if done:
        flash(gettext("The recommended rules are applied: %(n)d rule(s) changed.", n=len(saved)), "success")
    return redirect(url_for("admin_rules.index"), 303)
