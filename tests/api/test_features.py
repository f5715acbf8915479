"""Features: one transaction's, and a list by month window, account, merchant."""

from datetime import date

import pytest

from mlcore.features.build import build_transactions
from mlcore.models import FeatureVector, TrainingRun
from tests.api import client_for

URL = "/api/features/"


@pytest.fixture
def analyst(db):
    return client_for("analyst")


@pytest.fixture
def built(make_txn):
    txns = [
        make_txn(posted_on=date(2025, 1, 5)),
        make_txn(posted_on=date(2025, 2, 5), description="NETFLIX.COM"),
        make_txn(posted_on=date(2025, 3, 5), account="Visa 9876"),
    ]
    build_transactions([t.pk for t in txns])
    return txns


def txn_ids(response):
    return [row["txn"] for row in response.json()["results"]]


def test_retrieve(analyst, built):
    client, _ = analyst
    body = client.get(f"{URL}{built[0].pk}/").json()
    assert body["ts_month"] == "2025-01-01"
    assert body["account"] == "Checking 1234"
    assert client.get(f"{URL}0/").status_code == 404


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [2, 1, 0]),
        ("month_from=2025-02-01&month_to=2025-02-01", [1]),
        ("account=Visa 9876", [2]),
    ],
)
def test_list_filters(analyst, built, query, expected, django_assert_max_num_queries):
    client, _ = analyst
    with django_assert_max_num_queries(3):
        response = client.get(f"{URL}?{query}")
    assert txn_ids(response) == [built[i].pk for i in expected]


def test_merchant_filter_and_paging(analyst, built):
    client, _ = analyst
    merchant = FeatureVector.objects.get(txn=built[1]).merchant
    assert txn_ids(client.get(URL, {"merchant": merchant})) == [built[1].pk]
    page = client.get(URL, {"page_size": 2}).json()
    rest = client.get(page["next"]).json()
    assert [r["txn"] for r in page["results"] + rest["results"]] == [
        t.pk for t in reversed(built)
    ]
    assert client.get(URL, {"month_from": "soon"}).status_code == 400


def test_deleted_transactions_have_no_features_in_the_api(analyst, built):
    from django.utils import timezone

    from labeling.models import Transaction

    client, _ = analyst
    Transaction.objects.filter(pk=built[0].pk).update(deleted_at=timezone.now())
    assert client.get(f"{URL}{built[0].pk}/").status_code == 404


def test_training_runs_read_only(analyst):
    client, _ = analyst
    run = TrainingRun.objects.create(metrics={"macro_f1": 0.8})
    assert client.get("/api/training-runs/").json()["results"][0]["id"] == run.pk
    assert client.get(f"/api/training-runs/{run.pk}/").json()["metrics"] == {
        "macro_f1": 0.8
    }
    superuser, _ = client_for("superuser")
    assert superuser.post("/api/training-runs/", {}).status_code == 405
