"""Admin pages for user accounts."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy.orm import selectinload

from .. import queries
from ..http import actor, admin_only, attempt, client_address, db, get_or_404, now
from ..i18n import describe, gettext
from ..models import User
from . import users
from .forms import ActiveForm, UserForm
from .people import named_in, suggesting_people, typed

bp = Blueprint("admin_users", __name__, url_prefix="/admin/users")


@bp.get("/")
@admin_only
def index():
    q = (request.args.get("q") or "").strip()[:100]
    page = queries.paginate(db(), queries.users_stmt(q).options(selectinload(User.site)),
                            request.args.get("page", 1, type=int))
    return render_template("admin_users/index.html", page=page, q=q, has_sites=bool(queries.site_choices(db())))


# The form's field for each argument of the rules that a refusal can be about (marked beside the field too).
_FIELD_OF = {"department": "department", "deputy": "deputy", "desk_lead": "desk_lead", "site": "site"}


def _form(user: User | None) -> UserForm:
    """The user form with its lists (departments, sites); the deputy is typed, suggested as one types."""
    form = UserForm(obj=user if user is not None and request.method == "GET" else None,
                    departments=queries.department_choices(db()), sites=queries.site_choices(db()))
    suggesting_people(form.deputy)
    return form


def _deputy_id(form: UserForm) -> str:
    """The deputy the form names, as the id `users` checks ("" for none); one typed who is no one, or two people,
    is refused about the deputy."""
    named = named_in(db(), form.deputy)
    return str(named[0]) if named else ""


def _site(form: UserForm) -> str | None:
    """The chosen site's id ("" the main office), or None (keep it) when the form shows no site list."""
    return (form.site.data or "") if form.has_sites else None


def _mark(form: UserForm, error) -> None:
    if error is not None and error.about in _FIELD_OF:
        field = form[_FIELD_OF[error.about]]
        field.errors = [*field.errors, describe(error)]


@bp.route("/new", methods=["GET", "POST"])
@admin_only
def new():
    form = _form(None)
    if form.validate_on_submit():
        password = users.generate_password(form.email.data or "", form.name.data or "")
        with attempt() as done:
            user = users.create(db(), now(), email=form.email.data, name=form.name.data, role=form.role.data,
                                password=password, language=form.language.data or None, phone=form.phone.data,
                                department_id=form.department.data, deputy_id=_deputy_id(form),
                                desk_lead=form.desk_lead.data, site_id=_site(form), actor=actor(),
                                source=client_address())
        if done:
            return render_template("admin_users/password.html", user=user, password=password)
        _mark(form, done.error)
    return render_template("admin_users/form.html", form=form, user=None), (400 if request.method == "POST" else 200)


@bp.route("/<int:user_id>/edit", methods=["GET", "POST"])
@admin_only
def edit(user_id: int):
    user = get_or_404(User, user_id)
    form = _form(user)
    if request.method == "GET":
        form.role.data, form.language.data = user.role.value, user.language or ""
        form.department.data, form.deputy.data = str(user.department_id or ""), typed(user.deputy)
        form.site.data = str(user.site_id or "")
    else:
        form.email.data = user.email  # the e-mail is the sign-in name and is not edited here
    if form.validate_on_submit():
        with attempt() as done:
            users.update(db(), now(), user, name=form.name.data, role=form.role.data,
                         language=form.language.data or None, phone=form.phone.data, actor=actor(),
                         source=client_address(), department_id=form.department.data or "",
                         deputy_id=_deputy_id(form), desk_lead=form.desk_lead.data, site_id=_site(form))
        if done:
            flash(gettext("%(name)s is saved.", name=user.name), "success")
            return redirect(url_for("admin_users.index"))
        _mark(form, done.error)
    return render_template("admin_users/form.html", form=form, user=user), (400 if request.method == "POST" else 200)


@bp.post("/<int:user_id>/active")
@admin_only
def set_active(user_id: int):
    user = get_or_404(User, user_id)
    active = ActiveForm().active.data
    with attempt() as done:
        users.set_active(db(), now(), user, active, actor(), source=client_address())
    if done:
        flash(gettext("%(name)s can sign in again.", name=user.name) if active
              else gettext("%(name)s is disabled and signed out everywhere.", name=user.name), "success")
    return redirect(url_for("admin_users.index"), 303)


@bp.post("/<int:user_id>/reset-password")
@admin_only
def reset_password(user_id: int):
    user = get_or_404(User, user_id)
    password = users.generate_password(user.email, user.name)
    with attempt() as done:
        users.change_password(db(), now(), user, password, actor=actor(), must_change=True, source=client_address())
    if not done:
        return redirect(url_for("admin_users.index"), 303)
    return render_template("admin_users/password.html", user=user, password=password)
