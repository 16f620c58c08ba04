"""Sign-in, password and account forms (Flask-WTF, so each carries a CSRF token); `users` does the real checks."""

from __future__ import annotations

from flask_wtf import FlaskForm
from wtforms import BooleanField, IntegerField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..i18n import LANGUAGE_LABELS, ROLE_LABELS, label
from ..i18n import lazy_gettext as _l
from ..models import Role


def _languages() -> list[tuple[str, str]]:
    return [("", _l("Browser setting")), *LANGUAGE_LABELS.items()]


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


class ActiveForm(FlaskForm):
    active = BooleanField(false_values=("0", "false", ""))  # 1: may sign in; 0: disabled, signed out everywhere


class UserForm(AccountForm):
    email = StringField(_l("E-mail"), validators=[DataRequired(), Length(max=254)])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    role = SelectField(_l("Role"), choices=[])
    department = SelectField(_l("Department"), choices=[], validate_choice=False)  # `users` refuses unknown ids
    deputy = StringField(_l("Deputy"), validators=[Optional(), Length(max=300)],  # typed: accounts.people
                         description=_l("Decides for this user while they are away: their name or e-mail address."))
    desk_lead = BooleanField(_l("Desk lead"), description=_l(
        "Told when an overdue flag is still not acknowledged after the manager was told. Security desk staff and "
        "administrators only."))

    site = SelectField(_l("Site"), choices=[], validate_choice=False,  # shown only when the company has sites
                       description=_l("The office the person works at."))

    def __init__(self, *a, departments: list[tuple[int, str]] = (), sites: list[tuple[int, str]] = (), **kw):
        super().__init__(*a, **kw)
        self.has_sites = bool(sites)
        self.site.choices = [("", _l("Main office"))] + [(str(i), name) for i, name in sites]
        self.role.choices = [(r.value, label(ROLE_LABELS, r)) for r in Role]
        self.department.choices = [("", _l("No department"))] + [(str(i), name) for i, name in departments]


class ApiTokenForm(FlaskForm):
    name = StringField(_l("What it is for"), validators=[DataRequired(), Length(max=100)])
    scope_read = BooleanField(_l("Read: items, what is out, your check-outs"), default=True)
    scope_act = BooleanField(_l("Act: check out, return and hand over"))
    scope_admin = BooleanField(_l("Admin: the register and the users"))
    days = IntegerField(_l("Days until it expires"), default=90, validators=[Optional(), NumberRange(min=1, max=365)])

    def scopes(self) -> list[str]:
        return [s for s in ("read", "act", "admin") if self[f"scope_{s}"].data]
