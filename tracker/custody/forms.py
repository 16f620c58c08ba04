"""The take-out form on the phone (Flask-WTF, so it carries a CSRF token); `operations` does the real checks."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    HiddenField,
    IntegerField,
    PasswordField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
    TimeField,
)
from wtforms.validators import Length, Optional

from ..i18n import lazy_gettext as _l
from ..models import Approval, Overnight
from ..text import as_int


class CheckoutForm(FlaskForm):
    purpose = StringField(_l("Purpose"), validators=[Optional(), Length(max=200)])
    destination = StringField(_l("Destination"), validators=[Optional(), Length(max=200)])
    due = DateTimeLocalField(_l("Due back"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    # The desk's "for whom": a name or an e-mail address, suggested as it is typed (accounts.people); empty for
    # the desk itself. No page lists every person in the company.
    holder = StringField(_l("For"), validators=[Optional(), Length(max=300)],
                         description=_l("Their name or e-mail address; leave it empty to take it out yourself."))
    # Overnight or longer: the rules say when it is needed and how long it may be.
    reason = StringField(_l("Reason for keeping it overnight or longer"), validators=[Optional(), Length(max=200)])
    rules_ack = BooleanField()  # the handling rules were read (asked at the first take-out of the day)
    # The second person, where the class's rule asks for a witness: they type their own credentials.
    witness_email = StringField(_l("Witness's e-mail address"), validators=[Optional(), Length(max=254)])
    witness_password = PasswordField(_l("Witness's password"), validators=[Optional(), Length(max=200)])
    # An approval in advance (事前申請): the later date the take-out is for; empty for a take-out now.
    for_date = DateField(_l("Ask in advance for a later date"), validators=[Optional()])


class ReturnForm(FlaskForm):
    confirm_contents = BooleanField()  # a bag: only the ticked contents came back
    present = SelectMultipleField(coerce=str, validate_choice=False)  # ids of the contents that came back
    erasure = StringField()  # erased, nothing_written or pending (leave it for the desk's inspection)
    erasure_method = StringField()  # how it was erased (operations.ERASURE_METHODS)

    def present_ids(self) -> set[int] | None:
        """The contents confirmed back, or None when the return confirms everything."""
        if not self.confirm_contents.data:
            return None
        return {i for v in self.present.data or [] if (i := as_int(v)) is not None}


class InspectionForm(FlaskForm):
    """The desk's return inspection of an item whose erasure was left to it."""

    erasure_method = StringField()


class HandoverForm(FlaskForm):
    to = StringField()  # "me" (take over), or the name or e-mail address of the colleague who takes it
    checkout = IntegerField(validators=[Optional()])  # the check-out the page showed; a stale page is refused


class AcceptOfferForm(FlaskForm):
    """The receiver's acceptance of a hand-over: the handling rules ticked where the item's rule asks for it."""

    rules_ack = BooleanField()


class FoundMessageForm(FlaskForm):
    """A finder's message: no account, so the form asks for nothing but the message and a way back."""

    message = TextAreaField()
    contact = StringField()


APPROVAL_LABELS = {Approval.nobody.value: _l("Nobody"), Approval.manager.value: _l("The holder's manager"),
                   Approval.manager_desk.value: _l("The manager, then the security desk"),
                   Approval.named.value: _l("Named approvers, in order")}
OVERNIGHT_LABELS = {Overnight.allowed.value: _l("Allowed (with a reason)"),
                    Overnight.approval.value: _l("Needs approval"), Overnight.forbidden.value: _l("Forbidden")}


class RuleForm(FlaskForm):
    """One take-out rule (a kind and data class); `rules.save` checks the approvers and the numbers."""

    approval = SelectField(_l("Who approves a take-out"), choices=[])
    # Each a person's name or e-mail address, suggested as it is typed (accounts.people).
    approver1 = StringField(_l("First approver"), validators=[Optional(), Length(max=300)])
    approver2 = StringField(_l("Second approver"), validators=[Optional(), Length(max=300)])
    approver3 = StringField(_l("Third approver"), validators=[Optional(), Length(max=300)])
    overnight = SelectField(_l("Overnight or longer"), choices=[],
                            description=_l("Needs approval: also for a take-out past the curfew or the maximum "
                                           "duration, which are otherwise refused."))
    curfew = TimeField(_l("Curfew (back by, local time)"), validators=[Optional()],
                       description=_l("Empty: no curfew. A take-out must be due back by this time the same day."))
    max_hours = IntegerField(_l("Maximum hours out"), validators=[Optional()], description=_l("Empty: no limit."))
    erasure_on_return = BooleanField(_l("Erasure confirmed at return (消去確認)"))
    witness = BooleanField(_l("A second person witnesses the take-out (two-person rule)"))
    handling_ack = BooleanField(_l("The holder ticks the handling rules (first take-out of the day)"))
    escalate_after_hours = IntegerField(_l("Escalate an unanswered overdue flag after (hours)"),
                                        validators=[Optional()], description=_l("Empty: no escalation."))
    count_every_months = IntegerField(_l("Count it in a stock-take every (months)"), validators=[Optional()],
                                      description=_l("Empty: no next count date."))
    version = HiddenField()  # the rule's version the page showed: a save over someone else's since is refused
    confirm_every_days = IntegerField(_l("Holders of long take-outs confirm custody every (days)"),
                                      validators=[Optional()],
                                      description=_l("They are asked by e-mail and confirm by scanning the item's "
                                                     "label. Empty: never asked."))

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.approval.choices = list(APPROVAL_LABELS.items())
        self.overnight.choices = list(OVERNIGHT_LABELS.items())

    def approvers(self) -> list[StringField]:
        return [self.approver1, self.approver2, self.approver3]


class ApprovalForm(FlaskForm):
    """One approver's decision: the button tapped ("approve" or "reject"), an optional note, and the step the page
    showed (a step decided meanwhile by someone else is refused, naming who)."""

    decision = StringField()
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=200)])
    step = IntegerField(validators=[Optional()])


class CancelRequestForm(FlaskForm):
    """The requester withdraws their request (the form carries only its CSRF token)."""
