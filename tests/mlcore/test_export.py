"""Exporting the training view to CSV and parquet.

The module builds the training view once over generated data (committed,
since dbt runs on its own connections) and removes everything at the end.
"""

import csv
from collections import Counter
from datetime import date
from io import StringIO

import psycopg
import pyarrow.parquet as pq
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection

from mlcore import dbt
from mlcore.features import build
from mlcore.management.commands.export_training_data import COLUMNS

pytestmark = pytest.mark.django_db

NAMES = [name for name, _ in COLUMNS]
UNTIL = date(2026, 9, 1)


def months_in_view():
    """Rows of the training view by month, read as another client would."""
    with psycopg.connect(dbt.database_url(), autocommit=True) as conn:
        rows = conn.execute(
            f"SELECT ts_month, count(*) FROM {dbt.SCHEMA}.fct_training_view "
            "GROUP BY ts_month"
        ).fetchall()
    return dict(rows)


@pytest.fixture(scope="module")
def training_view(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        call_command(
            "generate_transactions",
            count=1_500,
            months=6,
            seed=8,
            label_fraction=0.4,
            stdout=StringIO(),
        )
        build.build_window()
        outcome = dbt.run_dbt(select="+fct_training_view", command="run")
        assert outcome.success, outcome.error
        try:
            yield months_in_view()
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"DROP SCHEMA IF EXISTS {dbt.SCHEMA} CASCADE")
                cursor.execute(
                    "TRUNCATE transactions, transaction_labels, "
                    "transaction_label_history, ml_features CASCADE"
                )


def export(*args):
    out = StringIO()
    call_command("export_training_data", *args, stdout=out)
    return out.getvalue()


def test_csv_has_every_row_and_the_expected_columns(training_view, tmp_path):
    path = tmp_path / "training.csv"

    message = export("--format", "csv", "--output", str(path))

    with path.open(newline="") as file:
        reader = csv.reader(file)
        header = next(reader)
        rows = list(reader)
    total = sum(training_view.values())
    assert header == NAMES
    assert len(rows) == total > 500
    assert f"Exported {total:,} rows (all months)" in message
    by_name = [dict(zip(NAMES, row, strict=True)) for row in rows]
    assert {row["label_source"] for row in by_name} == {"human", "rule", "import"}
    assert {(row["label_source"], row["sample_weight"]) for row in by_name} == {
        ("human", "3.0"),
        ("rule", "1.0"),
        ("import", "0.5"),
    }
    assert all(row["tokens"] and "[" not in row["tokens"] for row in by_name)
    assert [row["ts_month"] for row in by_name] == sorted(
        row["ts_month"] for row in by_name
    )
    assert not list(tmp_path.glob("*.partial"))


def test_parquet_until_keeps_earlier_months_only(training_view, tmp_path):
    path = tmp_path / "train.parquet"

    export("--until", UNTIL.isoformat(), "--output", str(path))

    table = pq.read_table(path)
    expected = {month: n for month, n in training_view.items() if month < UNTIL}
    assert table.column_names == NAMES
    assert table.num_rows == sum(expected.values()) > 0
    assert Counter(table.column("ts_month").to_pylist()) == expected
    assert str(table.schema.field("tokens").type) == "list<element: string>"
    assert str(table.schema.field("amount").type) == "decimal128(12, 2)"
    row = table.slice(0, 1).to_pylist()[0]
    assert isinstance(row["tokens"], list)
    assert row["sample_weight"] in {3.0, 1.0, 0.5}


def test_small_batches_write_the_same_file(training_view, tmp_path):
    whole, batched = tmp_path / "whole.parquet", tmp_path / "batched.parquet"

    export("--output", str(whole))
    export("--output", str(batched), "--batch-size", "97")

    batched_file = pq.ParquetFile(batched)
    assert batched_file.metadata.num_row_groups > 1
    assert batched_file.read().equals(pq.read_table(whole))


def test_a_missing_training_view_says_to_run_dbt(training_view, tmp_path):
    with connection.cursor() as cursor:  # undone when the test's transaction is
        cursor.execute(f"DROP TABLE {dbt.SCHEMA}.fct_training_view")

    with pytest.raises(CommandError, match=r"run `python manage.py run_dbt` first"):
        export("--output", str(tmp_path / "x.csv"))
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--until", "2025-13-01"], "--until must be a date like 2025-10-01"),
        (["--format", "xlsx"], "Unknown format 'xlsx'; use csv or parquet"),
        ([], "Cannot tell the format from 'training.data'"),
    ],
)
def test_bad_arguments_are_explained(args, message, tmp_path):
    with pytest.raises(CommandError, match=message):
        export(*args, "--output", str(tmp_path / "training.data"))
