"""Web forms (Flask-WTF, so every one carries a CSRF token); the rules do the real validation."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    DateTimeLocalField,
    IntegerField,
    PasswordField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from .i18n import lazy_gettext as _l
from .models import DataClass, Kind, Role


def _kinds():
    from .i18n import KIND_LABELS, label

    return [(k.value, label(KIND_LABELS, k)) for k in Kind]


def _classes():
    from .i18n import CLASS_LABELS, label

    return [(c.value, label(CLASS_LABELS, c)) for c in DataClass]


def _roles():
    from .i18n import ROLE_LABELS, label

    return [(r.value, label(ROLE_LABELS, r)) for r in Role]


def _languages():
    from .i18n import LANGUAGE_LABELS

    return [("", _l("Browser setting"))] + list(LANGUAGE_LABELS.items())


class SignInForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(max=200)])


class PasswordForm(FlaskForm):
    current = PasswordField(_l("Current password"), validators=[DataRequired(), Length(max=200)])
    new = PasswordField(_l("New password"), validators=[DataRequired(), Length(max=200)])
    confirm = PasswordField(_l("New password again"), validators=[DataRequired(), Length(max=200)])


class AccountForm(FlaskForm):
    language = SelectField(_l("Language"), choices=[])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.language.choices = _languages()


class ItemForm(FlaskForm):
    asset_tag = StringField(_l("Asset tag"), validators=[Optional(), Length(max=32)],
                            description=_l("Leave empty to number it automatically, such as LT-0042."))
    kind = SelectField(_l("Kind"), choices=[])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    serial = StringField(_l("Serial number"), validators=[Optional(), Length(max=100)])
    department = StringField(_l("Department"), validators=[Optional(), Length(max=100)])
    data_class = SelectField(_l("Personal data"), choices=[])
    encrypted = BooleanField(_l("Encrypted"))
    people_count = IntegerField(_l("Number of people"), validators=[Optional(), NumberRange(min=0, max=100_000_000)],
                                description=_l("Roughly how many people's records it holds."))
    bag = StringField(_l("Bag"), validators=[Optional(), Length(max=32)],
                      description=_l("Asset tag of the bag it is kept in, if any."))
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.kind.choices = _kinds()
        self.data_class.choices = _classes()


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class UserForm(FlaskForm):
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    role = SelectField(_l("Role"), choices=[])
    language = SelectField(_l("Language"), choices=[])
    phone = StringField(_l("Phone"), validators=[Optional(), Length(max=40)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.role.choices = _roles()
        self.language.choices = _languages()


class CheckoutForm(FlaskForm):
    purpose = StringField(_l("Purpose"), validators=[Optional(), Length(max=200)])
    destination = StringField(_l("Destination"), validators=[Optional(), Length(max=200)])
    due = DateTimeLocalField(_l("Due back"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    holder = SelectField(_l("For"), choices=[], validators=[Optional()])
