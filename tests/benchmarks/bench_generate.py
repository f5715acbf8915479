"""Benchmark generating and loading synthetic transactions, end to end.

Each run calls the ``generate_transactions`` command (generation, COPY into
staging, insert of transactions and labels) on empty tables and reports its
wall-clock time; the median of the runs is printed last.

By default the runs happen in a scratch database created next to the
configured one (``<name>_bench``, migrated first and dropped afterwards), so
the configured database is left untouched. ``--in-place`` runs against the
configured database instead and TRUNCATEs ``transactions``, its labels, the
label history and every table referencing them before each run.

``--generate-only`` times the pure-Python generation and needs no database.

Run it as a script, not through pytest::

    python tests/benchmarks/bench_generate.py --runs 3 --count 1000000
"""

import argparse
import os
import statistics
import sys
import time
from io import StringIO
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_TRUNCATE = (
    "TRUNCATE transactions, transaction_labels, transaction_label_history "
    "RESTART IDENTITY CASCADE"
)


def main(argv=None):
    args = _parse(argv)
    print(
        f"{args.count:,} transactions, {args.months} months, label fraction "
        f"{args.label_fraction}, seed {args.seed}, {args.runs} run(s)"
    )
    bench = _bench_generation if args.generate_only else _bench_load
    timings = bench(args)
    print(f"median: {statistics.median(timings):.2f}s")


def _parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--label-fraction", type=float, default=0.3)
    parser.add_argument(
        "--in-place",
        action="store_true",
        help="Use the configured database itself; its transactions are deleted.",
    )
    parser.add_argument(
        "--generate-only",
        action="store_true",
        help="Time the pure-Python generation only, without a database.",
    )
    return parser.parse_args(argv)


def _bench_generation(args):
    from labeling.synthetic.generate import GenerationParams, generate

    params = GenerationParams(
        count=args.count,
        months=args.months,
        seed=args.seed,
        label_fraction=args.label_fraction,
    )
    timings = []
    for run in range(1, args.runs + 1):
        started = time.perf_counter()
        produced = sum(1 for _ in generate(params))
        timings.append(time.perf_counter() - started)
        _report(run, timings[-1], produced)
    return timings


def _bench_load(args):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finance_project.settings")
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    configured_name = connection.settings_dict["NAME"]
    if not args.in_place:
        connection.settings_dict["TEST"]["NAME"] = f"{configured_name}_bench"
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
    print(f"database: {connection.settings_dict['NAME']}")
    timings = []
    try:
        for run in range(1, args.runs + 1):
            with connection.cursor() as cursor:
                cursor.execute(_TRUNCATE)
            started = time.perf_counter()
            call_command(
                "generate_transactions",
                count=args.count,
                months=args.months,
                seed=args.seed,
                label_fraction=args.label_fraction,
                stdout=StringIO(),
            )
            timings.append(time.perf_counter() - started)
            with connection.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM transactions")
                (loaded,) = cursor.fetchone()
            _report(run, timings[-1], loaded)
    finally:
        if not args.in_place:
            connection.creation.destroy_test_db(configured_name, verbosity=0)
    return timings


def _report(run, seconds, rows):
    print(f"run {run}: {seconds:.2f}s  {rows:,} rows  {rows / seconds:,.0f} rows/s")


if __name__ == "__main__":
    main()
