"""Plain, translated error pages."""

from __future__ import annotations

from flask import Flask, render_template
from flask_wtf.csrf import CSRFError

from .i18n import gettext


def register(app: Flask) -> None:
    def page(code: int, title: str, text: str):
        return render_template("error.html", code=code, title=title, text=text), code

    @app.errorhandler(403)
    def forbidden(_e):
        return page(403, gettext("Not allowed"), gettext("Your account is not permitted to open this page."))

    @app.errorhandler(404)
    def not_found(_e):
        return page(404, gettext("Not found"), gettext("There is nothing at this address."))

    @app.errorhandler(405)
    def not_allowed(_e):
        return page(405, gettext("Not allowed"), gettext("This address does not accept that kind of request."))

    @app.errorhandler(413)
    def too_large(_e):
        return page(413, gettext("Too large"), gettext("The file or form is too large."))

    @app.errorhandler(CSRFError)
    def csrf_error(_e):
        return page(400, gettext("Form expired"),
                    gettext("The form was too old or came from elsewhere. Go back, reload the page and try again."))
