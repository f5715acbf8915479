"""Suggestions: asking for them, what is stored, and how the arms fare.

One real model, trained on generated data, is shared by the module; each
test runs in a transaction of its own, so what it stores is rolled back.
"""

import pytest
from django.utils import timezone

from labeling.labels import bulk_set_labels
from labeling.models import LabelSource, Transaction
from mlcore import registry, serving
from mlcore.models import Alias, ModelAlias, Suggestion, TrainingRun
from tests.api import client_for
from tests.trained_model import trained_model

pytestmark = pytest.mark.django_db

URL = "/api/suggestions/"
NEW = {
    "date": "2026-11-02",
    "description": "SQ *BLUE BOTTLE",
    "amount": "-4.50",
    "account": "Visa 1",
}


@pytest.fixture(scope="module")
def model(django_db_setup, django_db_blocker, tmp_path_factory):
    with django_db_blocker.unblock(), trained_model(tmp_path_factory.mktemp("m")):
        yield TrainingRun.objects.get().model_version


@pytest.fixture(autouse=True)
def fresh_aliases():
    # Alias changes roll back with each test; the process's copy must not
    # outlive them.
    registry.forget_serving_versions()
    yield
    registry.forget_serving_versions()


@pytest.fixture
def unlabeled(model):
    return list(
        Transaction.objects.filter(label__isnull=True)
        .order_by("id")
        .values_list("pk", flat=True)
    )


@pytest.fixture
def labeler(db):
    client, _ = client_for("labeler")
    return client


def make_challenger(champion):
    """A second version (the same model, registered again) as challenger."""
    run = TrainingRun.objects.create(status="succeeded", metrics={"accuracy": 0.5})
    version = registry.register(run, registry.load(champion))
    registry.promote(version, Alias.CHALLENGER, reason="test")
    return version


def test_a_labeler_gets_top_k_for_a_stored_transaction_and_it_is_stored(
    model, unlabeled, labeler
):
    txn_id = unlabeled[0]

    response = labeler.post(
        URL, {"transaction_ids": [txn_id], "top_k": 2}, format="json"
    )

    assert response.status_code == 200, response.content
    (result,) = response.json()["results"]
    assert result["transaction_id"] == txn_id
    assert (result["model_version"], result["arm"]) == (model.pk, "champion")
    probabilities = [s["probability"] for s in result["suggestions"]]
    assert len(probabilities) == 2
    assert probabilities == sorted(probabilities, reverse=True)
    stored = Suggestion.objects.get(pk=result["suggestion_id"])
    assert (stored.txn_id, stored.label, stored.outcome) == (
        txn_id,
        result["suggestions"][0]["category"],
        None,
    )
    assert stored.top_k == result["suggestions"]


def test_transactions_that_are_not_stored_get_suggestions_and_nothing_is_stored(
    model, labeler
):
    known = Transaction.objects.order_by("id").first()
    body = {
        "transactions": [
            {
                "date": "2026-11-20",
                "description": known.description,
                "amount": str(known.amount),
                "account": known.account,
            },
            {
                "date": "2026-11-21",
                "description": "SOMETHING NEVER SEEN 123",
                "amount": "-12.00",
                "account": "Nowhere 1",
            },
        ]
    }

    response = labeler.post(URL, body, format="json")

    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert [r["index"] for r in results] == [0, 1]
    assert all(len(r["suggestions"]) == 3 for r in results)
    assert all("suggestion_id" not in r for r in results)
    assert not Suggestion.objects.exists()


def test_without_a_champion_it_is_503_saying_so(model, unlabeled, labeler):
    ModelAlias.objects.all().delete()
    registry.forget_serving_versions()

    response = labeler.post(URL, {"transaction_ids": [unlabeled[0]]}, format="json")

    assert response.status_code == 503
    assert "No champion" in response.json()["detail"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"non_field_errors": ["Give exactly one of"]}),
        (
            {"transaction_ids": [1], "transactions": [NEW]},
            {"non_field_errors": ["Give exactly one of"]},
        ),
        ({"transaction_ids": []}, {"transaction_ids": ["at least 1"]}),
        ({"transaction_ids": ["x"]}, {"transaction_ids": {"0": ["valid integer"]}}),
        ({"transaction_ids": [1] * 1001}, {"transaction_ids": ["no more than 1000"]}),
        ({"transaction_ids": [1], "top_k": 11}, {"top_k": ["less than or equal"]}),
        (
            {
                "transactions": [
                    {"date": "2026-11-01", "description": "A", "amount": "1.00"},
                    {
                        "date": "someday",
                        "description": "B",
                        "amount": "1",
                        "account": "C",
                    },
                ]
            },
            {
                "transactions": {
                    "0": {"account": ["required"]},
                    "1": {"date": ["wrong format"]},
                }
            },
        ),
    ],
)
def test_invalid_input_is_400_naming_the_item_and_field(labeler, body, errors):
    response = labeler.post(URL, body, format="json")

    assert response.status_code == 400
    assert_errors(response.json(), errors)


def assert_errors(got, expected):
    """Every expected key is there and each message contains the fragment."""
    assert set(got) == set(expected), got
    for key, value in expected.items():
        if isinstance(value, dict):
            assert_errors(got[key], value)
        else:
            assert value[0] in got[key][0], got[key]


def test_unknown_or_deleted_ids_are_400_naming_them(model, unlabeled, labeler):
    Transaction.objects.filter(pk=unlabeled[0]).update(deleted_at=timezone.now())
    missing = 2**40

    response = labeler.post(
        URL, {"transaction_ids": [unlabeled[1], unlabeled[0]]}, format="json"
    )
    assert response.status_code == 400
    assert str(unlabeled[0]) in response.json()["transaction_ids"][0]

    response = labeler.post(URL, {"transaction_ids": [missing]}, format="json")
    assert response.status_code == 400
    assert str(missing) in response.json()["transaction_ids"][0]
    assert not Suggestion.objects.exists()


def test_a_batch_of_1000_is_answered_in_order(model, labeler):
    ids = list(Transaction.objects.order_by("-id").values_list("pk", flat=True)[:1000])

    response = labeler.post(URL, {"transaction_ids": ids}, format="json")

    assert response.status_code == 200
    assert [r["transaction_id"] for r in response.json()["results"]] == ids
    assert Suggestion.objects.count() == 1000


def test_one_id_takes_two_queries(
    model, unlabeled, labeler, django_assert_max_num_queries
):
    labeler.post(
        URL, {"transaction_ids": [unlabeled[0]]}, format="json"
    )  # warm the caches

    # The row with its label window, then the stored suggestion.
    with django_assert_max_num_queries(2):
        response = labeler.post(URL, {"transaction_ids": [unlabeled[1]]}, format="json")
    assert response.status_code == 200


def test_labeling_records_whether_the_suggestion_was_accepted(
    model, unlabeled, labeler
):
    first, second = unlabeled[:2]
    results = labeler.post(
        URL, {"transaction_ids": [first, second]}, format="json"
    ).json()
    suggested = {
        r["transaction_id"]: r["suggestions"][0]["category"] for r in results["results"]
    }
    other = "Books" if suggested[second] != "Books" else "Travel"

    for txn_id, category in ((first, suggested[first]), (second, other)):
        response = labeler.put(
            f"/api/transactions/{txn_id}/label/", {"category": category}, format="json"
        )
        assert response.status_code == 200, response.content

    outcomes = dict(Suggestion.objects.values_list("txn_id", "outcome"))
    assert outcomes == {first: "accepted", second: "overridden"}


def test_a_challenger_answers_its_share_and_the_arms_report_counts_both(
    model, unlabeled, settings
):
    settings.SUGGESTIONS_CHALLENGER_SHARE = 0.5
    challenger = make_challenger(model)
    client, _ = client_for("analyst")
    ids = unlabeled[:200]

    results = client.post(URL, {"transaction_ids": ids}, format="json").json()
    arms = {
        r["transaction_id"]: (r["arm"], r["model_version"]) for r in results["results"]
    }
    # The same transaction always lands in the same arm.
    again = client.post(URL, {"transaction_ids": ids[:20]}, format="json").json()
    suggested = {
        s.txn_id: s.label for s in Suggestion.objects.filter(txn_id__in=ids[:100])
    }
    # Half of them are labeled as suggested.
    bulk_set_labels(suggested, LabelSource.HUMAN)
    report = client.get(f"{URL}arms/").json()["results"]

    for txn_id, (arm, version) in arms.items():
        assert arm == serving.arm_for(txn_id)
        assert version == (challenger.pk if arm == "challenger" else model.pk)
    assert {r["transaction_id"]: r["arm"] for r in again["results"]} == {
        i: arms[i][0] for i in ids[:20]
    }
    by_arm = {row["arm"]: row for row in report}
    assert set(by_arm) == {"champion", "challenger"}
    for arm, version in (("champion", model.pk), ("challenger", challenger.pk)):
        mine = [i for i in ids if arms[i][0] == arm]
        labeled = [i for i in mine if i in suggested]
        row = by_arm[arm]
        assert row["model_version"] == version
        assert row["served"] == len(mine) + sum(1 for i in ids[:20] if i in mine)
        assert row["transactions"] == len(mine)
        assert row["evaluated"] == row["correct"] == row["accepted"] == len(labeled)
        assert row["overridden"] == 0
        assert row["accuracy"] == 1.0


def test_the_arms_report_counts_overrides_as_wrong(model, unlabeled):
    client, _ = client_for("analyst")
    ids = unlabeled[:4]
    results = client.post(URL, {"transaction_ids": ids}, format="json").json()
    suggested = {
        r["transaction_id"]: r["suggestions"][0]["category"] for r in results["results"]
    }
    wrong = {i: ("Books" if c != "Books" else "Travel") for i, c in suggested.items()}
    bulk_set_labels(
        {ids[0]: wrong[ids[0]], ids[1]: suggested[ids[1]], ids[2]: suggested[ids[2]]},
        LabelSource.HUMAN,
    )
    bulk_set_labels({ids[3]: suggested[ids[3]]}, LabelSource.RULE)

    (row,) = client.get(f"{URL}arms/").json()["results"]

    # A rule label is not a person's judgement: the last one is not evaluated.
    assert (row["served"], row["transactions"], row["evaluated"]) == (4, 4, 3)
    assert (row["correct"], row["accepted"], row["overridden"]) == (2, 2, 1)
    assert row["accuracy"] == pytest.approx(2 / 3)


def test_stored_suggestions_are_listed_with_filters(model, unlabeled):
    client, _ = client_for("analyst")
    client.post(URL, {"transaction_ids": unlabeled[:3]}, format="json")

    everything = client.get(URL).json()["results"]
    one = client.get(URL, {"transaction": unlabeled[1]}).json()["results"]
    champion = client.get(URL, {"arm": "champion", "model_version": model.pk})
    pending = client.get(URL, {"outcome": "accepted"}).json()["results"]

    assert [s["transaction"] for s in everything] == unlabeled[:3][::-1]
    assert [s["transaction"] for s in one] == [unlabeled[1]]
    assert len(champion.json()["results"]) == 3
    assert pending == []
    assert set(everything[0]) >= {"label", "confidence", "top_k", "arm", "outcome"}
