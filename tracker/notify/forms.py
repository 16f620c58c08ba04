"""The event webhook form (Flask-WTF, with its CSRF token); `hooks` checks the same rules again when saving."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import SelectMultipleField, StringField, ValidationError
from wtforms.validators import DataRequired, Length

from ..i18n import EVENT_LABELS, label
from ..i18n import gettext as _
from ..i18n import lazy_gettext as _l
from . import hooks


def _allowed_url(form, field) -> None:
    if field.data and (problem := hooks.url_problem(field.data)):
        raise ValidationError(_(problem))


def _some_events(form, field) -> None:
    if not field.data:
        raise ValidationError(_(hooks.NO_EVENTS))


class EventWebhookForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)],
                       description=_l("Which integration receives it, e.g. the chat bot or the SIEM."))
    url = StringField(_l("Address (URL)"), validators=[DataRequired(), Length(max=500), _allowed_url],
                      description=_l("https:// only: the events name people and items."))
    events = SelectMultipleField(_l("Events"), choices=[], coerce=str, validators=[_some_events])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.events.choices = [(e, label(EVENT_LABELS, e)) for e in hooks.EVENT_TYPES]
