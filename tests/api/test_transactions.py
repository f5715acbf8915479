"""The transactions resource: listing, filters, paging, create, delete."""

import logging
from datetime import date
from decimal import Decimal

import pytest

from finance_project.api import GENERIC_ERROR, handle_exception
from labeling.importing import fingerprint
from labeling.labels import set_label
from labeling.models import LabelSource, Transaction
from mlcore.features.build import build_transactions
from mlcore.models import FeatureVector
from tests.api import client_for

URL = "/api/transactions/"


@pytest.fixture
def analyst(db):
    return client_for("analyst")


@pytest.fixture
def superuser(db):
    return client_for("superuser")


@pytest.fixture
def sample(make_txn):
    """Five transactions: two labeled (human, import), all with features."""
    txns = [
        make_txn(posted_on=date(2025, 3, 1), description="WHOLE FOODS #123"),
        make_txn(posted_on=date(2025, 3, 2), amount=Decimal("-60.00")),
        make_txn(posted_on=date(2025, 3, 3), account="Visa 9876"),
        make_txn(posted_on=date(2025, 3, 3), amount=Decimal("2500.00")),
        make_txn(posted_on=date(2025, 4, 1), description="NETFLIX.COM"),
    ]
    set_label(txns[0].pk, "Groceries", LabelSource.HUMAN)
    set_label(txns[1].pk, "Restaurants", LabelSource.IMPORT)
    build_transactions([t.pk for t in txns])
    return txns


def ids(response):
    return [row["id"] for row in response.json()["results"]]


def test_list_newest_first_with_label_and_merchant(
    analyst, sample, django_assert_max_num_queries
):
    client, _ = analyst
    with django_assert_max_num_queries(4):
        response = client.get(URL)
    assert response.status_code == 200
    assert ids(response) == [t.pk for t in reversed(sample)]
    first = response.json()["results"][-1]
    assert first["label"]["category"] == "Groceries"
    assert first["label"]["source"] == "human"
    assert first["merchant"]
    assert response.json()["next"] is None


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("posted_from=2025-03-02&posted_to=2025-03-03", [3, 2, 1]),
        ("account=Visa 9876", [2]),
        ("labeled=true", [1, 0]),
        ("labeled=false", [4, 3, 2]),
        ("label_source=import", [1]),
        ("category=Groceries", [0]),
        ("amount_min=0", [3]),
        ("amount_max=-10", [1]),
        ("search=netflix", [4]),
        ("ordering=posted_on", [0, 1, 2, 3, 4]),
    ],
)
def test_filters(analyst, sample, query, expected):
    client, _ = analyst
    response = client.get(f"{URL}?{query}")
    assert response.status_code == 200, response.json()
    assert ids(response) == [sample[i].pk for i in expected]


def test_merchant_filter(analyst, sample):
    client, _ = analyst
    merchant = FeatureVector.objects.get(txn=sample[4]).merchant
    response = client.get(URL, {"merchant": merchant})
    assert sample[4].pk in ids(response)
    assert sample[0].pk not in ids(response)


def test_cursor_pages_cover_everything_once(analyst, sample):
    client, _ = analyst
    seen, url = [], f"{URL}?page_size=2"
    while url:
        body = client.get(url).json()
        seen += [row["id"] for row in body["results"]]
        url = body["next"]
    assert seen == [t.pk for t in reversed(sample)]


@pytest.mark.parametrize(
    "query",
    [
        "cursor=garbage",
        "cursor=WyJ4IiwgMV0=",  # ["x", 1]: not a date
        "page_size=0",
        "page_size=abc",
        "ordering=amount",
        "posted_from=yesterday",
        "amount_min=lots",
        "label_source=robot",
        "account=%00",
    ],
)
def test_bad_query_is_400_not_500(analyst, sample, query, caplog):
    client, _ = analyst
    with caplog.at_level(logging.ERROR, logger="finance_project.api"):
        response = client.get(f"{URL}?{query}")
    assert response.status_code == 400
    assert not caplog.records


def test_retrieve_has_features_and_label(analyst, sample):
    client, _ = analyst
    body = client.get(f"{URL}{sample[0].pk}/").json()
    assert body["features"]["txn"] == sample[0].pk
    assert body["label"]["category"] == "Groceries"


@pytest.mark.parametrize("pk", ["999999999", "abc", str(10**30), "-1"])
def test_unknown_id_is_404(analyst, db, pk):
    client, _ = analyst
    assert client.get(f"{URL}{pk}/").status_code == 404


ITEM = {
    "account": "Checking 1234",
    "posted_on": "2025-05-01",
    "description": "SQ *BLUE BOTTLE COFFEE",
    "amount": "-4.50",
}


def test_create_one(analyst, django_capture_on_commit_callbacks):
    client, _ = analyst
    with django_capture_on_commit_callbacks() as callbacks:
        response = client.post(URL, {**ITEM, "external_id": "b-1"}, format="json")
    assert response.status_code == 201
    created = response.json()["created"]
    assert len(created) == 1
    assert created[0]["external_id"] == "b-1"
    assert response.json()["duplicates"] == []
    assert len(callbacks) == 1  # the feature build


def test_create_many_is_all_or_nothing(analyst):
    client, _ = analyst
    body = [
        {**ITEM, "external_id": "a"},
        {**ITEM, "amount": "lots"},
        {**ITEM, "external_id": "c"},
        {"account": "x"},
    ]
    response = client.post(URL, body, format="json")
    assert response.status_code == 400
    errors = response.json()["errors"]
    assert set(errors) == {"1", "3"}
    assert "amount" in errors["1"]
    assert {"posted_on", "description", "amount"} <= set(errors["3"])
    assert not Transaction.objects.exists()


def test_create_single_invalid_gives_field_errors(analyst):
    client, _ = analyst
    response = client.post(URL, {**ITEM, "currency": "dollars"}, format="json")
    assert response.status_code == 400
    assert "currency" in response.json()


@pytest.mark.parametrize("body", [[], "text", 5, [None], [[1]]])
def test_create_odd_bodies_are_400(analyst, body):
    client, _ = analyst
    assert client.post(URL, body, format="json").status_code == 400


def test_create_deduplicates_like_the_importer(analyst):
    client, _ = analyst
    body = [{**ITEM, "external_id": "x-1"}, ITEM, ITEM]
    first = client.post(URL, body, format="json").json()
    # Two identical items without an id stay two (occurrences 1 and 2).
    assert len(first["created"]) == 3
    fp = fingerprint(
        "Checking 1234", date(2025, 5, 1), Decimal("-4.50"), ITEM["description"], 1
    )
    assert first["created"][1]["external_id"] == fp

    again = client.post(URL, [*body, {**ITEM, "external_id": "x-2"}], format="json")
    assert again.status_code == 201
    result = again.json()
    assert [row["external_id"] for row in result["created"]] == ["x-2"]
    assert [d["index"] for d in result["duplicates"]] == [0, 1, 2]
    assert Transaction.objects.count() == 4

    only_dupes = client.post(URL, body[0], format="json")
    assert only_dupes.status_code == 200
    assert only_dupes.json()["duplicates"][0]["id"] == first["created"][0]["id"]


def test_duplicate_within_one_request(analyst):
    client, _ = analyst
    body = [{**ITEM, "external_id": "same"}, {**ITEM, "external_id": "same"}]
    result = client.post(URL, body, format="json").json()
    assert len(result["created"]) == 1
    assert result["duplicates"][0]["index"] == 1


def test_soft_delete(superuser, make_txn, django_capture_on_commit_callbacks):
    client, _ = superuser
    txn = make_txn(external_id="gone-1")
    with django_capture_on_commit_callbacks() as callbacks:
        assert client.delete(f"{URL}{txn.pk}/").status_code == 204
    assert len(callbacks) == 1  # features are removed by the build task
    assert Transaction.all_objects.get(pk=txn.pk).deleted_at is not None
    assert client.get(f"{URL}{txn.pk}/").status_code == 404
    assert txn.pk not in ids(client.get(URL))
    assert client.delete(f"{URL}{txn.pk}/").status_code == 404

    # Re-sending it does not bring it back.
    again = client.post(
        URL,
        {
            "account": txn.account,
            "external_id": "gone-1",
            "posted_on": "2025-03-14",
            "description": "x",
            "amount": "1.00",
        },
        format="json",
    ).json()
    assert again["created"] == []
    assert again["duplicates"][0]["deleted"] is True


def test_unexpected_errors_are_generic_json(caplog):
    with caplog.at_level(logging.ERROR, logger="finance_project.api"):
        response = handle_exception(RuntimeError("secret internals"), {})
    assert response.status_code == 500
    assert response.data == {"detail": GENERIC_ERROR}
    assert "secret" not in str(response.data)
    assert caplog.records
