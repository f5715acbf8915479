"""Import transactions from a CSV, XLSX or JSON bank export.

Prints what was read and done, every bad row with its line or row number,
and exits non-zero when the file has bad rows and ``--valid-only`` was not
given (then nothing is imported). See ``labeling.importing`` for the
formats, the column names recognised and the deduplication rules.
"""

import argparse

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from labeling.importing import (
    FIELDS,
    ImportFileError,
    ImportOptions,
    format_report,
    import_transactions,
    parse_mapping,
)

# Warnings printed at the default verbosity; -v 2 prints them all.
WARNINGS_SHOWN = 20


class Command(BaseCommand):
    help = (
        "Import bank transactions from a CSV (comma, semicolon, tab or pipe), "
        "XLSX or JSON file. Columns are recognised by their usual names; "
        "re-importing the same file adds nothing. A file with bad rows imports "
        "nothing unless --valid-only is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("file", help="Path of the file to import.")
        parser.add_argument(
            "--account",
            default="",
            help="Account of every row (overrides an account column).",
        )
        parser.add_argument(
            "--labels-as",
            choices=["import", "human"],
            default="import",
            help="Source of labels from a category column (default import).",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Read and validate, report what would happen, write nothing.",
        )
        parser.add_argument(
            "--valid-only",
            action="store_true",
            help="Import the valid rows even when some rows are bad.",
        )
        parser.add_argument(
            "--create-categories",
            action="store_true",
            help="Create categories named in the file that do not exist yet.",
        )
        parser.add_argument(
            "--known-accounts",
            action="store_true",
            help="Refuse rows whose account has no transactions yet.",
        )
        parser.add_argument(
            "--date-format",
            default="",
            help="MDY, DMY, YMD or a strptime format such as %%d.%%m.%%Y "
            "(default: detected).",
        )
        parser.add_argument(
            "--map",
            action="append",
            default=[],
            metavar="FIELD=COLUMN",
            help=f"Column of a field, repeatable. Fields: {', '.join(FIELDS)}, "
            "date_format. An empty COLUMN ignores the field.",
        )
        parser.add_argument(
            "--negate-amounts",
            action="store_true",
            help="The file shows money out as positive (many card exports).",
        )
        parser.add_argument(
            "--decimal-comma",
            action=argparse.BooleanOptionalAction,
            default=None,
            help="Amounts use decimal commas, or not (default: when ';' separates "
            "fields).",
        )
        parser.add_argument(
            "--encoding",
            default="",
            help="Text encoding (default: UTF-8, else Windows-1252).",
        )
        parser.add_argument(
            "--user",
            default="",
            help="Username recorded as the labeler and in the label history.",
        )

    def handle(self, *args, **options):
        try:
            import_options = ImportOptions(
                mapping=parse_mapping(options["map"]),
                account=options["account"],
                labels_as=options["labels_as"],
                date_format=options["date_format"],
                create_categories=options["create_categories"],
                require_known_accounts=options["known_accounts"],
                valid_only=options["valid_only"],
                dry_run=options["dry_run"],
                negate_amounts=options["negate_amounts"],
                decimal_comma=options["decimal_comma"],
                encoding=options["encoding"],
                actor=self._user(options["user"]),
            )
        except ValueError as error:
            raise CommandError(str(error)) from None

        try:
            result = import_transactions(options["file"], import_options)
        except FileNotFoundError:
            raise CommandError(f"No such file: {options['file']}") from None
        except ImportFileError as error:
            raise CommandError(str(error)) from None

        # Unknown categories warn on every row; a screenful is enough unless
        # asked for more.
        max_warnings = None if options["verbosity"] > 1 else WARNINGS_SHOWN
        for line in format_report(result, max_warnings=max_warnings):
            self.stdout.write(line)
        if result.has_errors and not options["valid_only"]:
            raise CommandError(
                f"{result.invalid} rows have errors"
                + ("" if options["dry_run"] else "; nothing was imported")
                + ". Fix them, or use --valid-only to import only the valid rows."
            )

    def _user(self, username):
        if not username:
            return None
        try:
            return get_user_model().objects.get_by_natural_key(username)
        except get_user_model().DoesNotExist:
            raise CommandError(f"No user named {username!r}.") from None
