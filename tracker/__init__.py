"""Check-out tracking for media and bags that carry personal data."""

from __future__ import annotations

import os

from flask import Flask


def create_app(test_config: dict | None = None) -> Flask:
    """Application factory; `test_config` overrides the environment for tests."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    instance = (test_config or {}).get("INSTANCE_PATH") or os.environ.get(
        "TRACKER_INSTANCE_PATH", os.path.join(root, "instance")
    )
    app = Flask(__name__, instance_path=instance, template_folder=os.path.join(root, "templates"))
    from . import config

    app.config.update(config.load(app.instance_path))
    if test_config:
        app.config.update(test_config)

    from . import web

    web.init_app(app)
    return app
