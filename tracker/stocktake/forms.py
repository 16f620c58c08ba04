"""The stock-take forms (Flask-WTF: declared fields and a CSRF token); the rules check the values."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import HiddenField, StringField


class OpenForm(FlaskForm):
    scope = StringField()  # all | site | department | place
    site = StringField()  # a site's id, or "" for the main office
    department = StringField()
    place = StringField()


class CountForm(FlaskForm):
    code = StringField()  # what a USB scanner typed (a label URL) or a typed asset tag
    photo = FileField()
    item = StringField()  # the asset tag the phone's "count it" button sends
    place = StringField()  # where the counter stands, if they said
    js = HiddenField()  # "1" from the page's script, which wants JSON back
    next = HiddenField()

