"""Celery tasks of the ML core: thin wrappers around plain functions.

Tasks take ids and plain values, and every one is safe to run twice: the
broker re-delivers a task whose worker died before acknowledging it.
"""

import logging
from datetime import date

from celery import chord, shared_task
from django.db import transaction

from mlcore import dbt, jobs, serving, training
from mlcore.features import build
from mlcore.models import Job

logger = logging.getLogger(__name__)


def start_feature_build(since=None, until=None, batch_size=None, user=None):
    """Queue a feature build of ``[since, until]``; refuse if one is active."""
    params = {
        "since": since.isoformat() if since else None,
        "until": until.isoformat() if until else None,
        "batch_size": batch_size or build.DEFAULT_BATCH_SIZE,
    }
    return jobs.enqueue(
        Job.Kind.FEATURE_BUILD, build_features_task, params, user, exclusive=True
    )


@shared_task
def build_features_task(job_id):
    """Plan a feature build and fan its chunks out to the workers."""
    job = jobs.start(job_id)
    if job is None:
        return
    try:
        since, until = _window(job.params)
        chunks = build.plan_chunks(since, until, job.params["batch_size"])
    except Exception as exc:
        jobs.fail(job_id, f"Could not plan the build: {type(exc).__name__}: {exc}")
        raise

    job.progress_total = sum(chunk.rows for chunk in chunks)
    job.result = {"chunks_planned": len(chunks), "chunks": {}}
    job.save(update_fields=["progress_total", "result"])
    if not chunks:
        jobs.finish(job_id, processed=0)
        return

    header = [
        build_features_chunk_task.si(job_id, index, list(chunk.partitions))
        for index, chunk in enumerate(chunks)
    ]
    callback = finish_feature_build_task.si(job_id).on_error(
        fail_job_task.si(job_id, "A feature build chunk failed; see the worker log.")
    )
    transaction.on_commit(lambda: chord(header)(callback))


@shared_task(bind=True)
def build_features_chunk_task(self, job_id, index, partitions):
    job = Job.objects.get(pk=job_id)
    since, until = _window(job.params)
    result = build.build_window(since, until, partitions)
    redelivered = bool((self.request.delivery_info or {}).get("redelivered"))
    jobs.record_chunk(
        job_id,
        index,
        result.processed,
        f"chunk {index}: {result.processed} transactions, "
        f"{result.written} feature rows written"
        + (" (re-delivered after a lost worker)" if redelivered else ""),
    )
    return {"processed": result.processed, "written": result.written}


@shared_task
def finish_feature_build_task(job_id):
    job = Job.objects.get(pk=job_id)
    jobs.finish(job_id, processed=job.progress_done)


@shared_task
def fail_job_task(job_id, error):
    jobs.fail(job_id, error)


def start_selected_feature_build(txn_ids, user=None):
    """Queue a feature build of chosen transactions as a job."""
    return jobs.enqueue(
        Job.Kind.FEATURE_BUILD,
        build_selected_features_task,
        {"txn_ids": sorted(txn_ids)},
        user,
    )


@shared_task
def build_selected_features_task(job_id):
    def work(job, progress):
        txn_ids = job.params["txn_ids"]
        progress.set_total(len(txn_ids))
        result = build.build_transactions(txn_ids)
        progress.advance(len(txn_ids))
        progress.log(
            f"{result.processed} transactions computed, {result.written} rows "
            f"written, {result.deleted} removed"
        )
        return {"processed": result.processed, "written": result.written}

    jobs.run_job(job_id, work)


@shared_task
def build_transaction_features_task(txn_ids):
    """Build features of new or changed transactions (after an import)."""
    result = build.build_transactions(txn_ids)
    return {"processed": result.processed, "written": result.written}


@shared_task
def fail_stale_jobs_task():
    failed = jobs.fail_stale_jobs()
    if failed:
        logger.warning("Marked stale jobs as failed", extra={"count": failed})
    return failed


def _window(params):
    return tuple(
        date.fromisoformat(params[key]) if params.get(key) else None
        for key in ("since", "until")
    )


def start_dbt_run(select="tag:ml", full_refresh=False, user=None):
    """Queue a dbt build of ``select``; refuse if a dbt run is queued or running."""
    return jobs.enqueue(
        Job.Kind.DBT_RUN,
        run_dbt_task,
        dbt.job_params(select, full_refresh),
        user,
        exclusive=True,
    )


@shared_task
def run_dbt_task(job_id):
    """Run a queued dbt build; the job records each model's outcome."""
    dbt.run_job(job_id)


def start_training(cutoff=None, promote_if_better=True, user=None):
    """Queue a training run; refuse while another training job is active."""
    return jobs.enqueue(
        Job.Kind.TRAINING,
        train_model_task,
        {
            "cutoff": cutoff.isoformat() if cutoff else None,
            "promote_if_better": promote_if_better,
        },
        user,
        exclusive=True,
    )


@shared_task
def train_model_task(job_id):
    """Run a queued training job; the job links to its training run."""

    def work(job, progress):
        progress.set_total(1)
        params = job.params
        cutoff = params.get("cutoff")
        run = training.train(
            cutoff=date.fromisoformat(cutoff) if cutoff else None,
            promote_if_better=params.get("promote_if_better", False),
            user=job.created_by,
            job=job,
            log=progress.log,
        )
        progress.advance()
        return {
            "training_run": run.pk,
            "model_version": run.model_version.pk,
            "accuracy": run.metrics["accuracy"],
            "macro_f1": run.metrics["macro_f1"],
            "promotion": run.metrics.get("promotion"),
        }

    jobs.run_job(job_id, work)


@shared_task
def auto_apply_suggestions_task(limit=10_000):
    """Label unlabeled transactions whose champion suggestion is confident.

    Off unless ``SUGGESTIONS_AUTO_APPLY_THRESHOLD`` is set. Labels are
    written with the ``rule`` source, so a person's label always wins and
    later human labels overwrite them; re-running labels nothing twice.
    """
    return serving.auto_apply(limit=limit)
