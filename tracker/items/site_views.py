"""Admin pages for sites (offices with their own clock) and their storage places: admins add and change them, the
security desk may read them. The main office is described by the settings and is not edited here."""

from __future__ import annotations

from zoneinfo import available_timezones

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlalchemy import func, select

from ..http import actor, admin_only, attempt, client_address, db, get_or_404, now, privileged
from ..i18n import describe, gettext
from ..models import Item, Site, StoragePlace
from . import sites
from .forms import PlaceForm, SiteForm

bp = Blueprint("admin_sites", __name__, url_prefix="/admin/sites")

_FIELDS = ("name", "timezone", "day_end", "late_sweeps", "desk_emails")


@bp.get("/")
@privileged
def index():
    """Every site with its clock and places, the main office first (from the settings)."""
    s = db()
    places: dict[int | None, list[StoragePlace]] = {}
    for place in sites.places(s, include_retired=True):
        places.setdefault(place.site_id, []).append(place)
    counts = dict(s.execute(select(Item.home_place_id, func.count(Item.id))
                            .where(Item.home_place_id.is_not(None), Item.retired_at.is_(None))
                            .group_by(Item.home_place_id)).all())
    rows = [(None, sites.clock_of(None, current_app.config)),
            *[(site, sites.clock_of(site, current_app.config)) for site in sites.all_sites(s)]]
    return render_template("admin_sites/index.html", rows=rows, places=places, counts=counts,
                           place_form=PlaceForm())


def _form(site: Site | None) -> SiteForm:
    form = SiteForm()
    if request.method == "GET":
        if site is None:
            form.timezone.data, form.day_end.data = current_app.config["TIMEZONE"], "19:00"
        else:
            form.name.data, form.timezone.data, form.day_end.data = site.name, site.timezone, f"{site.day_end:%H:%M}"
            form.late_sweeps.data, form.desk_emails.data = site.late_sweeps or "", site.desk_emails or ""
    return form


def _values(form: SiteForm) -> dict:
    return {name: form[name].data or "" for name in _FIELDS}


def _page(form: SiteForm, site: Site | None, error=None):
    if error is not None and error.about in _FIELDS:
        form[error.about].errors = [*form[error.about].errors, describe(error)]
    return (render_template("admin_sites/form.html", form=form, site=site, zones=sorted(available_timezones())),
            400 if request.method == "POST" else 200)


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = _form(None)
    if not form.validate_on_submit():
        return _page(form, None)
    with attempt() as done:
        site = sites.create_site(db(), now(), **_values(form), actor=actor(), source=client_address())
    if not done:
        return _page(form, None, done.error)
    flash(gettext("The site %(name)s is added.", name=site.name), "success")
    return redirect(url_for("admin_sites.index"))


@bp.route("/<int:site_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(site_id: int):
    site = get_or_404(Site, site_id)
    form = _form(site)
    if not form.validate_on_submit():
        return _page(form, site)
    with attempt() as done:
        sites.update_site(db(), now(), site, **_values(form), actor=actor(), source=client_address())
    if not done:
        return _page(form, site, done.error)
    flash(gettext("The site %(name)s is saved.", name=site.name), "success")
    return redirect(url_for("admin_sites.index"))


def _back(site_id: int | None):
    return redirect(url_for("admin_sites.index", _anchor=f"site-{site_id or 'main'}"), 303)


@bp.post("/places/new")
@admin_only
def add_place():
    """Add a storage place at the site the form names (none: the main office)."""
    form = PlaceForm()
    with attempt() as done:
        place = sites.create_place(db(), now(), site_id=form.site.data, name=form.name.data or "", actor=actor(),
                                   source=client_address())
    if done:
        flash(gettext("The storage place %(name)s is added.", name=place.name), "success")
        return _back(place.site_id)
    return _back(form.site.data if (form.site.data or "").isdigit() else None)


@bp.post("/places/<int:place_id>/rename")
@admin_only
def rename_place(place_id: int):
    place = get_or_404(StoragePlace, place_id)
    form = PlaceForm()
    with attempt() as done:
        sites.rename_place(db(), now(), place, name=form.name.data or "", actor=actor(), source=client_address())
    if done:
        flash(gettext("The storage place is now called %(name)s.", name=place.name), "success")
    return _back(place.site_id)


@bp.post("/places/<int:place_id>/retire")
@admin_only
def retire_place(place_id: int):
    place = get_or_404(StoragePlace, place_id)
    with attempt() as done:
        sites.retire_place(db(), now(), place, actor=actor(), source=client_address())
    if done:
        flash(gettext("The storage place %(name)s is retired; it takes no new items.", name=place.name), "success")
    return _back(place.site_id)
