"""Generate realistic synthetic transactions and golden labels, and load them.

The data is a pure function of the arguments (see
``labeling.synthetic.generate``), and loading is idempotent: running the
command twice with the same arguments inserts nothing the second time. The
demo rules come along, and a dry run measures them, so their coverage and
precision show at once.
"""

import time
from datetime import date

from django.core.management.base import BaseCommand, CommandError

from labeling import rule_runs
from labeling.models import RuleRun
from labeling.synthetic.generate import (
    DEFAULT_END,
    GenerationParams,
    generate,
    household_count,
)
from labeling.synthetic.load import ensure_demo_rules, load


def _iso_date(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(
            f"--end must be a date like 2026-11-30, not {text!r}"
        ) from None


class Command(BaseCommand):
    help = (
        "Generate realistic bank transactions for several households, label a "
        "fraction of them (human, rule and import sources), and load both with "
        "COPY. The same seed and arguments always give byte-identical data; "
        "rows already present (same account and external id) are skipped."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--count",
            type=int,
            default=10_000,
            help="Exact number of transactions to generate (default 10000).",
        )
        parser.add_argument(
            "--months",
            type=int,
            default=12,
            help="Length of the window, in months, ending at --end (default 12).",
        )
        parser.add_argument(
            "--seed", type=int, default=1, help="Random seed (default 1)."
        )
        parser.add_argument(
            "--label-fraction",
            type=float,
            default=0.3,
            help="Share of transactions that get a golden label (default 0.3).",
        )
        parser.add_argument(
            "--end",
            type=_iso_date,
            default=DEFAULT_END,
            help=(
                "Last posting date, YYYY-MM-DD. Defaults to the fixed date "
                f"{DEFAULT_END.isoformat()}, not today, so that the same seed "
                "gives the same data whenever the command runs."
            ),
        )

    def handle(self, *args, **options):
        end = options["end"]
        if isinstance(end, str):  # call_command passes defaults through as given
            end = _iso_date(end)
        try:
            params = GenerationParams(
                count=options["count"],
                months=options["months"],
                seed=options["seed"],
                label_fraction=options["label_fraction"],
                end=end,
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        started = time.perf_counter()
        result = load(generate(params))
        elapsed = time.perf_counter() - started

        self.stdout.write(
            f"Generated {result.staged:,} transactions "
            f"({result.staged_labels:,} labeled) for "
            f"{household_count(params):,} households, "
            f"{params.months} months ending {params.end.isoformat()}, "
            f"seed {params.seed}."
        )
        self.stdout.write(
            self.style.SUCCESS(
                f"Inserted {result.transactions:,} transactions and "
                f"{result.labels:,} labels; {result.skipped:,} transactions were "
                f"already present. {elapsed:.1f}s."
            )
        )

        started = time.perf_counter()
        runs = rule_runs.run_now(
            ensure_demo_rules(), trigger=RuleRun.Trigger.COMMAND, dry_run=True
        )
        self.stdout.write(
            f"Measured {len(runs)} demo rules with a dry run (no labels written) "
            f"in {time.perf_counter() - started:.1f}s."
        )
