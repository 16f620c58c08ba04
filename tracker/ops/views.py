"""/healthz for load balancers and monitors (no sign-in, nothing personal) and /metrics for Prometheus (a bearer
token from TRACKER_METRICS_TOKEN, or from this machine only)."""

from __future__ import annotations

import hmac
import os
import time

from flask import Blueprint, Flask, Response, abort, current_app, g, jsonify, request
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Histogram, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy.exc import SQLAlchemyError

from .. import clock
from ..custody import policy
from ..db import explain_failure
from . import health

bp = Blueprint("ops", __name__)
LOOPBACK = {"127.0.0.1", "::1"}


def _iso(moment) -> str | None:
    return moment.isoformat() if moment else None


@bp.get("/healthz")
def healthz():
    now = clock.now()
    try:
        with current_app.extensions["tracker.read_sessionmaker"]() as s:
            health.ping(s)
            f = health.figures(s, now, policy.from_config(current_app.config))
    except (SQLAlchemyError, OSError) as err:
        current_app.logger.error("healthz: %s", explain_failure(err))
        return jsonify({"status": "failing", "database": "unreachable"}), 503
    body = {
        "status": "late" if f.any_sweep_late else "ok",
        "database": "ok",
        "sweep": {"last_run_at": _iso(f.sweep_last_run_at), "due": _iso(f.sweep_due), "late": f.sweep_late},
        "outbox": {"backlog": f.notifications_backlog, "failed": f.notifications_failed},
    }
    if f.sites:  # each site's sweep, late against its own last due moment ("sweep" is the main office's)
        body["sites"] = [{"name": site.name, "last_run_at": _iso(site.last_run_at), "due": _iso(site.due),
                          "late": site.late} for site in f.sites]
    return jsonify(body), 503 if f.any_sweep_late else 200


def _allowed() -> bool:
    token = current_app.config.get("METRICS_TOKEN")
    if token:
        given = request.headers.get("Authorization", "")
        return hmac.compare_digest(given.encode(), f"Bearer {token}".encode())
    # Without a token: only from this machine, and not through a proxy (which would make everyone look local).
    return request.remote_addr in LOOPBACK and "X-Forwarded-For" not in request.headers


@bp.get("/metrics")
def metrics():
    if not _allowed():
        abort(403)
    registry = current_app.extensions["tracker.metrics"]
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):  # gunicorn's workers, added up
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        registry.register(DatabaseCollector(current_app._get_current_object()))
    return Response(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


class DatabaseCollector:
    """Gauges read from the database at each scrape, so every worker and host reports the same values."""

    def __init__(self, app: Flask):
        self.app = app

    def describe(self):
        return []  # computed at scrape time; nothing to read at registration

    def collect(self):
        up = GaugeMetricFamily("tracker_database_up", "1 when the database answered this scrape.")
        try:
            with self.app.extensions["tracker.read_sessionmaker"]() as s:
                f = health.figures(s, clock.now(), policy.from_config(self.app.config))
        except (SQLAlchemyError, OSError):
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        for name, doc, value in (
            ("tracker_checkouts_open", "Open check-outs.", f.open_checkouts),
            ("tracker_checkouts_overdue", "Open check-outs past their due time.", f.overdue_checkouts),
            ("tracker_sweep_lag_seconds", "From the last due sweep time to its run (to now while it has not run).",
             f.sweep_lag_seconds),
            ("tracker_sweep_late", "1 when a due sweep has not run within five minutes.", int(f.sweep_late)),
            ("tracker_notifications_backlog", "Notifications waiting to be sent, retries included.",
             f.notifications_backlog),
            ("tracker_notifications_retrying", "Notifications waiting after a failed attempt.",
             f.notifications_retrying),
            ("tracker_notifications_failed", "Notifications given up on after every retry.", f.notifications_failed),
        ):
            yield GaugeMetricFamily(name, doc, value=value)
        if f.sweep_duration_seconds is not None:
            yield GaugeMetricFamily("tracker_sweep_duration_seconds", "How long the last sweep run took.",
                                    value=f.sweep_duration_seconds)
        if f.sites:
            late = GaugeMetricFamily("tracker_site_sweep_late", "1 when a site's due sweep has not run within five "
                                     "minutes.", labels=["site"])
            lag = GaugeMetricFamily("tracker_site_sweep_lag_seconds", "From a site's last due sweep time to its run "
                                    "(to now while it has not run).", labels=["site"])
            for site in f.sites:
                late.add_metric([site.name], int(site.late))
                lag.add_metric([site.name], site.lag_seconds)
            yield late
            yield lag
        if f.sweep_last_run_at is not None:
            yield GaugeMetricFamily("tracker_sweep_last_run_timestamp_seconds", "When a sweep last ran (Unix time).",
                                    value=f.sweep_last_run_at.timestamp())


def _started() -> None:
    g.ops_started = time.perf_counter()


def init_app(app: Flask) -> None:
    """A registry per app (tests make many), with the request latency histogram and the database gauges."""
    registry = CollectorRegistry()
    latency = Histogram("tracker_request_duration_seconds", "Time to answer a request, by endpoint.",
                        ["method", "endpoint", "status"], registry=registry)
    registry.register(DatabaseCollector(app))
    app.extensions["tracker.metrics"] = registry

    def observe(response):
        started = g.pop("ops_started", None)
        if started is not None:
            latency.labels(request.method, request.endpoint or "none", str(response.status_code)).observe(
                time.perf_counter() - started)
        return response

    app.before_request(_started)
    app.after_request(observe)
    app.register_blueprint(bp)
