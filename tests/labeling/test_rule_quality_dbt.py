"""fct_rule_quality, built by the real dbt, against the figures Django shows.

Like tests/mlcore/test_dbt.py, the module shares one build over committed
generated data, read back on connections of its own, and removes it all at
the end.
"""

from io import StringIO
from types import SimpleNamespace

import psycopg
import pytest
from django.core.management import call_command
from django.db import connection

from labeling import rule_runs
from labeling.labels import set_label
from labeling.models import Rule, RuleMatch
from mlcore import dbt

pytestmark = pytest.mark.django_db

COLUMNS = (
    "rule_id, rule_name, coverage, human_labeled, human_agreed, precision, "
    "rule_label_count, run_count, is_measured"
)


def quality():
    with psycopg.connect(dbt.database_url(), autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT {COLUMNS} FROM {dbt.SCHEMA}.fct_rule_quality"
        ).fetchall()
    return {row[0]: row for row in rows}


@pytest.fixture(scope="module")
def built(django_db_setup, django_db_blocker):
    """Demo data with its measured rules, one applied and one edited since,
    and a person disagreeing with the sloppy rule once more."""
    with django_db_blocker.unblock():
        call_command(
            "generate_transactions", count=3_000, months=6, seed=8, stdout=StringIO()
        )
        sloppy = Rule.objects.get(name="Anything with credit is income")
        txn_id = (
            RuleMatch.objects.filter(rule=sloppy)
            .exclude(txn__label__source="human")
            .values_list("txn_id", flat=True)
            .first()
        )
        set_label(txn_id, "Loan & Card Payments", "human")
        rule_runs.run_now([Rule.objects.get(name="Coffee shops")], trigger="command")
        edited = Rule.objects.get(name="Streaming services")
        edited.pattern = "netflix|spotify"
        edited.save()

        out = StringIO()
        call_command("run_dbt", stdout=out)
        try:
            yield SimpleNamespace(output=out.getvalue(), edited=edited.pk)
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {dbt.SCHEMA} CASCADE")
                cursor.execute(
                    "TRUNCATE transactions, transaction_labels, "
                    "transaction_label_history, ml_features, jobs, label_rules "
                    "CASCADE"
                )


def test_the_build_and_its_tests_pass(built):
    assert "dbt build succeeded" in built.output
    assert "fct_rule_quality: success" in built.output


def test_one_row_per_rule_with_the_figures_django_shows(built):
    rows = quality()
    rules = rule_runs.with_figures(Rule.objects.all())

    assert set(rows) == {rule.pk for rule in rules}
    for rule in rules:
        _, name, coverage, checked, agreed, precision, _, _, measured = rows[rule.pk]
        assert name == rule.name
        assert (coverage, checked, agreed) == (rule.coverage, rule.checked, rule.agreed)
        expected = rule_runs.precision(rule)
        assert (precision is None) == (expected is None)
        if expected is not None:
            assert float(precision) == pytest.approx(expected)
        assert measured == rule_runs.measured(rule)


def test_the_sloppy_rule_is_the_imprecise_one(built):
    rows = {row[1]: row for row in quality().values()}

    sloppy = rows["Anything with credit is income"]
    assert sloppy[3] > 0 and float(sloppy[5]) < 0.9
    assert float(rows["Coffee shops"][5]) == 1.0


def test_applied_and_edited_rules(built):
    rows = {row[1]: row for row in quality().values()}

    coffee = rows["Coffee shops"]
    # Generated rule labels plus what the run added: every unlabeled match.
    assert coffee[6] > 0
    assert coffee[7] == 2  # the generator's dry run and the real one
    edited = quality()[built.edited]
    assert edited[2] == 0 and edited[8] is False
