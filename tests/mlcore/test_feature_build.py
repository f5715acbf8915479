"""Feature builds from the command line and from Celery, crashes included."""

import os
import signal
import subprocess
import sys
import time
from io import StringIO

import pytest
from django.core.management import call_command
from django.db import connection

from finance_project import env
from finance_project.celery import app as celery_app
from labeling.models import Transaction
from mlcore.features import build
from mlcore.jobs import JobConflict
from mlcore.models import FeatureVector, Job, JobStatus
from mlcore.tasks import (
    build_features_task,
    start_feature_build,
    start_selected_feature_build,
)


def generate(count, seed=3, months=6):
    call_command(
        "generate_transactions",
        count=count,
        months=months,
        seed=seed,
        label_fraction=0.2,
        stdout=StringIO(),
    )


def feature_count_matches_live_transactions():
    live = Transaction.objects.count()
    return FeatureVector.objects.count() == live and live > 0


def wait_for(predicate, timeout, message):
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message)
        time.sleep(0.2)


@pytest.mark.django_db
def test_command_builds_a_window_and_reports_what_it_did():
    generate(2_000)
    out = StringIO()

    call_command(
        "build_features",
        "--since",
        "2026-10-01",
        "--until",
        "2026-10-31",
        "--workers",
        "1",
        stdout=out,
    )

    text = out.getvalue()
    in_window = Transaction.objects.filter(
        posted_on__range=("2026-10-01", "2026-10-31")
    ).count()
    assert "Building features for 2026-10-01 to 2026-10-31" in text
    assert f"Processed {in_window:,} transactions" in text
    assert f"Built {in_window:,} feature vectors" in text
    assert "Elapsed" in text
    assert FeatureVector.objects.count() == in_window


def test_command_without_a_window_builds_what_is_pending(committed_db):
    generate(1_000)
    call_command("build_features", "--all", "--batch-size", "300", stdout=StringIO())
    assert feature_count_matches_live_transactions()

    txn = Transaction.objects.order_by("id").first()
    Transaction.objects.filter(pk=txn.pk).update(deleted_at="2026-12-01T00:00Z")
    out = StringIO()
    call_command("build_features", stdout=out)

    assert "Removed 1 feature vectors of deleted transactions" in out.getvalue()
    assert feature_count_matches_live_transactions()
    assert build.pending_transaction_ids() == []


@pytest.mark.django_db
def test_command_rejects_a_reversed_window():
    with pytest.raises(Exception, match="is after --until"):
        call_command("build_features", "--since", "2026-02-01", "--until", "2026-01-01")


@pytest.mark.django_db
def test_chunks_cover_every_partition_once():
    generate(3_000)

    chunks = build.plan_chunks(batch_size=500)

    partitions = [p for chunk in chunks for p in chunk.partitions]
    assert len(partitions) == len(set(partitions))
    assert sum(chunk.rows for chunk in chunks) == Transaction.objects.count()
    assert len(chunks) > 1


def test_celery_build_runs_chunks_on_the_worker(celery_worker):
    generate(3_000)

    job = start_feature_build(batch_size=800)

    wait_for(
        lambda: Job.objects.get(pk=job.pk).status in {"succeeded", "failed"},
        120,
        "the feature build job did not finish",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress_done == job.progress_total == Transaction.objects.count()
    assert len(job.result["chunks"]) == job.result["chunks_planned"] > 1
    assert feature_count_matches_live_transactions()


def test_selected_transactions_are_built_as_a_job(celery_worker):
    generate(300)
    chosen = list(Transaction.objects.values_list("pk", flat=True)[:25])

    job = start_selected_feature_build(chosen)

    wait_for(
        lambda: (
            Job.objects.get(pk=job.pk).status != JobStatus.QUEUED
            and Job.objects.get(pk=job.pk).finished_at is not None
        ),
        60,
        "the job did not finish",
    )
    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress_done == job.progress_total == 25
    assert set(FeatureVector.objects.values_list("txn_id", flat=True)) >= set(chosen)


def test_a_build_that_cannot_start_fails_its_job(celery_worker):
    job = Job.objects.create(
        kind=Job.Kind.FEATURE_BUILD,
        params={"since": "last tuesday", "until": None, "batch_size": 10},
    )

    build_features_task.delay(job.pk)

    wait_for(
        lambda: Job.objects.get(pk=job.pk).status == JobStatus.FAILED,
        60,
        "the job was not marked failed",
    )
    assert (
        "Invalid isoformat string: 'last tuesday'" in Job.objects.get(pk=job.pk).error
    )


@pytest.mark.django_db
def test_a_second_build_is_refused_while_one_is_active():
    first = start_feature_build()

    with pytest.raises(JobConflict, match=f"#{first.pk}"):
        start_feature_build()


def start_worker_process(extra_env):
    """A real ``celery worker`` in its own process group, on the test database."""
    environ = {
        **os.environ,
        "DATABASE_URL": env.database_url(connection.settings_dict),
        **extra_env,
    }
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "finance_project",
            "worker",
            "--pool=prefork",
            "--concurrency=1",
            "--loglevel=WARNING",
            "--without-gossip",
            "--without-mingle",
        ],
        env=environ,
        start_new_session=True,
    )


@pytest.mark.slow
def test_a_build_survives_its_worker_being_killed(committed_db):
    generate(40_000, months=12)
    celery_app.control.purge()
    # Redis hands an unacknowledged task to another worker once this many
    # seconds have passed.
    worker_env = {"CELERY_VISIBILITY_TIMEOUT": "3"}
    worker = start_worker_process(worker_env)
    try:
        job = start_feature_build(batch_size=4_000)
        wait_for(
            lambda: Job.objects.get(pk=job.pk).result.get("chunks"),
            120,
            "no chunk finished before the worker was to be killed",
        )
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        killed_at = Job.objects.get(pk=job.pk)
        assert killed_at.status == JobStatus.RUNNING
        assert killed_at.progress_done < killed_at.progress_total

        time.sleep(4)
        worker = start_worker_process(worker_env)
        wait_for(
            lambda: Job.objects.get(pk=job.pk).status != JobStatus.RUNNING,
            180,
            "the build did not finish after the worker restarted",
        )
    finally:
        os.killpg(worker.pid, signal.SIGTERM)
        worker.wait(timeout=30)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED, job.error
    assert job.progress_done == job.progress_total == Transaction.objects.count()
    assert len(job.result["chunks"]) == job.result["chunks_planned"]
    assert feature_count_matches_live_transactions()
    assert build.pending_transaction_ids() == []
