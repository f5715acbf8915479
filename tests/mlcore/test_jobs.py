"""Job bookkeeping, and tasks run by a real worker over the real broker."""

from datetime import timedelta

import pytest
from django.utils import timezone

from mlcore import jobs
from mlcore.models import Job, JobStatus
from mlcore.tasks import fail_stale_jobs_task

pytestmark = pytest.mark.django_db


def test_run_job_records_success_and_result():
    job = Job.objects.create(kind=Job.Kind.FEATURE_BUILD)

    def work(job, progress):
        progress.set_total(3)
        progress.advance(3)
        progress.log("built 3 rows")
        return {"rows": 3}

    jobs.run_job(job.pk, work)

    job.refresh_from_db()
    assert job.status == JobStatus.SUCCEEDED
    assert (job.progress_done, job.progress_total, job.progress_percent) == (
        3,
        3,
        100.0,
    )
    assert job.result == {"rows": 3}
    assert job.log_tail == "built 3 rows"
    assert job.started_at <= job.finished_at


def test_run_job_records_failure_and_reraises():
    job = Job.objects.create(kind=Job.Kind.TRAINING)

    def work(job, progress):
        raise ValueError("no labeled transactions before 2025-01")

    with pytest.raises(ValueError):
        jobs.run_job(job.pk, work)

    job.refresh_from_db()
    assert job.status == JobStatus.FAILED
    assert job.error == "ValueError: no labeled transactions before 2025-01"


def test_a_succeeded_job_is_not_run_again():
    job = Job.objects.create(kind=Job.Kind.DBT_RUN, status=JobStatus.SUCCEEDED)
    calls = []

    jobs.run_job(job.pk, lambda job, progress: calls.append(job))

    assert calls == []


def test_log_tail_keeps_the_last_lines():
    job = Job.objects.create(kind=Job.Kind.DBT_RUN)
    progress = jobs.Progress(job)

    for number in range(jobs.LOG_TAIL_LINES + 10):
        progress.log(f"line {number}")

    lines = Job.objects.get(pk=job.pk).log_tail.splitlines()
    assert len(lines) == jobs.LOG_TAIL_LINES
    assert lines[-1] == f"line {jobs.LOG_TAIL_LINES + 9}"


def test_worker_fails_stale_jobs_through_the_broker(celery_worker, settings):
    settings.JOB_STALE_AFTER_SECONDS = 60
    stale = Job.objects.create(
        kind=Job.Kind.FEATURE_BUILD,
        status=JobStatus.RUNNING,
        started_at=timezone.now() - timedelta(minutes=5),
    )
    fresh = Job.objects.create(
        kind=Job.Kind.FEATURE_BUILD,
        status=JobStatus.RUNNING,
        started_at=timezone.now(),
    )

    result = fail_stale_jobs_task.delay()

    assert result.get(timeout=30) == 1
    stale.refresh_from_db()
    fresh.refresh_from_db()
    assert stale.status == JobStatus.FAILED
    assert "worker was lost" in stale.error
    assert fresh.status == JobStatus.RUNNING
