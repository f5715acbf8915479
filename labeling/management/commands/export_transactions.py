"""Export transactions and their labels to a CSV file, streaming.

The columns are those of ``labeling.exporting.HEADER``; the file imports
back with ``import_transactions`` without creating duplicates.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from labeling.exporting import transactions_for_export, write_csv


def _iso_date(text):
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"Expected a date like 2025-12-31, not {text!r}.") from None


class Command(BaseCommand):
    help = (
        "Write live transactions with their label, label source and labeler to "
        "a CSV file, oldest first. Rows stream from a server-side cursor, so "
        "memory stays flat however many there are."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--output", required=True, help="CSV file to write ('-' for stdout)."
        )
        parser.add_argument(
            "--since", type=_iso_date, help="First posting date, inclusive."
        )
        parser.add_argument(
            "--until", type=_iso_date, help="Last posting date, inclusive."
        )
        parser.add_argument("--account", help="Only this account.")

    def handle(self, *args, **options):
        queryset = transactions_for_export(
            options["since"], options["until"], options["account"]
        )
        if options["output"] == "-":
            write_csv(queryset, self.stdout)
            return
        try:
            with open(options["output"], "w", encoding="utf-8", newline="") as out:
                count = write_csv(queryset, out)
        except OSError as error:
            raise CommandError(f"Cannot write {options['output']}: {error}") from None
        self.stdout.write(f"Wrote {count} transactions to {options['output']}.")
