"""The item register's forms (Flask-WTF, so each carries a CSRF token); `register.validate` does the real checks."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import (
    BooleanField,
    FieldList,
    HiddenField,
    IntegerField,
    SelectField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional

from ..i18n import CLASS_LABELS, DISPOSAL_METHOD_LABELS, KIND_LABELS, label
from ..i18n import lazy_gettext as _l
from ..models import DataClass, Kind
from .register import DISPOSAL_METHODS

MAX_MANAGERS = 20  # managers a department's form takes


class ItemForm(FlaskForm):
    asset_tag = StringField(_l("Asset tag"), validators=[Optional(), Length(max=32)],
                            description=_l("Leave empty to number it automatically, such as LT-0042."))
    kind = SelectField(_l("Kind"), choices=[])
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    serial = StringField(_l("Serial number"), validators=[Optional(), Length(max=100)])
    # Chosen from the department records; the register refuses an id that is none (validate_choice would
    # say so in WTForms' words, the rule says it in ours).
    department = SelectField(_l("Department"), choices=[], validate_choice=False)
    data_class = SelectField(_l("Personal data"), choices=[])
    encrypted = BooleanField(_l("Encrypted"))
    people_count = IntegerField(_l("Number of people"), validators=[Optional(), NumberRange(min=0, max=100_000_000)],
                                description=_l("Roughly how many people's records it holds."))
    bag = StringField(_l("Bag"), validators=[Optional(), Length(max=32)],
                      description=_l("Asset tag of the bag it is kept in, if any."))
    notes = TextAreaField(_l("Notes"), validators=[Optional(), Length(max=2000)])
    encryption_method = StringField(_l("Encryption method"), validators=[Optional(), Length(max=100)],
                                    description=_l("For example BitLocker (XTS-AES 256), a hardware-encrypted drive."))
    # Shown only when the company has sites; the place's site wins (a place sets the site), the rules refuse ids
    # that are none.
    site = SelectField(_l("Site"), choices=[], validate_choice=False,
                       description=_l("The office it belongs to. Choosing a storage place sets its site."))
    home_place = SelectField(_l("Storage place"), choices=[], validate_choice=False,
                             description=_l("Where it is kept when in. Admins add places under Sites."))

    def __init__(self, *a, departments: list[tuple[int, str]] = (), sites: list[tuple[int, str]] = (),
                 places: list[tuple[int, int | None, str, bool]] = (), kept_place_id: int | None = None, **kw):
        super().__init__(*a, **kw)
        self.department.choices = [("", _l("No department"))] + [(str(i), name) for i, name in departments]
        self.has_sites = bool(sites)
        self.site.choices = [("", _l("Main office"))] + [(str(i), name) for i, name in sites]
        self.home_place.choices = place_choices(sites, places, kept_place_id)
        self.kind.choices = [(k.value, label(KIND_LABELS, k)) for k in Kind]
        self.data_class.choices = [(c.value, label(CLASS_LABELS, c)) for c in DataClass]

    def values(self) -> dict:
        """The raw values, as `register.validate` and the CSV import take them."""
        values = {name: (getattr(self, name).data if getattr(self, name).data is not None else "")
                  for name in ("asset_tag", "kind", "name", "serial", "data_class", "encrypted",
                               "people_count", "notes", "bag", "encryption_method")}
        values["department_id"] = self.department.data or ""
        values["site_id"] = (self.site.data or "") if self.has_sites else ""
        values["home_place_id"] = self.home_place.data or ""
        return values


def place_choices(sites: list[tuple[int, str]], places: list[tuple[int, int | None, str, bool]],
                  kept_place_id: int | None = None, with_retired: bool = False) -> list[SelectChoice]:
    """The storage places, grouped by site (an <optgroup> each, the main office first) when there are sites; retired
    places only where the item is still kept (or for a filter, `with_retired`)."""
    names = {None: _l("Main office"), **dict(sites)}
    choices = [SelectChoice("", _l("No storage place"))]
    for place_id, site_id, name, retired in places:
        if retired and place_id != kept_place_id and not with_retired:
            continue
        shown = _l("%(name)s (retired)", name=name) if retired else name
        choices.append(SelectChoice(str(place_id), shown, optgroup=names.get(site_id) if sites else None))
    return choices


class ImportForm(FlaskForm):
    file = FileField(_l("CSV file"), validators=[FileRequired()])


class ImportConfirmForm(FlaskForm):
    """The preview's button: the same checked text, imported all or nothing."""

    text = HiddenField()
    confirm = HiddenField()


class DisposeForm(FlaskForm):
    """Disposal (廃棄): how, and the contractor's certificate when a contractor did it."""

    method = SelectField(_l("How it was disposed of"), choices=[], validate_choice=False)
    contractor = StringField(_l("Disposal contractor"), validators=[Optional(), Length(max=200)])
    certificate = StringField(_l("Certificate number"), validators=[Optional(), Length(max=100)])

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.method.choices = [("", _l("Choose"))] + [(m, label(DISPOSAL_METHOD_LABELS, m)) for m in DISPOSAL_METHODS]


class DepartmentForm(FlaskForm):
    """A department: its name, the department it belongs to, and its managers; `departments` checks them."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    parent = SelectField(_l("Part of"), choices=[], validate_choice=False,
                         description=_l("The department it belongs to, if any."))
    # Each a person's name or e-mail address, suggested as it is typed (accounts.people); the page offers one
    # empty field more than the department has managers, to add one.
    managers = FieldList(StringField(_l("Manager"), validators=[Optional(), Length(max=300)]), min_entries=1,
                         max_entries=MAX_MANAGERS)

    def __init__(self, *a, parents: list[tuple[int, str]] = (), **kw):
        super().__init__(*a, **kw)
        self.parent.choices = [("", _l("None (top level)"))] + [(str(i), name) for i, name in parents]


class SiteForm(FlaskForm):
    """A site: its name, clock and desk addresses, typed as text; `sites` checks them and says what is wrong."""

    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
    timezone = StringField(_l("Time zone"), validators=[DataRequired(), Length(max=64)],
                           description=_l("An IANA time zone, such as Asia/Tokyo or Asia/Singapore."),
                           render_kw={"list": "zones", "autocapitalize": "off", "spellcheck": "false"})
    day_end = StringField(_l("Day end"), validators=[DataRequired(), Length(max=5)],
                          description=_l("When the working day closes and the sweep flags what is still out (HH:MM)."))
    late_sweeps = StringField(_l("Later sweeps"), validators=[Optional(), Length(max=100)],
                              description=_l("Further sweeps after the day end, such as 21:00,23:30; empty for none."))
    desk_emails = TextAreaField(_l("Desk e-mail addresses"), validators=[Optional(), Length(max=2000)],
                                description=_l("The security desk of this site, separated by commas."))


class PlaceForm(FlaskForm):
    """A storage place's name (added at a site, or renamed)."""

    site = HiddenField()
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=100)])
