"""Applying rules: precedence, conflicts, idempotence, dry runs, figures,
the command, the task, and a rule run racing a human label."""

import threading
import time
from decimal import Decimal
from io import StringIO

import psycopg
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from labeling import rule_runs
from labeling.labels import set_label
from labeling.models import LabelHistory, Rule, RuleMatch, RuleRun, TransactionLabel
from labeling.tasks import apply_rules_task, start_rule_runs
from mlcore import dbt

FUEL = "SHELL OIL 5744 OAKLAND CA"
REFUND = "POS CREDIT VISA RETURN SHELL OIL"


def make_rule(name="Fuel", pattern="shell", category="Transportation", **fields):
    return Rule.objects.create(
        name=name, pattern=pattern, category_id=category, **fields
    )


def run(rules, dry_run=False, **kwargs):
    runs = rule_runs.run_now(rules, trigger="command", dry_run=dry_run, **kwargs)
    return runs[0] if len(runs) == 1 else runs


def label_of(txn):
    label = TransactionLabel.objects.filter(txn_id=txn.pk).first()
    return label and (label.label_id, label.source, label.rule_id)


@pytest.fixture
def fuel(make_txn):
    return [make_txn(description=FUEL, amount=Decimal("-40.00")) for _ in range(4)]


# Precedence --------------------------------------------------------------------


@pytest.mark.django_db
def test_a_run_writes_rule_labels_with_the_rule_id_and_history(fuel):
    rule = make_rule()

    result = run([rule])

    assert {label_of(t) for t in fuel} == {("Transportation", "rule", rule.pk)}
    assert (result.matched, result.labeled, result.status) == (4, 4, "succeeded")
    history = LabelHistory.objects.filter(txn_id__in=[t.pk for t in fuel])
    assert {(h.operation, h.rule_id) for h in history} == {("insert", rule.pk)}


@pytest.mark.django_db
def test_human_labels_are_never_replaced_and_are_counted(fuel):
    set_label(fuel[0].pk, "Food & Dining", "human")
    rule = make_rule(may_override_import=True)

    result = run([rule])

    assert label_of(fuel[0]) == ("Food & Dining", "human", None)
    assert result.skipped_higher_source == 1
    assert result.labeled == 3


@pytest.mark.django_db
def test_import_labels_are_replaced_only_when_the_rule_says_so(fuel):
    set_label(fuel[0].pk, "Shopping", "import")
    careful = make_rule()

    assert run([careful]).skipped_import == 1
    assert label_of(fuel[0]) == ("Shopping", "import", None)

    careful.may_override_import = True
    careful.save()
    assert run([careful]).labeled == 1
    assert label_of(fuel[0]) == ("Transportation", "rule", careful.pk)


@pytest.mark.django_db
def test_conflicts_are_resolved_by_priority_and_counted(make_txn):
    refund = make_txn(description=REFUND, amount=Decimal("40.00"))
    plain = make_txn(description=FUEL, amount=Decimal("-40.00"))
    fuel = make_rule(priority=50)
    credit = make_rule("Credit", pattern="credit", category="Income", priority=10)

    fuel_run, credit_run = run([fuel, credit])

    assert label_of(refund) == ("Transportation", "rule", fuel.pk)
    assert label_of(plain) == ("Transportation", "rule", fuel.pk)
    assert (fuel_run.conflicts, fuel_run.overruled) == (1, 0)
    assert (credit_run.conflicts, credit_run.overruled, credit_run.labeled) == (
        1,
        1,
        0,
    )
    # Applying the loser alone changes nothing: the winner is still enabled.
    assert run([credit]).labeled == 0
    assert label_of(refund) == ("Transportation", "rule", fuel.pk)


@pytest.mark.django_db
def test_reapplying_writes_nothing_new(fuel):
    rule = make_rule()
    run([rule])
    history = LabelHistory.objects.count()

    again = run([rule])

    assert (again.labeled, again.unchanged) == (0, 4)
    assert LabelHistory.objects.count() == history


@pytest.mark.django_db
def test_applying_a_disabled_rule_is_refused_but_a_dry_run_works(fuel):
    rule = make_rule(enabled=False)

    with pytest.raises(rule_runs.RuleRunError):
        run([rule])
    assert run([rule], dry_run=True).matched == 4


@pytest.mark.django_db
def test_a_run_over_given_transactions_leaves_the_others(fuel):
    rule = make_rule()

    result = run([rule], txn_ids=[fuel[0].pk])

    assert result.examined == 1
    assert label_of(fuel[0]) is not None
    assert label_of(fuel[1]) is None


# Dry runs and figures ----------------------------------------------------------


@pytest.mark.django_db
def test_a_dry_run_writes_no_label_and_shows_a_sample(fuel, make_txn):
    set_label(fuel[0].pk, "Shopping", "rule")
    rule = make_rule()

    result = run([rule], dry_run=True)

    assert result.dry_run and result.labeled == 4
    assert TransactionLabel.objects.filter(rule_id=rule.pk).count() == 0
    assert result.sample[0] == {
        "txn": fuel[0].pk,
        "description": FUEL,
        "label": "Shopping",
        "source": "rule",
        "new_label": "Transportation",
    }
    assert len(result.sample) == 4


@pytest.mark.django_db
def test_figures_measure_precision_against_human_labels(fuel, settings):
    settings.RULE_PRECISION_FLOOR = 0.9
    set_label(fuel[0].pk, "Transportation", "human")
    set_label(fuel[1].pk, "Food & Dining", "human")
    set_label(fuel[2].pk, "Transportation", "import")
    rule = make_rule()
    unmeasured = rule_runs.with_figures(Rule.objects.filter(pk=rule.pk)).get()
    assert not rule_runs.measured(unmeasured)

    run([rule], dry_run=True)

    figures = rule_runs.with_figures(Rule.objects.filter(pk=rule.pk)).get()
    assert (figures.coverage, figures.checked, figures.agreed) == (4, 2, 1)
    assert rule_runs.precision(figures) == 0.5
    assert rule_runs.below_floor(figures)
    assert rule_runs.measured(figures)
    settings.RULE_PRECISION_FLOOR = 0.4
    assert not rule_runs.below_floor(figures)


@pytest.mark.django_db
def test_figures_of_all_rules_take_one_query(fuel, django_assert_num_queries):
    rules = [make_rule(f"Fuel {n}") for n in range(5)]
    run(rules, dry_run=True)

    with django_assert_num_queries(1):
        listed = list(rule_runs.with_figures(Rule.objects.all()))

    assert [r.coverage for r in listed] == [4] * 5


@pytest.mark.django_db
def test_soft_deleted_transactions_leave_the_figures(fuel):
    rule = make_rule()
    run([rule], dry_run=True)
    fuel[0].deleted_at = fuel[0].created_at
    fuel[0].save()

    figures = rule_runs.with_figures(Rule.objects.filter(pk=rule.pk)).get()
    assert figures.coverage == 3
    assert RuleMatch.objects.filter(rule=rule).count() == 4


# The command ---------------------------------------------------------------------


@pytest.mark.django_db
def test_command_dry_run_prints_the_sample(fuel):
    rule = make_rule()
    out = StringIO()

    call_command("apply_rules", "--dry-run", "--rule", str(rule.pk), stdout=out)

    assert "would label 4" in out.getvalue()
    assert "unlabeled → Transportation" in out.getvalue()
    assert "nothing was written" in out.getvalue()
    assert not TransactionLabel.objects.exists()
    assert RuleRun.objects.get().trigger == "command"


@pytest.mark.django_db
def test_command_applies_every_enabled_rule(fuel):
    make_rule()
    make_rule("Off", pattern="oil", category="Utilities", enabled=False)

    call_command("apply_rules", stdout=StringIO())

    assert {label_of(t)[0] for t in fuel} == {"Transportation"}
    with pytest.raises(CommandError):
        call_command("apply_rules", "--rule", "999999", stdout=StringIO())


# Celery --------------------------------------------------------------------------


def test_a_worker_applies_queued_runs(celery_worker, fuel):
    rule = make_rule()

    # Autocommit: the task is sent at once, as after a commit.
    (queued,) = start_rule_runs([rule])

    deadline = time.monotonic() + 60
    while RuleRun.objects.get(pk=queued.pk).status != "succeeded":
        assert time.monotonic() < deadline, "the worker did not run the rule"
        time.sleep(0.2)
    assert {label_of(t) for t in fuel} == {("Transportation", "rule", rule.pk)}


def test_a_rerun_of_a_finished_task_changes_nothing(committed_db, fuel):
    rule = make_rule()
    (queued,) = rule_runs.create_runs([rule], trigger="user")

    apply_rules_task.run([queued.pk])
    apply_rules_task.run([queued.pk])

    assert RuleRun.objects.get(pk=queued.pk).labeled == 4
    assert LabelHistory.objects.filter(rule_id=rule.pk).count() == 4


# A rule run racing a human label ---------------------------------------------------


def test_a_human_label_committed_during_a_run_wins_and_is_counted(committed_db, fuel):
    """The run reads the batch while a person's label is still uncommitted,
    so it sees the transaction unlabeled; its upsert then waits for the
    person's transaction. Once that commits, the human label stays and the
    run finishes, counting the skip."""
    rule = make_rule()
    target = fuel[0]
    person = psycopg.connect(dbt.database_url())
    person.execute(
        "INSERT INTO transaction_labels (txn_id, label, source) "
        "VALUES (%s, 'Food & Dining', 'human')",
        [target.pk],
    )
    outcome = {}

    def apply():
        try:
            outcome["run"] = run([rule])
        except Exception as exc:  # reported below, in the test's thread
            outcome["error"] = exc
        finally:
            connection.close()

    worker = threading.Thread(target=apply)
    worker.start()
    _wait_until_blocked_by(person)
    person.commit()
    person.close()
    worker.join(timeout=60)

    assert "error" not in outcome, outcome.get("error")
    result = outcome["run"]
    assert result.status == "succeeded"
    assert result.skipped_higher_source == 1
    assert result.labeled == 3
    assert label_of(target) == ("Food & Dining", "human", None)
    assert {label_of(t) for t in fuel[1:]} == {("Transportation", "rule", rule.pk)}


def _wait_until_blocked_by(person):
    """Wait until another session waits for a lock held by ``person``."""
    pid = person.info.backend_pid
    deadline = time.monotonic() + 30
    with psycopg.connect(dbt.database_url(), autocommit=True) as watcher:
        while True:
            blocked = watcher.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE %s = ANY(pg_blocking_pids(pid))",
                [pid],
            ).fetchone()[0]
            if blocked:
                return
            assert time.monotonic() < deadline, "the rule run never reached the label"
            time.sleep(0.05)
