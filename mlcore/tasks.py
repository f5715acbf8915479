"""Celery tasks of the ML core: thin wrappers around plain functions."""

import logging

from celery import shared_task

from mlcore import jobs

logger = logging.getLogger(__name__)


@shared_task
def fail_stale_jobs_task():
    failed = jobs.fail_stale_jobs()
    if failed:
        logger.warning("Marked stale jobs as failed", extra={"count": failed})
    return failed
