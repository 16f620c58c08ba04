"""The notifications page says what is not set up, and why a message failed in words a person understands."""

from __future__ import annotations

from tests.helpers import NOW, client_for
from tracker.models import Notification


def _page(app, admin):
    return client_for(app, admin).get("/admin/notifications/").get_data(as_text=True)


def test_an_empty_page_says_what_to_set_up(app, make_user):
    page = _page(app, make_user("admin"))
    assert "E-mail is not set up: set TRACKER_SMTP_HOST" in page
    assert "No chat webhook: set TRACKER_WEBHOOK_URL" in page
    assert "nothing can be sent until e-mail or a chat webhook is set up" in page


def test_a_set_up_site_says_where_mail_goes_and_what_is_missing(app, make_user):
    app.config.update(SMTP_HOST="mail.example.com", DESK_EMAILS="")
    page = _page(app, make_user("admin"))
    assert "E-mail goes out through mail.example.com." in page
    assert "No security desk address: set TRACKER_DESK_EMAILS" in page
    assert "E-mail is not set up" not in page


def test_a_failure_is_told_in_words_with_the_detail_folded(app, session, make_user):
    session.add_all([
        Notification(channel="email", recipient="a@example.com", subject="Overdue", body="b", created_at=NOW,
                     attempts=6, next_attempt_at=NOW, failed_at=NOW,
                     last_error="ConnectionRefusedError: [Errno 111] Connection refused"),
        Notification(channel="webhook", recipient="https://hooks.example.com/x", subject="Overdue", body="b",
                     created_at=NOW, attempts=1, next_attempt_at=NOW, last_error="RuntimeError: webhook answered 404"),
    ])
    session.commit()
    page = _page(app, make_user("admin"))
    assert "The server refused the connection: check the host and port." in page
    assert "The chat service refused the message." in page
    assert "<details><summary>Details</summary><small>ConnectionRefusedError: [Errno 111] Connection refused" in page
