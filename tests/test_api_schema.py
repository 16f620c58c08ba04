"""Schemathesis against the API's own OpenAPI description, on the Flask app, with a valid admin token: whatever it
sends (valid or not), no answer is a server error, and every answer matches the description (status, content type,
body, headers). A modest number of examples per operation keeps it well under a minute."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tracker import clock
from tracker.accounts import tokens
from tracker.custody import operations as custody
from tracker.models import DataClass, Kind

EXAMPLES = 8
# Not checked: that every request fitting the description is accepted. The description gives types and ranges; the
# rules then refuse what they must (a bag inside a bag, a due time in the past, an item already out) with a 409 or a
# 422 that the description documents, which that check would count as a failure.


@pytest.fixture
def api_token(app, session, make_user, make_item):
    """An admin's token with every scope, on a register with a bag, its contents and an item out."""
    app.config["API_RATE_PER_MINUTE"] = 100_000
    admin = make_user("admin")
    holder = make_user(name="Hanako Yamada")
    bag = make_item(kind=Kind.bag, data_class=DataClass.none)
    make_item(kind=Kind.usb, bag=bag, data_class=DataClass.none)
    laptop = make_item(kind=Kind.laptop, data_class=DataClass.none)
    moment = clock.now()
    custody.check_out(session, moment, item=laptop, holder=holder, actor=holder, due_at=moment.replace(year=moment.year + 1))
    issued = tokens.create(session, moment, user=admin, actor=None, name="schemathesis", scopes="read,act,admin",
                           days=30)
    session.commit()
    return issued.secret


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE], ids=["valid", "invalid"])
def test_the_api_keeps_to_its_description(app, api_token, mode):
    """Each operation in turn, with examples drawn from the description (the mode's: fitting it, or not)."""
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = {"Authorization": f"Bearer {api_token}", "Accept-Language": "en"}
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) >= 18

    for operation in operations:

        @given(case=operation.as_strategy(generation_mode=mode))
        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
                  suppress_health_check=list(HealthCheck))
        def check(case):
            case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])

        check()
