"""Celery tasks of the labeling app: thin wrappers around ``rule_runs``.

Tasks take ids. Running one twice is harmless: finished runs are skipped
and rules write nothing they wrote already.
"""

import logging

from celery import shared_task
from django.db import transaction

from labeling import rule_runs
from labeling.models import Rule, RuleRun

logger = logging.getLogger(__name__)


def start_rule_runs(rules, *, user=None, trigger=RuleRun.Trigger.USER):
    """Record runs of ``rules`` and queue them after the commit."""
    runs = rule_runs.create_runs(rules, trigger=trigger, user=user)
    run_ids = [run.pk for run in runs]
    transaction.on_commit(lambda: apply_rules_task.delay(run_ids))
    return runs


@shared_task
def apply_rules_task(run_ids):
    """Carry out queued rule runs over every live transaction."""
    runs = rule_runs.execute(run_ids)
    return {run.pk: run.labeled for run in runs}


@shared_task
def measure_rule_task(rule_id):
    """Dry-run one rule so that its coverage and precision are current."""
    rule = Rule.objects.filter(pk=rule_id).first()
    if rule is None:
        return None
    (run,) = rule_runs.run_now([rule], trigger=RuleRun.Trigger.USER, dry_run=True)
    return run.pk


@shared_task
def apply_rules_to_new_transactions_task(txn_ids):
    """Apply every enabled rule to transactions just imported or created.

    Queued after their feature build, so rules on the merchant see it.
    """
    rules = list(Rule.objects.filter(enabled=True))
    if not rules or not txn_ids:
        return {}
    runs = rule_runs.run_now(rules, trigger=RuleRun.Trigger.IMPORT, txn_ids=txn_ids)
    return {run.pk: run.labeled for run in runs}
