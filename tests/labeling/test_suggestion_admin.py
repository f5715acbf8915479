"""Model suggestions where people label: the transaction list and the queue.

One real model, trained on generated data, is shared by the module.
"""

import pytest
from django.contrib.auth.models import Group, User
from django.urls import reverse
from django.utils.html import escape

from labeling.models import Transaction, TransactionLabel
from mlcore import registry, serving
from mlcore.models import ModelAlias, Suggestion, TrainingRun
from tests.trained_model import trained_model

pytestmark = pytest.mark.django_db

CHANGELIST = "/admin/labeling/transaction/"


@pytest.fixture(scope="module")
def model(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), trained_model(tmp_path_factory.mktemp("m")):
        yield TrainingRun.objects.get().model_version


@pytest.fixture(autouse=True)
def fresh_aliases():
    registry.forget_serving_versions()
    yield
    registry.forget_serving_versions()


@pytest.fixture
def labeler(client):
    user = User.objects.create_user("labeler-1", is_staff=True)
    user.groups.add(Group.objects.get(name="labeler"))
    client.force_login(user)
    client.user = user
    return client


@pytest.fixture
def unlabeled(model):
    return list(
        Transaction.objects.filter(label__isnull=True)
        .order_by("-posted_on", "-id")
        .values_list("pk", flat=True)
    )


def post_action(client, action, ids):
    return client.post(
        CHANGELIST,
        {"action": action, "_selected_action": ids, "index": "0"},
        follow=True,
    )


def messages_of(response):
    return [str(m) for m in response.context["messages"]]


def test_suggest_categories_stores_one_per_selected_transaction(labeler, unlabeled):
    ids = unlabeled[:30]

    response = post_action(labeler, "suggest_categories", ids)

    assert messages_of(response) == ["Suggested categories for 30 transactions."]
    assert sorted(Suggestion.objects.values_list("txn_id", flat=True)) == sorted(ids)


def test_without_a_model_suggesting_says_so(labeler, unlabeled):
    ModelAlias.objects.all().delete()
    registry.forget_serving_versions()

    response = post_action(labeler, "suggest_categories", unlabeled[:2])

    assert "No champion" in messages_of(response)[0]
    assert not Suggestion.objects.exists()


def test_the_list_shows_the_latest_suggestion_without_a_query_per_row(
    labeler, unlabeled, django_assert_max_num_queries
):
    serving.suggest_transactions(unlabeled[:50])
    latest = Suggestion.objects.get(txn_id=unlabeled[0])
    # A newer suggestion replaces the older one in the column.
    Suggestion.objects.create(
        txn_id=unlabeled[0],
        model_version=latest.model_version,
        arm="champion",
        label="Travel",
        confidence=0.42,
        top_k=[{"category": "Travel", "probability": 0.42}],
    )

    with django_assert_max_num_queries(15):
        page = labeler.get(CHANGELIST, {"labeled": "no"}).content.decode()

    assert "Travel 42%" in page
    shown = Suggestion.objects.get(txn_id=unlabeled[1])
    assert escape(f"{shown.label} {shown.confidence:.0%}") in page


def test_the_confidence_filter_uses_the_latest_suggestion(labeler, unlabeled):
    ids = unlabeled[:40]
    answers = serving.suggest_transactions(ids)
    bands = {
        "high": {a.txn_id for a in answers if a.confidence >= 0.95},
        "medium": {a.txn_id for a in answers if 0.80 <= a.confidence < 0.95},
        "low": {a.txn_id for a in answers if a.confidence < 0.80},
    }

    for band, expected in bands.items():
        response = labeler.get(CHANGELIST, {"confidence": band, "labeled": "no"})
        shown = {t.pk for t in response.context["cl"].result_list}
        assert shown == expected, band
    nothing = labeler.get(CHANGELIST, {"confidence": "none", "labeled": "no"})
    assert not {t.pk for t in nothing.context["cl"].result_list} & set(ids)
    assert sum(len(ids) for ids in bands.values()) == 40


def test_accept_suggestion_labels_as_suggested_and_records_the_outcome(
    labeler, unlabeled
):
    serving.suggest_transactions(unlabeled[:5])
    suggested = dict(Suggestion.objects.values_list("txn_id", "label"))

    response = post_action(labeler, "accept_suggestion", unlabeled[:7])

    assert messages_of(response) == [
        "Accepted the suggestion for 5 transactions; 2 had no suggestion."
    ]
    labels = TransactionLabel.objects.filter(txn_id__in=unlabeled[:7])
    assert {(label.txn_id, label.label_id) for label in labels} == set(
        suggested.items()
    )
    assert {(label.source, label.labeled_by) for label in labels} == {
        ("human", labeler.user)
    }
    assert set(Suggestion.objects.values_list("outcome", flat=True)) == {"accepted"}


def test_the_queue_shows_the_suggestion_first(labeler, model):
    payload = labeler.get(reverse("labeling_queue_next")).json()

    txn_id = payload["transaction"]["id"]
    stored = Suggestion.objects.get(txn_id=txn_id)
    assert payload["suggestion"] == {
        "category": stored.label,
        "confidence": stored.confidence,
        "top_k": stored.top_k,
    }
    ranked = [s["category"] for s in stored.top_k]
    assert payload["choices"][: len(ranked)] == ranked
    assert len(payload["choices"]) == 9
    # Asking again shows the stored one rather than storing another.
    labeler.get(reverse("labeling_queue_next"))
    assert Suggestion.objects.filter(txn_id=txn_id).count() == 1


def test_accepting_in_the_queue_records_the_outcome(labeler, model):
    payload = labeler.get(reverse("labeling_queue_next")).json()
    txn_id = payload["transaction"]["id"]

    labeler.post(
        reverse("labeling_queue_label"),
        {"txn_id": txn_id, "category": payload["suggestion"]["category"]},
        content_type="application/json",
    )

    assert Suggestion.objects.get(txn_id=txn_id).outcome == "accepted"


def test_the_queue_works_without_a_model(labeler, model):
    ModelAlias.objects.all().delete()
    registry.forget_serving_versions()

    payload = labeler.get(reverse("labeling_queue_next")).json()

    assert payload["transaction"] is not None
    assert payload["suggestion"] is None
    assert len(payload["choices"]) == 9
