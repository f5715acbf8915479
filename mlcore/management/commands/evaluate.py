"""Backtest the pipeline on a labeled CSV, in a scratch database.

    manage.py evaluate --csv FILE --cutoff 2019-04-01
    manage.py evaluate --csv FILE --cutoff 2019-04-01 --replay monthly --json

The file needs ``date, description, amount, category`` columns (``account``
and ``merchant`` are optional). It is imported into a new database next to
the configured one, which is dropped at the end, so the configured
database is never read or written; background tasks the import would queue
run in this process instead. See ``mlcore.backtest`` for the procedure.
"""

import json
import os
from datetime import date
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from finance_project.celery import app as celery_app
from mlcore import backtest
from mlcore.scratch import scratch_database


def cutoff_date(value):
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a date like 2019-04-01") from None


class Command(BaseCommand):
    help = "Train on the rows before a cutoff and score the rows from it on."

    def add_arguments(self, parser):
        parser.add_argument("--csv", required=True, type=Path, help="labeled CSV")
        parser.add_argument(
            "--cutoff",
            required=True,
            type=cutoff_date,
            help="first day to predict, YYYY-MM-DD; earlier rows are training",
        )
        parser.add_argument(
            "--replay",
            choices=["monthly"],
            help="predict month by month, revealing each month's labels and "
            "retraining before the next",
        )
        parser.add_argument(
            "--json",
            action="store_true",
            help="print the figures as one JSON object",
        )
        parser.add_argument(
            "--keep", action="store_true", help="keep the scratch database"
        )

    def handle(self, *args, **options):
        path = options["csv"]
        if not path.is_file():
            raise CommandError(f"{path} does not exist or is not a file.")
        quiet = options["json"] or options["verbosity"] == 0
        log = (lambda line: None) if quiet else self.stdout.write

        eager = celery_app.conf.task_always_eager
        celery_app.conf.task_always_eager = True
        try:
            with scratch_database(f"evaluate_{os.getpid()}", keep=options["keep"]):
                result = backtest.run(
                    path, options["cutoff"], replay=options["replay"], log=log
                )
        except backtest.BacktestError as exc:
            raise CommandError(str(exc)) from None
        finally:
            celery_app.conf.task_always_eager = eager

        if options["json"]:
            self.stdout.write(json.dumps(result.as_dict()))
        else:
            self.stdout.write(backtest.describe(result))
