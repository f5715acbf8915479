"""The dbt warehouse, built by the real dbt against the test database.

One build over generated data is shared by the module (dbt runs on its own
connections, so the data is committed, and removed again at the end). Tests
that change data commit through a connection of their own, and read the
warehouse tables the same way, so that their own transaction never holds a
lock that a dbt rebuild would wait for.
"""

import os
import shutil
import time
from collections import Counter
from datetime import date
from io import StringIO
from types import SimpleNamespace

import psycopg
import pytest
import yaml
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection
from django.utils import timezone

from labeling.models import TRAINING_WEIGHTS, LabelSource, Transaction, TransactionLabel
from mlcore import dbt
from mlcore.features import build
from mlcore.jobs import JobConflict
from mlcore.models import FeatureVector, Job, JobStatus
from mlcore.tasks import run_dbt_task, start_dbt_run

pytestmark = pytest.mark.django_db

MODELS = {
    "stg_transactions",
    "stg_transaction_labels",
    "stg_ml_features",
    "stg_ml_training_runs",
    "stg_categories",
    "stg_ml_suggestions",
    "fct_training_view",
    "dim_merchants",
    "fct_suggestions_eval",
    "fct_experiment_arms",
    "stg_label_rules",
    "stg_label_rule_runs",
    "stg_label_rule_matches",
    "fct_rule_quality",
}


def query(sql, params=()):
    """Read on a connection of its own, like psql would."""
    with psycopg.connect(dbt.database_url(), autocommit=True) as conn:
        return conn.execute(sql, params).fetchall()


def commit(sql, params=()):
    """Write and commit on a connection of its own, so dbt sees the change."""
    with psycopg.connect(dbt.database_url(), autocommit=True) as conn:
        conn.execute(sql, params)


def training_rows():
    rows = query(
        f"SELECT txn_id, label, label_source, sample_weight, ts_month "
        f"FROM {dbt.SCHEMA}.fct_training_view"
    )
    return {row[0]: row[1:] for row in rows}


def expected_training_rows():
    """Labeled live transactions with features, from the Django side."""
    labels = TransactionLabel.objects.filter(
        txn__deleted_at__isnull=True, txn__features__isnull=False
    ).select_related("txn")
    return {
        label.txn_id: (
            label.label_id,
            label.source,
            TRAINING_WEIGHTS[LabelSource(label.source)],
            label.txn.posted_on.replace(day=1),
        )
        for label in labels
    }


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    """Generated data with features and one soft-deleted labeled transaction,
    built with `manage.py run_dbt`; everything is removed afterwards."""
    with django_db_blocker.unblock():
        call_command(
            "generate_transactions",
            count=3_000,
            months=6,
            seed=21,
            label_fraction=0.4,
            stdout=StringIO(),
        )
        build.build_window()
        deleted = TransactionLabel.objects.order_by("txn_id").first().txn_id
        Transaction.objects.filter(pk=deleted).update(deleted_at=timezone.now())

        out = StringIO()
        call_command("run_dbt", stdout=out)
        job = Job.objects.filter(kind=Job.Kind.DBT_RUN).first()
        try:
            yield SimpleNamespace(job_id=job.pk, output=out.getvalue(), deleted=deleted)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {dbt.SCHEMA} CASCADE")
                cursor.execute(
                    "TRUNCATE transactions, transaction_labels, "
                    "transaction_label_history, ml_features, jobs CASCADE"
                )


def test_the_build_succeeds_and_its_job_records_every_model(built):
    job = Job.objects.get(pk=built.job_id)

    assert job.status == JobStatus.SUCCEEDED
    assert job.error == ""
    assert job.params == {"select": "tag:ml", "full_refresh": False}
    assert job.result["success"] is True
    assert job.result["command"] == "dbt build --select tag:ml"
    assert job.result["failed"] == job.result["failed_tests"] == []
    models = {
        node["name"]: node
        for node in job.result["nodes"]
        if node["resource_type"] == "model"
    }
    assert set(models) == MODELS
    for node in models.values():
        assert node["status"] == "success"
        assert node["seconds"] > 0
    tests = [node for node in job.result["nodes"] if node["resource_type"] == "test"]
    assert len(tests) > 30
    assert {node["status"] for node in tests} == {"pass"}
    assert "assert_training_view_has_no_deleted_transactions" in {
        node["name"] for node in tests
    }
    assert "Completed successfully" in job.log_tail
    assert "fct_training_view: success" in built.output
    assert "dbt build succeeded" in built.output


def test_training_view_has_one_row_per_labeled_live_transaction(built):
    rows = training_rows()
    expected = expected_training_rows()

    assert rows == expected
    assert built.deleted not in rows
    assert {source for _, source, _, _ in rows.values()} == set(LabelSource.values)
    assert {(source, weight) for _, source, weight, _ in rows.values()} == {
        ("human", 3.0),
        ("rule", 1.0),
        ("import", 0.5),
    }


def test_dim_merchants_adds_up(built):
    columns = (
        "merchant, transaction_count, labeled_count, labeled_share, "
        "label_distribution, top_category, top_category_share, "
        "first_seen_on, last_seen_on, subscription_share, has_subscription, "
        "typical_abs_amount"
    )
    merchants = {
        row[0]: dict(zip(columns.split(", "), row, strict=True))
        for row in query(f"SELECT {columns} FROM {dbt.SCHEMA}.dim_merchants")
    }
    features = FeatureVector.objects.filter(txn__deleted_at__isnull=True)
    counts = Counter(features.values_list("merchant", flat=True))
    labeled = Counter(
        features.filter(txn__label__isnull=False).values_list("merchant", flat=True)
    )

    assert {name: m["transaction_count"] for name, m in merchants.items()} == counts
    assert {
        name: m["labeled_count"] for name, m in merchants.items() if m["labeled_count"]
    } == labeled
    for merchant in merchants.values():
        distribution = merchant["label_distribution"]
        assert sum(distribution.values()) == merchant["labeled_count"]
        assert merchant["first_seen_on"] <= merchant["last_seen_on"]
        assert 0 <= merchant["subscription_share"] <= 1
        assert merchant["has_subscription"] == (merchant["subscription_share"] > 0)
        assert merchant["typical_abs_amount"] >= 0
        if merchant["labeled_count"]:
            top = max(distribution.values())
            assert 0 < merchant["top_category_share"] <= 1
            assert distribution[merchant["top_category"]] == top
            assert merchant["top_category_share"] == pytest.approx(
                top / merchant["labeled_count"]
            )
        else:
            assert merchant["top_category"] is None
            assert merchant["top_category_share"] is None
            assert distribution == {}


def test_suggestions_eval_exists_and_is_empty(built):
    columns = {
        row[0]
        for row in query(
            "SELECT column_name FROM information_schema.columns "
            "WHERE table_schema = %s AND table_name = 'fct_suggestions_eval'",
            [dbt.SCHEMA],
        )
    }

    assert query(f"SELECT count(*) FROM {dbt.SCHEMA}.fct_suggestions_eval") == [(0,)]
    assert {
        "suggestion_id",
        "suggested_category",
        "confidence",
        "model_version",
        "experiment_arm",
        "final_category",
        "final_label_source",
        "is_evaluated",
        "is_correct",
        "suggested_month",
    } <= columns


def test_the_training_view_needs_no_schema_in_a_new_session(built):
    before_data = query(
        "SELECT * FROM fct_training_view WHERE ts_month < '2025-10-01' LIMIT 10"
    )
    in_data = query(
        "SELECT txn_id, ts_month FROM fct_training_view "
        "WHERE ts_month < '2026-10-01' LIMIT 10"
    )

    assert before_data == []  # the generated data starts in 2026
    assert len(in_data) == 10
    assert all(ts_month < date(2026, 10, 1) for _, ts_month in in_data)


def test_a_soft_deleted_transaction_leaves_the_training_view_on_the_next_run(built):
    txn_id = min(expected_training_rows())
    assert txn_id in training_rows()
    commit("UPDATE transactions SET deleted_at = now() WHERE id = %s", [txn_id])

    job = start_dbt_run()
    run_dbt_task(job.pk)  # what a worker does with the queued task

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert job.kind == Job.Kind.DBT_RUN
    assert txn_id not in training_rows()
    assert training_rows() == expected_training_rows()


def test_a_failing_data_test_fails_the_job_and_names_the_test(built):
    txn_id = min(expected_training_rows())
    commit(
        "UPDATE ml_features SET ts_month = ts_month - interval '1 month' "
        "WHERE txn_id = %s",
        [txn_id],
    )
    try:
        with pytest.raises(CommandError) as raised:
            call_command("run_dbt", select="stg_ml_features", stdout=StringIO())
    finally:
        commit(
            "UPDATE ml_features SET ts_month = date_trunc('month', t.posted_on) "
            "FROM transactions t WHERE t.id = ml_features.txn_id AND txn_id = %s",
            [txn_id],
        )

    assert "assert_feature_month_matches_transaction" in str(raised.value)
    job = Job.objects.filter(kind=Job.Kind.DBT_RUN).first()
    assert job.status == JobStatus.FAILED
    assert job.error.startswith("DbtRunFailed: dbt build failed: test ")
    assert "assert_feature_month_matches_transaction fail" in job.error
    assert job.result["success"] is False
    assert job.result["failed_tests"] == ["assert_feature_month_matches_transaction"]
    failed = next(node for node in job.result["nodes"] if node["status"] == "fail")
    assert failed["failures"] == 1
    assert "Completed with 1 error" in job.log_tail


def test_a_model_error_is_a_failure_never_a_success(built, tmp_path):
    project = tmp_path / "warehouse"
    shutil.copytree(
        dbt.PROJECT_DIR, project, ignore=shutil.ignore_patterns("target", "logs")
    )
    (project / "models" / "marts" / "broken.sql").write_text("select 1 / 0 as boom\n")

    outcome = dbt.run_dbt(select="broken", project_dir=project)

    assert outcome.success is False
    assert [node.name for node in outcome.failed_nodes] == ["broken"]
    assert outcome.failed_nodes[0].status == "error"
    assert outcome.failed_tests == []
    assert "model broken error" in outcome.error
    assert "division by zero" in outcome.error
    assert outcome.as_dict()["failed"] == ["broken"]


def test_an_empty_selection_is_not_a_success():
    outcome = dbt.run_dbt(select="no_such_model")

    assert outcome.success is False
    assert "matched nothing" in outcome.error


def test_a_second_run_is_refused_while_one_is_active():
    running = Job.objects.create(kind=Job.Kind.DBT_RUN, status=JobStatus.RUNNING)
    jobs_before = Job.objects.count()

    with pytest.raises(CommandError, match="already running"):
        call_command("run_dbt", stdout=StringIO())
    with pytest.raises(JobConflict) as raised:
        start_dbt_run()

    assert raised.value.job == running
    assert Job.objects.count() == jobs_before


def test_a_worker_runs_a_queued_build(celery_worker):
    # Runs on its own (empty) committed data, after the shared build is gone.
    job = start_dbt_run()

    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).status in (JobStatus.QUEUED, JobStatus.RUNNING):
        assert time.monotonic() < deadline, "the worker did not finish the dbt run"
        time.sleep(0.5)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.celery_task_id
    assert {
        node["name"] for node in job.result["nodes"] if node["resource_type"] == "model"
    } == MODELS


def test_dbt_weights_are_the_django_weights():
    project = yaml.safe_load((dbt.PROJECT_DIR / "dbt_project.yml").read_text())

    assert project["vars"]["training_weights"] == {
        source.value: weight for source, weight in TRAINING_WEIGHTS.items()
    }


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://app%40corp:p%3As%2Fw%C3%B6rd@db.internal:6543/fin%20ance"
            "?sslmode=require",
            ("db.internal", 6543, "app@corp", "p:s/wörd", "fin ance", "require"),
        ),
        (
            "postgresql://postgres@/finance?host=%2Fsrv%2Fpg%20data",
            ("/srv/pg data", 5432, "postgres", "", "finance", "prefer"),
        ),
        (
            "postgres://u@[::1]/db?host=/run/pg&sslmode=disable",
            ("/run/pg", 5432, "u", "", "db", "disable"),
        ),
        ("postgresql://[::1]:5433/db", ("::1", 5433, "", "", "db", "prefer")),
        ("postgresql:///finance", ("", 5432, "", "", "finance", "prefer")),
    ],
)
def test_profiles_read_the_connection_from_database_url(url, expected, monkeypatch):
    # Renders the profile the way dbt does, without connecting.
    from dbt.config.renderer import ProfileRenderer
    from dbt_common.context import set_invocation_context

    monkeypatch.setenv("DATABASE_URL", url)
    set_invocation_context(dict(os.environ))
    profiles = yaml.safe_load((dbt.PROJECT_DIR / "profiles.yml").read_text())

    output = ProfileRenderer({}).render_data(
        profiles["finance_warehouse"]["outputs"]["default"]
    )

    keys = ("host", "port", "user", "password", "dbname", "sslmode")
    assert tuple(output[key] for key in keys) == expected


def test_the_models_schema_is_the_profiles_schema():
    profiles = yaml.safe_load((dbt.PROJECT_DIR / "profiles.yml").read_text())

    output = profiles["finance_warehouse"]["outputs"]["default"]
    assert output["schema"] == dbt.SCHEMA
