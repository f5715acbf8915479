"""Export the training view to a CSV or parquet file.

    manage.py export_training_data --until 2025-10-01 --output train.parquet
    manage.py export_training_data --format csv --output all.csv

Rows come from the dbt model ``fct_training_view`` (build it with
``manage.py run_dbt``): features, label, label source, sample weight and
month of every labeled live transaction, those with ``ts_month`` before
``--until`` only when it is given, ordered by month and transaction. They are
read through a server-side cursor and written batch by batch, so memory stays
flat however many rows there are. The file appears only once complete.

In CSV, ``tokens`` is written space-separated (tokens never contain spaces);
parquet keeps it a list of strings, and amounts as decimal(12, 2).
"""

import csv
import os
import time
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
from django.core.management.base import BaseCommand, CommandError
from django.db import connection, transaction

from mlcore.dbt import SCHEMA

VIEW = f"{SCHEMA}.fct_training_view"

# The exported columns, in order, with their parquet types.
COLUMNS = [
    ("txn_id", pa.int64()),
    ("ts_month", pa.date32()),
    ("posted_on", pa.date32()),
    ("account", pa.string()),
    ("merchant", pa.string()),
    ("tokens", pa.list_(pa.string())),
    ("amount", pa.decimal128(12, 2)),
    ("abs_amount", pa.decimal128(12, 2)),
    ("log_amount", pa.float64()),
    ("is_credit", pa.bool_()),
    ("is_round_amount", pa.bool_()),
    ("dow", pa.int16()),
    ("is_weekend", pa.bool_()),
    ("day_of_month", pa.int16()),
    ("month", pa.int16()),
    ("is_subscription", pa.bool_()),
    ("days_since_prev_merchant", pa.int32()),
    ("merchant_prior_count", pa.int32()),
    ("amount_deviation", pa.float64()),
    ("feature_version", pa.int32()),
    ("label", pa.string()),
    ("label_source", pa.string()),
    ("sample_weight", pa.float64()),
]
SCHEMA_ARROW = pa.schema(COLUMNS)
FORMATS = ("csv", "parquet")
DEFAULT_BATCH_SIZE = 10_000


def _until(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--until must be a date like 2025-10-01, not {text!r}."
        ) from None


class Command(BaseCommand):
    help = "Export the training view (features, label, weight) to CSV or parquet."

    def add_arguments(self, parser):
        parser.add_argument(
            "--until",
            help="export rows with ts_month before this date, YYYY-MM-DD "
            "(default: every row)",
        )
        parser.add_argument(
            "--format",
            help="csv or parquet (default: from the output file's extension)",
        )
        parser.add_argument("--output", required=True, help="file to write")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=DEFAULT_BATCH_SIZE,
            help="rows fetched and written at a time (default %(default)s)",
        )

    def handle(self, *args, **options):
        started = time.monotonic()
        until = _until(options["until"]) if options["until"] else None
        output = Path(options["output"])
        file_format = _format(options["format"], output)
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        if not output.parent.is_dir():
            raise CommandError(f"Folder {output.parent} does not exist.")

        # Written next to the target and renamed at the end, so a failed
        # export never leaves a truncated file where a good one is expected.
        partial = output.with_name(output.name + ".partial")
        try:
            rows = self._export(until, file_format, partial, options["batch_size"])
            os.replace(partial, output)
        finally:
            partial.unlink(missing_ok=True)

        window = f"ts_month < {until}" if until else "all months"
        self.stdout.write(
            self.style.SUCCESS(
                f"Exported {rows:,} rows ({window}) to {output} as {file_format} "
                f"in {time.monotonic() - started:.1f}s"
            )
        )

    def _export(self, until, file_format, path, batch_size):
        names = [name for name, _ in COLUMNS]
        sql = f"SELECT {', '.join(names)} FROM {VIEW}"
        params = []
        if until:
            sql += " WHERE ts_month < %s"
            params.append(until)
        sql += " ORDER BY ts_month, txn_id"

        writer = _CsvWriter(path) if file_format == "csv" else _ParquetWriter(path)
        rows = 0
        # A server-side cursor lives in a transaction; it hands rows over one
        # batch at a time instead of all at once.
        with transaction.atomic():
            _check_view_exists()
            with writer, connection.chunked_cursor() as cursor:
                cursor.execute(sql, params)
                while batch := cursor.fetchmany(batch_size):
                    writer.write(batch)
                    rows += len(batch)
        return rows


def _format(name, output):
    if name is None:
        name = output.suffix.lstrip(".").lower()
        if name not in FORMATS:
            raise CommandError(
                f"Cannot tell the format from {output.name!r}; pass --format "
                "csv or --format parquet."
            )
    if name not in FORMATS:
        raise CommandError(f"Unknown format {name!r}; use csv or parquet.")
    return name


def _check_view_exists():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [VIEW])
        if cursor.fetchone()[0] is None:
            raise CommandError(
                f"The training view {VIEW} does not exist; run "
                "`python manage.py run_dbt` first."
            )


class _CsvWriter:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.file = open(self.path, "w", newline="", encoding="utf-8")
        self.csv = csv.writer(self.file)
        self.csv.writerow([name for name, _ in COLUMNS])
        return self

    def write(self, rows):
        tokens = _index("tokens")
        for row in rows:
            row = list(row)
            row[tokens] = " ".join(row[tokens] or ())
            self.csv.writerow(row)

    def __exit__(self, *exc_info):
        self.file.close()


class _ParquetWriter:
    def __init__(self, path):
        self.path = path

    def __enter__(self):
        self.writer = pq.ParquetWriter(self.path, SCHEMA_ARROW)
        return self

    def write(self, rows):
        columns = list(zip(*rows, strict=True))
        arrays = [
            pa.array(values, type=arrow_type)
            for values, (_, arrow_type) in zip(columns, COLUMNS, strict=True)
        ]
        self.writer.write_batch(pa.record_batch(arrays, schema=SCHEMA_ARROW))

    def __exit__(self, *exc_info):
        self.writer.close()


def _index(name):
    return next(i for i, (column, _) in enumerate(COLUMNS) if column == name)
