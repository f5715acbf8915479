"""Build point-in-time features into ``ml_features``.

manage.py build_features                 # what is missing or out of date
manage.py build_features --days 180      # the 180 days ending today
manage.py build_features --since 2025-01-01 --until 2025-06-30
manage.py build_features --all
"""

import time
from datetime import date, timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from mlcore.features import build

# Transactions per batch when catching up on pending ones; each batch is one
# database transaction.
PENDING_BATCH_SIZE = 50_000


class Command(BaseCommand):
    help = "Build point-in-time features for transactions."

    def add_arguments(self, parser):
        window = parser.add_mutually_exclusive_group()
        window.add_argument("--days", type=int, help="window ending today")
        window.add_argument("--since", type=date.fromisoformat, help="YYYY-MM-DD")
        window.add_argument("--all", action="store_true", help="every transaction")
        parser.add_argument("--until", type=date.fromisoformat, help="YYYY-MM-DD")
        parser.add_argument(
            "--batch-size",
            type=int,
            default=build.DEFAULT_BATCH_SIZE,
            help="transactions per chunk (default %(default)s)",
        )
        parser.add_argument(
            "--workers",
            type=int,
            default=build.DEFAULT_WORKERS,
            help="chunks built at once, each in its own database transaction "
            "(default %(default)s)",
        )

    def handle(self, *args, **options):
        started = time.monotonic()
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")

        if options["days"] is not None or options["since"] or options["all"]:
            result = self._build_window(options)
        elif options["until"]:
            raise CommandError("--until needs --since.")
        else:
            result = self._build_pending(options["batch_size"])

        self.stdout.write(f"Processed {result.processed:,} transactions")
        self.stdout.write(f"Built {result.written:,} feature vectors")
        if result.deleted:
            self.stdout.write(
                f"Removed {result.deleted:,} feature vectors of deleted transactions"
            )
        self.stdout.write(f"Elapsed {time.monotonic() - started:.1f}s")

    def _build_window(self, options):
        since, until = options["since"], options["until"]
        if options["days"] is not None:
            if options["days"] < 1:
                raise CommandError("--days must be at least 1.")
            until = timezone.localdate()
            since = until - timedelta(days=options["days"] - 1)
        if since and until and since > until:
            raise CommandError(f"--since {since} is after --until {until}.")

        if options["all"]:
            self.stdout.write("Building features for all transactions")
        else:
            self.stdout.write(
                f"Building features for {since} to {until or 'the latest date'}"
            )

        return build.build_in_chunks(
            since,
            until,
            options["batch_size"],
            workers=options["workers"],
            on_progress=self._progress,
        )

    def _build_pending(self, batch_size):
        self.stdout.write("Building features for new and changed transactions")
        pending = build.pending_transaction_ids()
        result = build.BuildResult()
        for start in range(0, len(pending), batch_size):
            batch = pending[start : start + batch_size]
            result += build.build_transactions(batch)
            self._progress(start + len(batch), len(pending))
        return result

    def _progress(self, done, total):
        if not self.stdout.isatty() or not total:
            return
        width = 30
        filled = width * done // total
        bar = "#" * filled + "-" * (width - filled)
        self.stdout.write(f"\r[{bar}] {done:,}/{total:,}", ending="")
        if done >= total:
            self.stdout.write("")
