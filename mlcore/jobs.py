"""Record background work in the ``jobs`` table so people can follow it.

``enqueue`` creates a job and sends its Celery task once the surrounding
transaction commits. Inside the task, ``run_job`` moves the job through
queued → running → succeeded/failed and hands the work a ``Progress`` to
report through.
"""

import logging
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from mlcore.models import Job, JobStatus

logger = logging.getLogger(__name__)

# Lines of output kept on the job; enough to see what failed.
LOG_TAIL_LINES = 50


class Progress:
    """Progress and log lines of a running job, saved as they arrive."""

    def __init__(self, job):
        self.job = job

    def set_total(self, total):
        self.job.progress_total = total
        self.job.save(update_fields=["progress_total"])

    def advance(self, count=1):
        self.job.progress_done += count
        self.job.save(update_fields=["progress_done"])

    def log(self, line):
        lines = [*self.job.log_tail.splitlines(), str(line)][-LOG_TAIL_LINES:]
        self.job.log_tail = "\n".join(lines)
        self.job.save(update_fields=["log_tail"])


class JobConflict(Exception):
    """A job of the same kind is already queued or running."""

    def __init__(self, job):
        self.job = job
        super().__init__(f"{job} is already {job.status}; wait for it to finish.")


ACTIVE = [JobStatus.QUEUED, JobStatus.RUNNING]


def create(kind, params=None, user=None, exclusive=False):
    """Create a queued job; with ``exclusive``, refuse with ``JobConflict``
    while another job of the same kind is queued or running."""
    with transaction.atomic():
        if exclusive:
            # Two callers could both see no active job and both create one;
            # a lock per kind makes the check and the insert one step.
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_advisory_xact_lock(hashtext('jobs:' || %s))", [kind]
                )
            active = Job.objects.filter(kind=kind, status__in=ACTIVE).first()
            if active is not None:
                raise JobConflict(active)
        return Job.objects.create(kind=kind, params=params or {}, created_by=user)


def enqueue(kind, task, params=None, user=None, exclusive=False):
    """Create a queued job (see ``create``) and send ``task(job_id)`` after
    commit."""
    job = create(kind, params, user, exclusive)

    def send():
        result = task.delay(job.pk)
        Job.objects.filter(pk=job.pk).update(celery_task_id=result.id)

    transaction.on_commit(send)
    return job


def start(job_id):
    """Mark a job running; return it, or ``None`` if it was already started.

    A task redelivered after its worker died finds its job started and
    leaves the work it dispatched alone.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status != JobStatus.QUEUED:
            logger.info("Job already started", extra={"job_id": job_id})
            return None
        job.status = JobStatus.RUNNING
        job.started_at = timezone.now()
        job.save(update_fields=["status", "started_at"])
        return job


def record_chunk(job_id, chunk, processed, line):
    """Record that one chunk of a job is done.

    Progress is the sum over finished chunks, so a chunk that runs twice
    (redelivered after a worker died) is counted once.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        chunks = job.result.setdefault("chunks", {})
        if str(chunk) in chunks:
            line = f"{line} (chunk {chunk} ran again; counted once)"
        chunks[str(chunk)] = processed
        job.progress_done = sum(chunks.values())
        Progress(job).log(line)
        job.save(update_fields=["result", "progress_done", "log_tail"])


def finish(job_id, **result):
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.status = JobStatus.SUCCEEDED
        job.result = {**job.result, **result}
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "result", "finished_at"])
    return job


def fail(job_id, error):
    Job.objects.filter(pk=job_id).update(
        status=JobStatus.FAILED, error=error, finished_at=timezone.now()
    )


def run_job(job_id, work):
    """Run ``work(job, progress)`` for a job and record the outcome.

    A job that already succeeded is not run again, so a task redelivered
    after its worker died mid-acknowledgement is harmless. Returns the job.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        if job.status == JobStatus.SUCCEEDED:
            logger.info("Job already succeeded; skipping", extra={"job_id": job_id})
            return job
        job.status = JobStatus.RUNNING
        job.started_at = timezone.now()
        job.finished_at = None
        job.error = ""
        job.progress_done = 0
        job.save()

    try:
        result = work(job, Progress(job))
    except Exception as exc:
        job.status = JobStatus.FAILED
        job.error = f"{type(exc).__name__}: {exc}"
        job.finished_at = timezone.now()
        job.save(update_fields=["status", "error", "finished_at"])
        logger.exception("Job failed", extra={"job_id": job_id})
        raise

    job.status = JobStatus.SUCCEEDED
    job.result = result or {}
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "result", "finished_at"])
    return job


def fail_stale_jobs(now=None):
    """Mark jobs that have been running too long as failed; return how many."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.JOB_STALE_AFTER_SECONDS)
    return Job.objects.filter(status=JobStatus.RUNNING, started_at__lt=cutoff).update(
        status=JobStatus.FAILED,
        finished_at=now,
        error="No progress report before the stale-job timeout; the worker was lost.",
    )
