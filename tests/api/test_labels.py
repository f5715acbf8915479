"""Labels: set and clear through a transaction, history, the labels list."""

import pytest

from labeling.labels import set_label
from labeling.models import LabelHistory, LabelSource, TransactionLabel
from tests.api import client_for


@pytest.fixture
def labeler(db):
    return client_for("labeler")


def label_url(txn):
    return f"/api/transactions/{txn.pk}/label/"


def test_put_sets_a_human_label_with_the_user(labeler, make_txn):
    client, user = labeler
    txn = make_txn()
    response = client.put(label_url(txn), {"category": "groceries"}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["category"], body["source"], body["labeled_by"]) == (
        "Groceries",
        "human",
        user.pk,
    )
    assert client.get(label_url(txn)).json()["category"] == "Groceries"


def test_put_overwrites_rule_and_history_keeps_both(labeler, make_txn):
    client, user = labeler
    txn = make_txn()
    set_label(txn.pk, "Restaurants", LabelSource.RULE, rule_id=7)
    client.put(label_url(txn), {"category": "Coffee Shops"}, format="json")
    assert client.delete(label_url(txn)).status_code == 204
    assert not TransactionLabel.objects.filter(txn=txn).exists()

    history = client.get(f"/api/transactions/{txn.pk}/history/").json()
    assert [row["operation"] for row in history] == ["delete", "update", "insert"]
    assert history[0]["old_label"] == "Coffee Shops"
    assert history[0]["actor"] == user.pk
    assert history[1]["new_source"] == "human"


@pytest.mark.parametrize("body", [{"category": "Nope"}, {}, {"category": ""}])
def test_put_bad_category_is_400(labeler, make_txn, body):
    client, _ = labeler
    response = client.put(label_url(make_txn()), body, format="json")
    assert response.status_code == 400
    assert "category" in response.json()


def test_put_retired_category_is_400(labeler, make_txn):
    from labeling.models import Category

    Category.objects.filter(name="Books").update(is_active=False)
    client, _ = labeler
    response = client.put(label_url(make_txn()), {"category": "Books"}, format="json")
    assert response.status_code == 400


def test_refused_overwrite_is_409(labeler, make_txn, monkeypatch):
    """A precedence refusal (impossible for human labels today) is a 409.

    The refusal is produced the way the database produces it for a lower
    source: by asking the view to write an import label over a human one.
    """
    from labeling import api

    client, _ = labeler
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)
    monkeypatch.setattr(
        api,
        "set_label",
        lambda txn_id, category, source, actor: set_label(
            txn_id, category, LabelSource.IMPORT, actor=actor
        ),
    )
    response = client.put(label_url(txn), {"category": "Books"}, format="json")
    assert response.status_code == 409
    assert "cannot overwrite" in response.json()["detail"]


def test_clear_without_label_is_404(labeler, make_txn):
    client, _ = labeler
    txn = make_txn()
    assert client.delete(label_url(txn)).status_code == 404
    assert client.get(label_url(txn)).status_code == 404


def test_label_of_unknown_or_deleted_transaction_is_404(labeler, make_txn):
    from django.utils import timezone

    client, _ = labeler
    txn = make_txn(deleted_at=timezone.now())
    body = {"category": "Books"}
    assert client.put(label_url(txn), body, format="json").status_code == 404
    assert client.put("/api/transactions/0/label/", body).status_code == 404
    assert client.get("/api/transactions/0/history/").status_code == 404
    assert not LabelHistory.objects.filter(txn_id=txn.pk).exists()


@pytest.fixture
def labels(make_txn, labeler):
    _, user = labeler
    txns = [make_txn() for _ in range(4)]
    set_label(txns[0].pk, "Groceries", LabelSource.HUMAN, actor=user)
    set_label(txns[1].pk, "Books", LabelSource.RULE, rule_id=1)
    set_label(txns[2].pk, "Groceries", LabelSource.IMPORT)
    return txns


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", [2, 1, 0]),
        ("source=rule", [1]),
        ("category=Groceries", [2, 0]),
        ("labeled_by={user}", [0]),
        ("txn={txn0}", [0]),
    ],
)
def test_labels_list_filters(
    labeler, labels, query, expected, django_assert_max_num_queries
):
    client, user = labeler
    query = query.format(user=user.pk, txn0=labels[0].pk)
    with django_assert_max_num_queries(3):
        response = client.get(f"/api/labels/?{query}")
    assert response.status_code == 200
    assert [row["txn"] for row in response.json()["results"]] == [
        labels[i].pk for i in expected
    ]


def test_labels_retrieve_and_404(labeler, labels):
    client, _ = labeler
    assert client.get(f"/api/labels/{labels[0].pk}/").json()["source"] == "human"
    assert client.get(f"/api/labels/{labels[3].pk}/").status_code == 404
    assert client.get("/api/labels/?source=robot").status_code == 400
