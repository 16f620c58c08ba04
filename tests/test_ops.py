"""/healthz and /metrics: what a load balancer and Prometheus read, who may read the metrics, and what it costs."""

from __future__ import annotations

import pytest
from sqlalchemy import event

from tests.helpers import PASSWORD, make_app, tokyo
from tracker import jobs
from tracker.accounts import users
from tracker.custody import operations as custody
from tracker.models import Notification

LOCAL = {"REMOTE_ADDR": "127.0.0.1"}


def _out(session, make_user, make_item, n_due_past: int, n_due_later: int, holder=None):
    holder = holder or make_user(email="hanako.yamada@example.com", name="山田花子")
    for i in range(n_due_past + n_due_later):
        due = tokyo(1, 18) if i < n_due_past else tokyo(2, 18)
        custody.check_out(session, tokyo(1, 9), item=make_item(name=f"顧客名簿 {i}"), holder=holder, actor=holder,
                          due_at=due)
    session.commit()
    return holder


def _notice(**values) -> Notification:
    return Notification(channel="email", recipient="desk@example.com", subject="s", body="b", created_at=tokyo(1, 9),
                        next_attempt_at=tokyo(1, 20), **values)


def test_healthz_is_200_with_the_sweep_and_the_outbox_and_nothing_personal(app, client, session, make_user, make_item,
                                                                           frozen_clock):
    _out(session, make_user, make_item, 1, 1)
    jobs.run_sweep(app, tokyo(1, 19))
    session.add(_notice(attempts=1))  # a mail that could not be sent yet
    session.commit()
    frozen_clock["now"] = tokyo(1, 19, 10)
    resp = client.get("/healthz")
    assert resp.status_code == 200
    body = resp.get_json()
    assert body["status"] == "ok" and body["database"] == "ok"
    assert body["sweep"]["late"] is False and body["sweep"]["last_run_at"].startswith("2026-06-01T10:00")
    assert body["outbox"] == {"backlog": 1, "failed": 0}
    text = resp.get_data(as_text=True)
    for personal in ("hanako", "山田", "顧客", "\\u5c71"):
        assert personal not in text


def test_healthz_is_503_when_the_sweep_is_late(client, frozen_clock, make_user):
    make_user()  # the site is in use since 10:00 (NOW)
    frozen_clock["now"] = tokyo(1, 19, 4)
    assert client.get("/healthz").status_code == 200  # due at 19:00, not yet late
    frozen_clock["now"] = tokyo(1, 19, 6)
    resp = client.get("/healthz")
    assert resp.status_code == 503
    assert resp.get_json()["status"] == "late" and resp.get_json()["sweep"]["late"] is True


def test_a_new_install_that_has_never_swept_is_not_late(client, session, frozen_clock):
    """Installed at 21:00, after the day end: the 19:00 sweep it never had was before its time; the next is due."""
    users.create(session, tokyo(1, 21), email="first@example.com", name="First", role="admin", password=PASSWORD,
                 actor=None)
    session.commit()
    frozen_clock["now"] = tokyo(1, 21, 30)
    resp = client.get("/healthz")
    assert resp.status_code == 200 and resp.get_json()["sweep"]["late"] is False
    frozen_clock["now"] = tokyo(2, 19, 6)  # the next day end came and went without a sweep
    assert client.get("/healthz").status_code == 503


def test_healthz_is_503_when_the_database_cannot_be_reached(tmp_path):
    down = make_app(f"sqlite:///{tmp_path}/no/such/folder/tracker.db", tmp_path)
    try:
        resp = down.test_client().get("/healthz")
        assert resp.status_code == 503
        assert resp.get_json() == {"status": "failing", "database": "unreachable"}
        assert "no/such" not in resp.get_data(as_text=True)  # no paths, no settings
    finally:
        down.extensions["tracker.engine"].dispose()


def test_metrics_only_from_this_machine_without_a_token(client):
    assert client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"}).status_code == 403
    # Through a proxy on this machine everyone would look local: refused.
    assert client.get("/metrics", environ_base=LOCAL, headers={"X-Forwarded-For": "192.0.2.7"}).status_code == 403
    resp = client.get("/metrics", environ_base=LOCAL)
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain; version=")


def test_metrics_with_a_token_need_it_from_anywhere(app, client):
    app.config["METRICS_TOKEN"] = "s3cret-token"
    assert client.get("/metrics", environ_base=LOCAL).status_code == 403
    assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 403
    resp = client.get("/metrics", environ_base={"REMOTE_ADDR": "192.0.2.7"},
                      headers={"Authorization": "Bearer s3cret-token"})
    assert resp.status_code == 200


def _value(page: str, name: str) -> float:
    for line in page.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} not in the metrics")


@pytest.mark.postgres  # the filtered counts on both databases
def test_metrics_count_check_outs_the_sweep_the_outbox_and_request_latency(app, client, session, make_user, make_item,
                                                                           frozen_clock):
    _out(session, make_user, make_item, 2, 1)
    jobs.run_sweep(app, tokyo(1, 19))
    session.add_all([_notice(attempts=6, failed_at=tokyo(1, 10)), _notice(attempts=1), _notice(attempts=0)])
    session.commit()
    frozen_clock["now"] = tokyo(1, 19, 1)
    client.get("/login")
    page = client.get("/metrics", environ_base=LOCAL).get_data(as_text=True)
    assert _value(page, "tracker_database_up") == 1
    assert _value(page, "tracker_checkouts_open") == 3
    assert _value(page, "tracker_checkouts_overdue") == 2
    assert _value(page, "tracker_sweep_lag_seconds") == 0  # ran at 19:00 sharp
    assert _value(page, "tracker_sweep_late") == 0
    assert _value(page, "tracker_sweep_duration_seconds") >= 0
    assert _value(page, "tracker_notifications_backlog") == 2
    assert _value(page, "tracker_notifications_retrying") == 1
    assert _value(page, "tracker_notifications_failed") == 1
    assert 'tracker_request_duration_seconds_count{endpoint="auth.login",method="GET",status="200"} 1.0' in page


def test_a_scrape_costs_the_same_queries_for_one_check_out_or_many(app, client, session, make_user, make_item):
    statements = []
    event.listen(app.extensions["tracker.engine"], "before_cursor_execute",
                 lambda *args: statements.append(args[2]))
    holder = _out(session, make_user, make_item, 1, 0)
    statements.clear()
    client.get("/metrics", environ_base=LOCAL)
    few = len(statements)
    _out(session, make_user, make_item, 10, 10, holder)
    statements.clear()
    client.get("/metrics", environ_base=LOCAL)
    assert len(statements) == few
