"""Property-based fuzzing of the whole API against its own OpenAPI schema.

schemathesis generates requests for every operation from the schema (valid
ones, and invalid ones that must be refused with a documented 4xx), sends
them to a live server, and checks that no response is a 5xx, that every
status is documented for the operation, and that every body matches its
documented schema. It runs once as an analyst (token header) and once
anonymous.

Starting jobs is left out: each start queues real work on the broker, and
``tests/api/test_jobs.py`` and ``test_registry.py`` cover those operations.
"""

import logging

import pytest
import requests
import schemathesis
from django.core.management import call_command
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis.errors import Unsatisfiable
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from mlcore.features.build import build_window
from tests.api import make_user

logger = logging.getLogger(__name__)

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]
SKIPPED = {"/api/jobs/feature-builds/", "/api/jobs/dbt-runs/", "/api/jobs/trainings/"}
MODES = [schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE]


@pytest.fixture
def fuzz_target(committed_db, live_server, settings):
    # Thousands of requests in a minute: throttling must not decide outcomes.
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "100000/min", "jobs": "100000/min"},
    }
    call_command(
        "generate_transactions", count=300, months=3, seed=1, label_fraction=0.3
    )
    build_window()
    schema = requests.get(
        f"{live_server.url}/api/schema/",
        headers={"Accept": "application/json"},
        timeout=30,
    ).json()
    return live_server.url, schemathesis.openapi.from_dict(schema)


def run(schema, base_url, headers):
    """Fuzz every operation; return the number of requests sent."""
    sent = 0
    session = requests.Session()
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in SKIPPED:
            continue
        for mode in MODES:

            @hypothesis_settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case):
                nonlocal sent
                sent += 1
                case.call_and_validate(
                    base_url=base_url, session=session, headers=headers, checks=CHECKS
                )

            try:
                check()
            except Unsatisfiable:
                # Nothing to make invalid (no parameters, no body): the
                # positive run covers the operation.
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise
    return sent


@pytest.mark.slow
@pytest.mark.parametrize("role", ["analyst", "anonymous"])
def test_fuzz(fuzz_target, role):
    base_url, schema = fuzz_target
    headers = {}
    if role == "analyst":
        token = Token.objects.create(user=make_user("analyst"))
        headers["Authorization"] = f"Token {token.key}"
    sent = run(schema, base_url, headers)
    # Shown in the test output, so the size of the run stays visible.
    logger.warning("schemathesis sent %d requests as %s", sent, role)
    assert sent > 100
