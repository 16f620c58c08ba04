"""The take-out form on the phone (Flask-WTF, so it carries a CSRF token); `operations` does the real checks."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import (
    BooleanField,
    DateField,
    DateTimeLocalField,
    IntegerField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import Length, Optional

from ..i18n import lazy_gettext as _l


class CheckoutForm(FlaskForm):
    purpose = StringField(_l("Purpose"), validators=[Optional(), Length(max=200)])
    destination = StringField(_l("Destination"), validators=[Optional(), Length(max=200)])
    due = DateTimeLocalField(_l("Due back"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    holder = SelectField(_l("For"), choices=[], validators=[Optional()])
    # Overnight or longer: the rules say when it is needed and how long it may be.
    reason = StringField(_l("Reason for keeping it overnight or longer"), validators=[Optional(), Length(max=200)])
    rules_ack = BooleanField()  # the handling rules were read (asked at the first take-out of the day)
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
        return {int(v) for v in self.present.data or [] if v.isdigit()}


class InspectionForm(FlaskForm):
    """The desk's return inspection of an item whose erasure was left to it."""

    erasure_method = StringField()


class HandoverForm(FlaskForm):
    to = StringField()  # "me" (take over), or the id of the colleague who takes it
    checkout = IntegerField(validators=[Optional()])  # the check-out the page showed; a stale page is refused


class FoundMessageForm(FlaskForm):
    """A finder's message: no account, so the form asks for nothing but the message and a way back."""

    message = TextAreaField()
    contact = StringField()


class ApprovalForm(FlaskForm):
    """One approver's decision: the button tapped ("approve" or "reject"), an optional note, and the step the page
    showed (a step decided meanwhile by someone else is refused, naming who)."""

    decision = StringField()
    note = StringField(_l("Note (optional)"), validators=[Optional(), Length(max=200)])
    step = IntegerField(validators=[Optional()])


class CancelRequestForm(FlaskForm):
    """The requester withdraws their request (the form carries only its CSRF token)."""
