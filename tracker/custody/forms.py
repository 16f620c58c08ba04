"""The take-out form on the phone (Flask-WTF, so it carries a CSRF token); `operations` does the real checks."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import DateTimeLocalField, SelectField, StringField
from wtforms.validators import Length, Optional

from ..i18n import lazy_gettext as _l


class CheckoutForm(FlaskForm):
    purpose = StringField(_l("Purpose"), validators=[Optional(), Length(max=200)])
    destination = StringField(_l("Destination"), validators=[Optional(), Length(max=200)])
    due = DateTimeLocalField(_l("Due back"), validators=[Optional()], format="%Y-%m-%dT%H:%M")
    holder = SelectField(_l("For"), choices=[], validators=[Optional()])
