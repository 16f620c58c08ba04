"""The baseline for bench/requests.py: a bare Flask app under the same gunicorn settings and database.

GET /page renders a tiny template; POST /write commits one row through SQLAlchemy (the app's engine set-up:
on SQLite, WAL, BEGIN IMMEDIATE and synchronous=FULL like the tracker).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime

from flask import Flask, render_template_string
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, insert
from sqlalchemy.orm import Session

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from tracker.db import make_engine  # noqa: E402

engine = make_engine(os.environ["BARE_DATABASE_URL"])
rows = Table("bare_rows", MetaData(), Column("id", Integer, primary_key=True), Column("at", DateTime),
             Column("note", String(40)))
rows.metadata.create_all(engine)
app = Flask(__name__)
PAGE = "<!doctype html><title>{{ title }}</title><p>Hello, {{ name }}.</p>"


@app.get("/page")
def page():
    return render_template_string(PAGE, title="Bare", name="world")


@app.post("/write")
def write():
    with Session(engine) as s:
        s.execute(insert(rows).values(at=datetime.now(UTC).replace(tzinfo=None), note="x"))
        s.commit()
    return "", 204
