"""Who may do what: every endpoint and method for every role.

Roles come from the ``0005_roles`` migration: labelers read and label,
analysts also add transactions, edit categories and start jobs, and only
superusers delete transactions.
"""

from datetime import date

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from labeling.labels import set_label
from labeling.models import Category, LabelSource
from mlcore import registry
from mlcore.features.build import build_transactions
from mlcore.models import Alias, Job, ModelVersion, TrainingRun
from tests.api import ROLES, client_for, make_user

NEW_TXN = {
    "account": "Savings 1",
    "posted_on": "2025-05-01",
    "description": "INTEREST",
    "amount": "1.25",
}

# (method, path, body, {role: status}); roles left out expect "ok", the
# status of the first column of the row.
A, L, N, S = "anonymous", "labeler", "analyst", "superuser"
MATRIX = [
    ("get", "/api/", None, 200, {A: 401}),
    ("get", "/api/transactions/", None, 200, {A: 401}),
    ("post", "/api/transactions/", NEW_TXN, 201, {A: 401, L: 403}),
    ("get", "/api/transactions/{txn}/", None, 200, {A: 401}),
    ("delete", "/api/transactions/{txn}/", None, 204, {A: 401, L: 403, N: 403}),
    ("get", "/api/transactions/{txn}/label/", None, 200, {A: 401}),
    ("put", "/api/transactions/{txn}/label/", {"category": "Books"}, 200, {A: 401}),
    ("delete", "/api/transactions/{txn}/label/", None, 204, {A: 401}),
    ("get", "/api/transactions/{txn}/history/", None, 200, {A: 401}),
    ("get", "/api/labels/", None, 200, {A: 401}),
    ("get", "/api/labels/{txn}/", None, 200, {A: 401}),
    ("get", "/api/categories/", None, 200, {A: 401}),
    ("get", "/api/categories/{category}/", None, 200, {A: 401}),
    ("post", "/api/categories/", {"name": "Pets"}, 201, {A: 401, L: 403}),
    ("put", "/api/categories/{category}/", {"name": "Pets"}, 200, {A: 401, L: 403}),
    (
        "patch",
        "/api/categories/{category}/",
        {"is_active": False},
        200,
        {A: 401, L: 403},
    ),
    ("get", "/api/features/", None, 200, {A: 401}),
    ("get", "/api/features/{txn}/", None, 200, {A: 401}),
    ("get", "/api/jobs/", None, 200, {A: 401}),
    ("get", "/api/jobs/{job}/", None, 200, {A: 401}),
    ("post", "/api/jobs/feature-builds/", {}, 202, {A: 401, L: 403}),
    ("post", "/api/jobs/dbt-runs/", {}, 202, {A: 401, L: 403}),
    ("get", "/api/training-runs/", None, 200, {A: 401, L: 403}),
    ("get", "/api/training-runs/{run}/", None, 200, {A: 401, L: 403}),
    ("post", "/api/jobs/trainings/", {}, 202, {A: 401, L: 403}),
    # An empty body is refused after the permission check.
    ("post", "/api/suggestions/", {}, 400, {A: 401}),
    ("get", "/api/suggestions/", None, 200, {A: 401, L: 403}),
    ("get", "/api/suggestions/arms/", None, 200, {A: 401, L: 403}),
    ("get", "/api/model-versions/", None, 200, {A: 401, L: 403}),
    ("get", "/api/model-versions/{version}/", None, 200, {A: 401, L: 403}),
    (
        "post",
        "/api/model-versions/{other}/promote/",
        {"alias": "challenger"},
        200,
        {A: 401, L: 403},
    ),
    ("get", "/api/model-aliases/", None, 200, {A: 401, L: 403}),
    ("get", "/api/model-aliases/champion/", None, 200, {A: 401, L: 403}),
    # Nothing to roll back to: refused after the permission check.
    ("post", "/api/model-aliases/champion/rollback/", None, 409, {A: 401, L: 403}),
    ("delete", "/api/model-aliases/champion/", None, 204, {A: 401, L: 403}),
    ("get", "/api/model-alias-changes/", None, 200, {A: 401, L: 403}),
    ("get", "/api/schema/", None, 200, {}),
    ("get", "/api/docs/", None, 200, {}),
]

CASES = [
    pytest.param(
        method, path, body, role, expected.get(role, ok), id=f"{role}-{method}-{path}"
    )
    for method, path, body, ok, expected in MATRIX
    for role in ROLES
]


@pytest.fixture
def objects(make_txn):
    txn = make_txn(posted_on=date(2025, 3, 14))
    set_label(txn.pk, "Groceries", LabelSource.IMPORT)
    build_transactions([txn.pk])
    version, other = (
        ModelVersion.objects.create(
            training_run=TrainingRun.objects.create(),
            artifact_path="none.joblib",
            artifact_sha256="0" * 64,
        )
        for _ in range(2)
    )
    registry.promote(version, Alias.CHAMPION)
    yield {
        "txn": txn.pk,
        "category": Category.objects.create(name="Kibble").pk,
        "job": Job.objects.create(kind=Job.Kind.FEATURE_BUILD, status="succeeded").pk,
        "run": TrainingRun.objects.create().pk,
        "version": version.pk,
        "other": other.pk,
    }
    # The champion goes with the test's transaction; so must the cached copy.
    registry.forget_serving_versions()


@pytest.mark.parametrize(("method", "path", "body", "role", "expected"), CASES)
def test_matrix(objects, method, path, body, role, expected):
    client, _ = client_for(role)
    response = getattr(client, method)(path.format(**objects), body, format="json")
    assert response.status_code == expected, response.content[:300]


def test_anonymous_401_says_how_to_authenticate(db):
    response = APIClient().get("/api/transactions/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Token"


def test_token_authentication(db):
    user = make_user("labeler")
    token = Token.objects.create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    assert client.get("/api/transactions/").status_code == 200
    client.credentials(HTTP_AUTHORIZATION="Token not-a-real-token")
    assert client.get("/api/transactions/").status_code == 401


def test_session_authentication_needs_csrf_for_writes(db, make_txn):
    user = make_user("labeler")
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(user)
    txn = make_txn()
    assert client.get(f"/api/transactions/{txn.pk}/").status_code == 200
    response = client.put(
        f"/api/transactions/{txn.pk}/label/", {"category": "Books"}, format="json"
    )
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]


def test_writes_are_throttled_per_user(db, make_txn, settings):
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"writes": "2/min", "jobs": "10/min"},
    }
    txn = make_txn()
    first, _ = client_for("labeler")
    url = f"/api/transactions/{txn.pk}/label/"
    codes = [
        first.put(url, {"category": "Books"}, format="json").status_code
        for _ in range(3)
    ]
    assert codes == [200, 200, 429]
    # Reads are not counted, and another user has a budget of their own.
    assert first.get(url).status_code == 200
    second, _ = client_for("labeler")
    assert second.put(url, {"category": "Books"}, format="json").status_code == 200
