"""Training, the registry and serving, on generated data in the test database.

One generated data set with features is shared by the module; training
builds the dbt training view itself the first time. Models are stored in a
temporary directory.
"""

from datetime import date
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection

from labeling.labels import set_label
from labeling.models import LabelSource, Transaction, TransactionLabel
from mlcore import dbt, registry, serving, training
from mlcore.models import (
    Alias,
    FeatureVector,
    JobStatus,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Suggestion,
    TrainingRun,
)
from tests.trained_model import trained_model

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def storage(tmp_path_factory):
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="module")
def first_run(django_db_setup, django_db_blocker, storage):
    """Generated data, features and one model promoted to champion."""
    with django_db_blocker.unblock(), trained_model(storage) as run:
        yield run


@pytest.fixture
def champion(first_run):
    """Each test starts with the first model as the only alias."""
    ModelAlias.objects.all().delete()
    ModelAlias.objects.create(
        alias=Alias.CHAMPION, model_version=first_run.model_version
    )
    registry.forget_serving_versions()
    return first_run.model_version


def view_rows(where):
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {training.TRAINING_VIEW} WHERE {where}")
        return cursor.fetchone()[0]


def test_a_run_records_data_window_counts_metrics_and_artifact(first_run):
    run = TrainingRun.objects.get(pk=first_run.pk)
    cutoff = date.fromisoformat(run.params["cutoff"])

    assert run.status == JobStatus.SUCCEEDED
    assert cutoff == date(2026, 11, 1)  # the last full month of the data
    assert run.train_end < cutoff <= run.validation_start
    assert run.row_counts["train"] == view_rows(f"ts_month < '{cutoff}'")
    assert sum(run.label_counts.values()) == run.row_counts["train"]
    assert set(run.label_counts) == {"human", "rule", "import"}
    # Validation counts human labels only.
    assert run.row_counts["validation"] == view_rows(
        f"ts_month >= '{cutoff}' AND label_source = 'human'"
    )
    figures = run.metrics
    assert figures["n"] == run.row_counts["validation"]
    assert 0.8 < figures["accuracy"] <= 1
    assert 0.5 < figures["macro_f1"] <= 1
    assert 0 <= figures["calibration_error"] < 0.1
    assert set(figures["coverage_at_precision"]) == {"0.90", "0.95", "0.98"}
    assert [row["threshold"] for row in figures["thresholds"]][:2] == [0.5, 0.6]
    assert figures["per_category"]
    assert run.code_version and run.duration_seconds > 0
    path = Path(settings.MODEL_STORAGE_DIR) / run.artifact_path
    assert path.is_file()
    assert registry._sha256(path) == run.artifact_sha256
    assert run.model_version.artifact_sha256 == run.artifact_sha256
    assert figures["promotion"]["promoted"] is True


def test_promote_if_better_keeps_the_champion_when_not_better(champion):
    run = training.train(promote_if_better=True)

    # Same data, same deterministic fit: equal, so not better.
    assert run.metrics["promotion"]["promoted"] is False
    assert run.metrics["promotion"]["champion"] == champion.pk
    assert "did not beat" in run.metrics["promotion"]["reason"]
    assert ModelAlias.objects.get(alias=Alias.CHAMPION).model_version == champion


def test_a_failed_run_is_recorded_with_its_error(first_run):
    with pytest.raises(training.TrainingError, match="before the cutoff 2000-01-01"):
        training.train(cutoff=date(2000, 1, 1))

    run = TrainingRun.objects.order_by("-id").first()
    assert run.status == JobStatus.FAILED
    assert "No labeled transactions before the cutoff 2000-01-01" in run.error
    assert run.finished_at is not None
    assert not ModelVersion.objects.filter(training_run=run).exists()


def test_a_new_label_makes_the_view_stale_and_is_not_trained_on_silently(first_run):
    training.ensure_training_view()  # fresh: nothing to rebuild
    txn = Transaction.objects.filter(label__isnull=True, features__isnull=False)[0]
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    # dbt cannot see this test's open transaction, so it cannot rebuild.
    with pytest.raises(training.TrainingError, match="out of date"):
        training.train()


def test_the_command_reports_the_run(champion):
    out = StringIO()
    call_command("train_model", "--cutoff", "2026-10", stdout=out)

    run = TrainingRun.objects.order_by("-id").first()
    assert run.params["cutoff"] == "2026-10-01"
    assert f"Run {run.pk}: model v{run.model_version.pk}" in out.getvalue()
    assert "promotion" not in run.metrics


def test_a_tampered_artifact_is_refused(first_run, tmp_path):
    version = first_run.model_version
    path = Path(settings.MODEL_STORAGE_DIR) / version.artifact_path
    copy = path.with_name("tampered.joblib")
    copy.write_bytes(path.read_bytes()[:-1] + b"\0")
    forged = ModelVersion(
        pk=10_000, artifact_path=copy.name, artifact_sha256=version.artifact_sha256
    )

    with pytest.raises(registry.ArtifactError, match="expected"):
        registry.load(forged)


def test_promote_and_roll_back_are_logged_with_who(champion):
    user = get_user_model().objects.create_user("analyst")
    second = training.train().model_version

    registry.promote(second, Alias.CHAMPION, user, "better on October")
    assert ModelAlias.objects.get(alias=Alias.CHAMPION).model_version == second
    restored = registry.rollback(Alias.CHAMPION, user)

    assert restored == champion
    changes = list(ModelAliasChange.objects.filter(changed_by=user).order_by("id"))
    assert [(c.action, c.previous_version, c.model_version) for c in changes] == [
        ("promote", champion, second),
        ("rollback", second, champion),
    ]
    with pytest.raises(registry.RegistryError, match="no earlier version"):
        registry.rollback(Alias.CHAMPION, user)


def test_suggestions_name_their_model_and_are_stored(champion):
    txn_ids = list(
        Transaction.objects.filter(label__isnull=True)
        .order_by("id")
        .values_list("pk", flat=True)[:20]
    )

    answers = serving.suggest_transactions(txn_ids)

    assert [a.txn_id for a in answers] == txn_ids
    for answer in answers:
        assert answer.model_version == champion.pk
        assert answer.arm == "champion"
        probabilities = [s["probability"] for s in answer.top_k]
        assert probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1.000001
        assert len(answer.top_k) == settings.SUGGESTIONS_TOP_K
    stored = Suggestion.objects.filter(txn_id__in=txn_ids)
    assert stored.count() == 20
    assert {s.label for s in stored} == {a.category for a in answers}


def test_one_id_at_a_time_gets_the_answers_of_a_batch(champion):
    # A few ids take one prepared statement and the model's plain-Python
    # path; a batch reads windows per (merchant, day) and uses dataframes.
    # Labeled rows are among them: their own labels must count in neither.
    txn_ids = list(Transaction.objects.order_by("-id").values_list("pk", flat=True))[
        :60
    ]
    assert Transaction.objects.filter(pk__in=txn_ids, label__isnull=False).exists()

    batch = serving.suggest_transactions(txn_ids, store=False)
    singles = [serving.suggest_transactions([i], store=False)[0] for i in txn_ids]

    for one, many in zip(singles, batch, strict=True):
        assert [s["category"] for s in one.top_k] == [s["category"] for s in many.top_k]
        assert [s["probability"] for s in one.top_k] == pytest.approx(
            [s["probability"] for s in many.top_k], abs=1e-5
        )


def test_labeling_records_the_suggestion_outcome(champion):
    first, second, third = Transaction.objects.filter(label__isnull=True)[:3]
    answers = {
        a.txn_id: a
        for a in serving.suggest_transactions([first.pk, second.pk, third.pk])
    }
    other = next(c for c in champion.classes if c != answers[second.pk].category)

    set_label(first.pk, answers[first.pk].category, LabelSource.HUMAN)
    set_label(second.pk, other, LabelSource.HUMAN)
    set_label(third.pk, other, LabelSource.RULE)

    outcome = dict(
        Suggestion.objects.filter(
            txn_id__in=[first.pk, second.pk, third.pk]
        ).values_list("txn_id", "outcome")
    )
    assert outcome == {first.pk: "accepted", second.pk: "overridden", third.pk: None}


def test_new_transactions_get_suggestions_from_the_same_features(champion):
    answers = serving.suggest_new(
        [
            {
                "account": "HH00001 Chase Checking",
                "posted_on": date(2026, 11, 20),
                "description": "STARBUCKS STORE 12345 SEATTLE WA",
                "amount": Decimal("-6.45"),
            }
        ]
    )

    assert answers[0].txn_id is None
    assert answers[0].category == "Food & Dining"
    assert answers[0].model_version == champion.pk


def test_a_challenger_serves_a_stable_share(champion, settings):
    settings.SUGGESTIONS_CHALLENGER_SHARE = 0.5
    challenger = training.train().model_version
    registry.promote(challenger, Alias.CHALLENGER)
    txn_ids = list(Transaction.objects.order_by("id").values_list("pk", flat=True))[
        :400
    ]

    first = {a.txn_id: a for a in serving.suggest_transactions(txn_ids, store=False)}
    again = {a.txn_id: a for a in serving.suggest_transactions(txn_ids, store=False)}

    arms = [first[i].arm for i in txn_ids]
    assert 120 < arms.count("challenger") < 280
    assert all(first[i].arm == again[i].arm for i in txn_ids)
    assert {
        first[i].model_version for i in txn_ids if first[i].arm == "challenger"
    } == {challenger.pk}


def test_without_a_champion_there_is_no_suggestion(champion):
    registry.remove(Alias.CHAMPION)

    with pytest.raises(serving.NoModel, match="No champion"):
        serving.suggest_transactions([Transaction.objects.first().pk])


def test_unknown_ids_are_named(champion):
    with pytest.raises(Transaction.DoesNotExist, match="999999999"):
        serving.suggest_transactions([999_999_999])


def test_auto_apply_writes_confident_rule_labels_and_only_when_enabled(champion):
    assert serving.auto_apply(limit=50)["enabled"] is False
    unlabeled = list(
        Transaction.objects.filter(label__isnull=True)
        .order_by("-id")
        .values_list("pk", flat=True)[:50]
    )
    expected = {
        a.txn_id: a.category
        for a in serving.suggest_transactions(unlabeled, store=False)
        if a.confidence >= 0.9
    }

    result = serving.auto_apply(limit=50, threshold=0.9)

    assert result["considered"] == 50
    assert result["labeled"] == len(expected) > 0
    written = dict(
        TransactionLabel.objects.filter(txn_id__in=unlabeled).values_list(
            "txn_id", "label"
        )
    )
    assert written == expected
    assert set(
        TransactionLabel.objects.filter(txn_id__in=expected).values_list(
            "source", flat=True
        )
    ) == {"rule"}
    assert not Suggestion.objects.filter(txn_id__in=unlabeled).exists()


def test_a_challenger_must_differ_from_the_champion(champion):
    with pytest.raises(registry.RegistryError, match="is the champion"):
        registry.promote(champion, Alias.CHALLENGER)


def test_no_features_are_built_without_a_champion(champion, make_txn):
    registry.remove(Alias.CHAMPION)
    new = make_txn(posted_on=date(2026, 11, 30))

    with pytest.raises(serving.NoModel):
        serving.suggest_transactions([new.pk])

    assert not FeatureVector.objects.filter(txn_id=new.pk).exists()


def test_training_rebuilds_the_stale_warehouse_which_reports_accuracy_per_arm(
    committed_db, champion, settings
):
    # Committed, since dbt reads on connections of its own; last in the
    # module, since a committed test empties the tables when it ends.
    settings.SUGGESTIONS_CHALLENGER_SHARE = 0.5
    registry.promote(training.train().model_version, Alias.CHALLENGER)
    Suggestion.objects.all().delete()  # those of earlier tests
    unlabeled = list(Transaction.objects.filter(label__isnull=True)[:60])
    answers = serving.suggest_transactions([t.pk for t in unlabeled])
    for number, answer in enumerate(answers):
        # Every third label disagrees with the suggestion.
        category = answer.category if number % 3 else answer.top_k[1]["category"]
        set_label(answer.txn_id, category, LabelSource.HUMAN)

    # The new labels make the warehouse stale; training rebuilds all of it.
    run = training.train()

    live_labels = TransactionLabel.objects.filter(
        txn__features__isnull=False, txn__deleted_at__isnull=True
    )
    assert run.row_counts["view"] == live_labels.count()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT experiment_arm, model_version, evaluated, correct, accepted,"
            f" overridden FROM {dbt.SCHEMA}.fct_experiment_arms"
            f" WHERE model_version = ANY(%s)",
            [list({a.model_version for a in answers})],
        )
        report = {row[0]: row[1:] for row in cursor.fetchall()}
    for arm in ("champion", "challenger"):
        served = [a for a in answers if a.arm == arm]
        right = sum(1 for n, a in enumerate(answers) if a.arm == arm and n % 3)
        assert report[arm] == (
            served[0].model_version,
            len(served),
            right,
            right,
            len(served) - right,
        )
