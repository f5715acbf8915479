"""Export transactions and their labels as CSV, streaming.

Rows come from a server-side cursor (``QuerySet.iterator``) and leave as CSV
text chunk by chunk, so a million transactions need a chunk's worth of
memory. The columns read back with ``labeling.importing`` unchanged:
``external_id`` keeps re-imports free of duplicates and ``label`` is a
recognised category column.

Text that a spreadsheet would run as a formula (starting with ``=``, ``+``,
``-``, ``@``, a tab or a carriage return) is written with a leading ``'``;
the importer drops it again.
"""

import csv
import logging

from labeling.models import Transaction

logger = logging.getLogger(__name__)

HEADER = (
    "date",
    "description",
    "amount",
    "currency",
    "account",
    "external_id",
    "label",
    "label_source",
    "labeled_by",
)

# Rows per fetch from the server-side cursor: large enough that round trips
# do not dominate, small enough to keep memory flat.
CHUNK_SIZE = 5_000

_VALUES = (
    "posted_on",
    "description",
    "amount",
    "currency",
    "account",
    "external_id",
    "label__label",
    "label__source",
    "label__labeled_by__username",
)
# Positions of free text in a row, guarded against formula injection.
_TEXT_POSITIONS = (1, 4, 5, 6, 8)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def transactions_for_export(since=None, until=None, account=None):
    """Live transactions in date order, optionally limited."""
    queryset = Transaction.objects.order_by("posted_on", "id")
    if since:
        queryset = queryset.filter(posted_on__gte=since)
    if until:
        queryset = queryset.filter(posted_on__lte=until)
    if account:
        queryset = queryset.filter(account=account)
    return queryset


def csv_lines(queryset):
    """Yield the CSV text of ``queryset``: the header, then one line per row."""
    writer = csv.writer(_LineBuffer())
    yield writer.writerow(HEADER)
    rows = queryset.values_list(*_VALUES).iterator(chunk_size=CHUNK_SIZE)
    for row in rows:
        yield writer.writerow(_guarded(row))


def write_csv(queryset, stream):
    """Write ``queryset`` as CSV to a text stream; return the rows written."""
    lines = csv_lines(queryset)
    stream.write(next(lines))
    count = 0
    for line in lines:
        stream.write(line)
        count += 1
    logger.info("Exported %d transactions", count)
    return count


def _guarded(row):
    row = list(row)
    for position in _TEXT_POSITIONS:
        value = row[position]
        if value and value.startswith(_FORMULA_STARTS):
            row[position] = "'" + value
    return row


class _LineBuffer:
    """A file-like object whose ``write`` hands the text back to the caller."""

    def write(self, text):
        return text
