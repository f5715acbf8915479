"""The evaluate command, run as a user would, on the public sample."""

import csv
import json
from pathlib import Path

import psycopg
import pytest
from django.db import connection

from finance_project.env import database_url
from labeling.models import Transaction
from tests.manage_process import run_manage

SAMPLE = Path(__file__).parent / "files" / "personal_transactions_sample.csv"

# The command works in a database of its own; this test's transaction only
# shows that the configured one is left as it was.
pytestmark = pytest.mark.django_db


def evaluate(*args):
    return run_manage("evaluate", *args, timeout=300)


def scratch_databases():
    """Databases the command would have created next to the test database."""
    prefix = f"{connection.settings_dict['NAME']}_evaluate"
    with psycopg.connect(database_url(connection.settings_dict)) as conn:
        rows = conn.execute("SELECT datname FROM pg_database").fetchall()
    return {name for (name,) in rows if name.startswith(prefix)}


def test_backtest_on_the_public_sample_prints_json_and_leaves_no_trace(make_txn):
    make_txn()

    result = evaluate("--csv", str(SAMPLE), "--cutoff", "2019-04-01", "--json")

    assert result.returncode == 0, result.stderr
    figures = json.loads(result.stdout)
    assert set(figures) == {
        "accuracy",
        "macro_f1",
        "coverage_at_95",
        "precision_at_95",
        "n_train",
        "n_test",
    }
    # 808 rows from 2018-01-01 to 2019-09-30; 581 before April 2019.
    assert figures["n_train"] == 581
    assert figures["n_test"] == 227
    assert figures["accuracy"] > 0.9
    assert figures["macro_f1"] > 0.8
    assert figures["coverage_at_95"] > 0.5
    assert figures["precision_at_95"] > 0.95
    assert scratch_databases() == set()
    assert Transaction.objects.count() == 1


def test_monthly_replay_retrains_after_each_revealed_month():
    result = evaluate(
        "--csv", str(SAMPLE), "--cutoff", "2019-07-15", "--replay", "monthly"
    )

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    periods = [line for line in lines if " to " in line and "trained on" in line]
    assert [line.split(":")[0] for line in periods] == [
        "2019-07-15 to 2019-08-01",
        "2019-08-01 to 2019-09-01",
        "2019-09-01 to 2019-10-01",
    ]
    trained = [int(line.split("trained on ")[1].split(",")[0]) for line in periods]
    assert trained[0] < trained[1] < trained[2]
    assert any(line.startswith("accuracy") for line in lines)


def test_a_file_without_the_needed_columns_is_refused(tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("date,memo,amount\n2024-01-01,Coffee,-3.00\n")

    result = evaluate("--csv", str(path), "--cutoff", "2024-01-01")

    assert result.returncode != 0
    assert "lacks the column(s) description, category" in result.stderr


def test_a_windows_1252_semicolon_export_reads_as_the_same_rows(tmp_path):
    # The same sample as a European spreadsheet saves it: Windows-1252 text,
    # semicolons, decimal commas and a column of notes the evaluation ignores.
    lines = SAMPLE.read_text(encoding="utf-8").splitlines()
    rows = [next(csv.reader([line])) for line in lines]
    path = tmp_path / "export.csv"
    with path.open("w", encoding="cp1252", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow([*rows[0], "Notiz"])
        amount = rows[0].index("amount")
        for row in rows[1:]:
            row[amount] = row[amount].replace(".", ",")
            writer.writerow([*row, "Überweisung"])

    original = evaluate("--csv", str(SAMPLE), "--cutoff", "2019-04-01", "--json")
    exported = evaluate("--csv", str(path), "--cutoff", "2019-04-01", "--json")

    assert exported.returncode == 0, exported.stderr
    assert json.loads(exported.stdout) == json.loads(original.stdout)
