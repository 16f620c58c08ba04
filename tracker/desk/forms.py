"""The desk's forms (Flask-WTF: declared fields and a CSRF token); the rules in `flags` and `incidents` check
the values and say what is wrong, so these only name the fields."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import BooleanField, HiddenField, IntegerField, SelectMultipleField, StringField, TextAreaField
from wtforms.validators import Optional


class NoteForm(FlaskForm):
    note = TextAreaField()


class AcknowledgeForm(NoteForm):
    new_due = StringField()  # local date and time; the view reads it in the site's zone


class ResolveForm(NoteForm):
    how = StringField()  # "returned" or "confirmed_safe"
    confirmed_by = StringField()


class DecisionForm(NoteForm):
    decision = StringField()  # "approve" or "deny"
    step = IntegerField(validators=[Optional()])  # the approval step the board showed


class FoundHandledForm(NoteForm):
    report = SelectMultipleField(coerce=str, validate_choice=False)  # ids of finders' messages
    item = SelectMultipleField(coerce=str, validate_choice=False)  # ids of items whose label scans are handled


class IncidentActionForm(FlaskForm):
    text = TextAreaField()


class AssessmentForm(FlaskForm):
    financial_harm = BooleanField()
    wrongful_purpose = BooleanField()
    properly_encrypted = BooleanField()


class ScannerForm(FlaskForm):
    code = StringField()  # what a USB scanner typed: a label URL or an asset tag
    photo = FileField()
    js = HiddenField()  # "1" from the page's script, which wants JSON back
