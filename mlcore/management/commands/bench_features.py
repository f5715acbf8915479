"""Benchmark feature builds on generated data in a scratch database.

    manage.py bench_features --count 1000000 --runs 3

Creates a scratch database next to the configured one, generates
transactions into it, then times a full build and an incremental build of
1,000 new transactions, each ``--runs`` times in a fresh process (so peak
memory is that build's own), then ``dbt build --select tag:ml`` of the
warehouse models on the same data ``--runs`` times, and prints each run and
the median. The scratch database is dropped at the end.
"""

import json
import os
import statistics
import subprocess
import sys
import time

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from finance_project import env
from mlcore import dbt
from mlcore.features import build
from mlcore.scratch import scratch_database

NEW_TRANSACTIONS = 1_000


class Command(BaseCommand):
    help = "Time full and incremental feature builds on generated data."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=1_000_000)
        parser.add_argument("--months", type=int, default=36)
        parser.add_argument("--seed", type=int, default=11)
        parser.add_argument("--runs", type=int, default=3)
        parser.add_argument("--keep", action="store_true", help="keep scratch db")
        parser.add_argument(
            "--child", choices=["full", "incremental"], help=NotImplemented
        )

    def handle(self, *args, **options):
        if options["child"]:
            self._child(options["child"])
            return

        with scratch_database("bench", keep=options["keep"]):
            self._bench(options)

    def _bench(self, options):
        started = time.monotonic()
        call_command(
            "generate_transactions",
            count=options["count"],
            months=options["months"],
            seed=options["seed"],
            label_fraction=0.3,
            stdout=open(os.devnull, "w"),  # noqa: SIM115
        )
        self.stdout.write(
            f"Generated {options['count']:,} transactions over "
            f"{options['months']} months in {time.monotonic() - started:.1f}s"
        )

        full = []
        for _ in range(options["runs"]):
            with connection.cursor() as cursor:
                cursor.execute("TRUNCATE ml_features")
            full.append(self._run_child("full"))
        self._report("full build", full)

        incremental = []
        for _ in range(options["runs"]):
            incremental.append(self._run_child("incremental"))
        self._report(f"incremental build of {NEW_TRANSACTIONS:,}", incremental)

        self._bench_dbt(options["runs"])

    def _bench_dbt(self, runs):
        """Time ``dbt build --select tag:ml``, the way run_dbt runs it."""
        seconds = []
        for number in range(1, runs + 1):
            outcome = dbt.run_dbt(on_line=lambda line: None)
            if not outcome.success:
                raise CommandError(outcome.error)
            seconds.append(outcome.seconds)
            kinds = [node.resource_type for node in outcome.nodes]
            self.stdout.write(
                f"dbt build run {number}: {outcome.seconds:.2f}s, "
                f"{kinds.count('model')} models, {kinds.count('test')} tests"
            )
        self.stdout.write(
            self.style.SUCCESS(
                f"dbt build --select tag:ml: median {statistics.median(seconds):.2f}s"
            )
        )

    def _report(self, name, runs):
        for number, run in enumerate(runs, 1):
            self.stdout.write(
                f"{name} run {number}: {run['seconds']:.2f}s, "
                f"{run['rows'] / run['seconds']:,.0f} transactions/s, "
                f"peak memory {run['peak_mb']:.0f} MB"
            )
        seconds = statistics.median(run["seconds"] for run in runs)
        rows = runs[0]["rows"]
        self.stdout.write(
            self.style.SUCCESS(
                f"{name}: median {seconds:.2f}s, {rows / seconds:,.0f} "
                f"transactions/s, peak memory "
                f"{max(run['peak_mb'] for run in runs):.0f} MB"
            )
        )

    def _run_child(self, mode):
        """Run one build in a fresh process; return its timing and peak RSS."""
        url = env.database_url(connection.settings_dict)
        child = subprocess.Popen(
            [sys.executable, "manage.py", "bench_features", "--child", mode],
            env={**os.environ, "DATABASE_URL": url},
            stdout=subprocess.PIPE,
        )
        output = child.stdout.read()
        _, status, usage = os.wait4(child.pid, 0)
        if status != 0:
            raise RuntimeError(f"benchmark child {mode} failed with status {status}")
        return {**json.loads(output), "peak_mb": usage.ru_maxrss / 1024}

    def _child(self, mode):
        if mode == "full":
            started = time.monotonic()
            result = build.build_in_chunks(workers=build.DEFAULT_WORKERS)
            seconds = time.monotonic() - started
        else:
            new_ids = _insert_new_transactions(NEW_TRANSACTIONS)
            started = time.monotonic()
            result = build.build_transactions(new_ids)
            seconds = time.monotonic() - started
            result.processed = len(new_ids)
            with connection.cursor() as cursor:
                cursor.execute("DELETE FROM transactions WHERE id = ANY(%s)", [new_ids])
        self.stdout.write(json.dumps({"seconds": seconds, "rows": result.processed}))


def _insert_new_transactions(count):
    """Copy random transactions to the day after the latest one, as an import."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO transactions (account, external_id, posted_on, description,
                                      amount, currency)
            SELECT account, 'bench-' || id, (SELECT max(posted_on) + 1
                                             FROM transactions),
                   description, amount, currency
            FROM transactions ORDER BY md5(id::text) LIMIT %s
            RETURNING id
            """,
            [count],
        )
        return [row[0] for row in cursor.fetchall()]
