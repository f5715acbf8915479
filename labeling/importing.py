"""Import bank transactions from CSV, XLSX and JSON files.

``import_transactions(source, options)`` reads a file, validates every row and
loads the valid ones in one database transaction. The same call with
``dry_run=True`` does everything but the writes and says what would happen.

Reading
-------
- The format is recognised from the content: a ZIP container is XLSX, text
  starting with ``[`` or ``{`` is JSON, anything else is CSV (``,`` ``;``
  tab or ``|``, whichever gives the most recognisable header).
- Text is read as UTF-8 (a byte-order mark is allowed; UTF-16 with a
  byte-order mark too). A file that is not valid UTF-8 is read as
  Windows-1252, the encoding of most US bank exports saved from Excel, and the
  report says so; a file that is neither is refused with the line of the
  first bad byte.
- The header is the first of the top ``HEADER_SCAN_ROWS`` rows that names a
  date, a description and an amount (or debit/credit) column, so bank names,
  account numbers and date ranges above it are skipped. Column names match
  case-insensitively against ``SYNONYMS``; an explicit mapping overrides.
- Rows are numbered as the file shows them: the line of a CSV record, the
  worksheet row of an XLSX, the position of a JSON item.

Deduplication
-------------
Every row gets an ``external_id``: the bank's own id when the file has one,
otherwise a fingerprint (see ``fingerprint``) of the account, date, amount,
whitespace-normalised description and the number of identical rows before
it in the file. Inserting with ``ON CONFLICT (account, external_id) DO
NOTHING`` makes re-importing the same file a no-op, while two identical
coffees on one day stay two transactions.

Loading
-------
Valid rows stream into a temporary table with ``COPY`` while the file is
read, so memory stays flat whatever the file size (JSON files, which are
parsed whole, excepted). Set-based statements then count duplicates, insert
new transactions, and write labels through ``labeling.labels.bulk_set_labels``
so that source precedence and label history apply. A file with any bad row
imports nothing unless ``valid_only`` is set; nothing is ever half-imported.
After commit, the new transactions are queued for feature builds, and then
for the enabled labeling rules (which may match on the merchant the features
find).
"""

import codecs
import csv
import hashlib
import io
import itertools
import json
import logging
import os
import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from functools import partial
from pathlib import Path
from typing import NamedTuple

from celery import chain
from django.conf import settings
from django.db import connection, transaction

from labeling.labels import bulk_set_labels
from labeling.models import Category, LabelSource, Transaction
from labeling.tasks import apply_rules_to_new_transactions_task
from mlcore.tasks import build_transaction_features_task

logger = logging.getLogger(__name__)

# Default of the IMPORT_MAX_BYTES setting: a decade of a busy account's
# statements is a few megabytes, so 50 MB only stops mistakes.
DEFAULT_MAX_BYTES = 50 * 1024 * 1024
# Bank preambles (name, account, period) take a handful of rows; 30 leaves
# room without mistaking data for a header.
HEADER_SCAN_ROWS = 30
# Enough text to see the header and a few dozen rows when picking the
# delimiter.
SNIFF_BYTES = 64 * 1024
# Bytes per read while checking the encoding: large reads, small memory.
DECODE_CHUNK_BYTES = 1024 * 1024
# Rows held back while the file's dates do not yet tell day-first from
# month-first; a few weeks of transactions always do.
DATE_ORDER_SAMPLE_ROWS = 10_000
# Errors and warnings kept in a result: enough to fix a file, few enough for
# one page; the counts stay exact.
MAX_REPORTED_ISSUES = 1_000
# Parsed rows kept for the dry-run preview.
PREVIEW_ROWS = 20
# Labels per bulk_set_labels call: arrays this size bind in milliseconds and
# keep memory flat on large files.
LABEL_BATCH_SIZE = 50_000
# Transactions per feature-build (and rules) task: seconds of work and a
# small message.
FEATURE_TASK_BATCH_SIZE = 20_000
# Distinct date strings remembered; a date column has far fewer.
DATE_CACHE_SIZE = 10_000

# numeric(12, 2)
MAX_AMOUNT = Decimal("9999999999.99")
CENT = Decimal("0.01")

FORMATS = ("csv", "xlsx", "json")
DELIMITERS = (",", ";", "\t", "|")

# What each field means; the keys are the names a mapping uses.
FIELDS = {
    "date": "posting date",
    "description": "the bank's description of the transaction",
    "amount": "signed amount, negative is money out",
    "debit": "money out, when the file splits amounts into two columns",
    "credit": "money in, when the file splits amounts into two columns",
    "direction": "debit/credit indicator that signs an unsigned amount",
    "account": "account name or number",
    "external_id": "the bank's own transaction id",
    "currency": "ISO currency code",
    "category": "category name, written as a label",
}

# Header names per field, most specific first: when a file has several, the
# first listed wins (posting date over transaction date, the bank's original
# text over a cleaned-up description).
SYNONYMS = {
    "date": (
        "posting date",
        "post date",
        "posted date",
        "date posted",
        "posted on",
        "posted",
        "date",
        "transaction date",
        "trans date",
        "txn date",
        "booking date",
        "value date",
        "effective date",
    ),
    "description": (
        "original description",
        "description",
        "transaction description",
        "details",
        "transaction details",
        "narrative",
        "particulars",
        "payee",
        "merchant",
        "merchant name",
        "name",
        "memo",
        "desc",
    ),
    "amount": (
        "amount",
        "transaction amount",
        "amt",
        "net amount",
        "value",
    ),
    "debit": (
        "debit",
        "debits",
        "debit amount",
        "withdrawal",
        "withdrawals",
        "withdrawal amount",
        "money out",
        "paid out",
        "outflow",
    ),
    "credit": (
        "credit",
        "credits",
        "credit amount",
        "deposit",
        "deposits",
        "deposit amount",
        "money in",
        "paid in",
        "inflow",
    ),
    "direction": (
        "credit debit indicator",
        "debit credit indicator",
        "transaction type",
        "debit credit",
        "credit debit",
        "dr cr",
        "cr dr",
    ),
    "account": (
        "account",
        "account name",
        "account number",
        "account no",
        "acct",
        "card no",
        "card number",
    ),
    "external_id": (
        "external id",
        "transaction id",
        "bank id",
        "fitid",
        "id",
        "reference",
        "reference number",
        "reference no",
        "ref",
        "ref no",
        "transaction reference",
        "txn id",
    ),
    "currency": ("currency", "currency code", "iso currency code", "ccy"),
    "category": ("category", "categories", "transaction category", "label"),
}

_DEBIT_WORDS = {"debit", "dr", "d", "withdrawal", "out", "payment", "purchase"}
_CREDIT_WORDS = {"credit", "cr", "c", "deposit", "in", "refund"}

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
_WEEKDAY = r"(?:mon|tue|tues|wed|thu|thur|thurs|fri|sat|sun)[a-z]*,?\s+"
# A time after the date ("2025-12-03T10:15:00", "12/03/2025 10:15 AM") is
# ignored.
_TIME = r"(?:[t ]\d{1,2}:\d{2}.*)?"
_ISO_DATE = re.compile(r"(\d{4})[-/.](\d{1,2})[-/.](\d{1,2})" + _TIME, re.I)
_COMPACT_DATE = re.compile(r"(\d{4})(\d{2})(\d{2})")
_NUMERIC_DATE = re.compile(r"(\d{1,2})[-/.](\d{1,2})[-/.](\d{4}|\d{2})" + _TIME, re.I)
_MONTH_FIRST_DATE = re.compile(
    rf"(?:{_WEEKDAY})?([a-z]{{3,9}})\.?[ -]?(\d{{1,2}})(?:st|nd|rd|th)?,?[ -]+"
    rf"(\d{{4}}|\d{{2}}){_TIME}",
    re.I,
)
_DAY_FIRST_DATE = re.compile(
    rf"(?:{_WEEKDAY})?(\d{{1,2}})(?:st|nd|rd|th)?[ -]([a-z]{{3,9}})\.?,?[ -]+"
    rf"(\d{{4}}|\d{{2}}){_TIME}",
    re.I,
)
DATE_ORDERS = ("MDY", "DMY", "YMD")

# "-$1,234.56", "(12.00)", "12.00-", "1.234,56 EUR", "45.10 CR", "USD 12".
_AMOUNT = re.compile(
    r"""
    (?P<open>\()?\s*
    (?P<sign1>[-+\u2212])?\s*
    (?:[$\u20ac\u00a3\u00a5]|[a-z]{3}(?=[\s\d]))?\s*
    (?P<sign2>[-+\u2212])?\s*
    (?P<number>[\d.,][\d.,'\s]*)
    (?:[$\u20ac\u00a3\u00a5]|\s[a-z]{3}(?=\s|-|\)|$))?\s*
    (?P<sign3>-)?\s*
    (?P<close>\))?\s*
    (?P<crdr>cr|dr)?\.?
    """,
    re.I | re.X,
)
# Most amounts need none of that; they skip straight to Decimal.
_PLAIN_AMOUNT = re.compile(r"-?\d{1,10}(?:\.\d{1,2})?")
_BLANK_AMOUNTS = {"", "-", "--", "\u2013", "\u2014", "n/a"}
# A spreadsheet formula guard: exports prefix such text with "'" (see
# labeling.exporting), and reading drops it again.
_ESCAPED_TEXT = re.compile(r"'(?=[=+\-@\t\r])")


class ImportFileError(Exception):
    """The file as a whole cannot be imported (size, encoding, header...)."""


class RowIssue(NamedTuple):
    row: int
    field: str
    message: str


class ParsedRow(NamedTuple):
    """A valid row, in the column order of the staging table."""

    row: int
    account: str
    external_id: str
    posted_on: date
    description: str
    amount: Decimal
    currency: str
    category: str | None


@dataclass
class ImportOptions:
    """How to read a file and what to do with it.

    ``mapping`` maps field names (``FIELDS``) to header names or 1-based
    column numbers; an empty value ignores a field the headers would supply.
    ``date_format`` is ``MDY``, ``DMY``, ``YMD`` or a ``strptime`` format,
    and may also come as ``mapping["date_format"]``. ``actor`` (a user or
    user id) is recorded as the labeler of the labels written and in their
    history.
    """

    mapping: dict[str, str] = field(default_factory=dict)
    account: str = ""
    labels_as: str = LabelSource.IMPORT
    date_format: str = ""
    create_categories: bool = False
    require_known_accounts: bool = False
    valid_only: bool = False
    dry_run: bool = False
    negate_amounts: bool = False
    decimal_comma: bool | None = None
    encoding: str = ""
    file_format: str = ""
    default_currency: str = "USD"
    actor: object = None
    preview_rows: int = PREVIEW_ROWS

    def __post_init__(self):
        self.mapping = dict(self.mapping)
        mapped_format = self.mapping.pop("date_format", "")
        self.date_format = self.date_format or mapped_format
        unknown = set(self.mapping) - set(FIELDS)
        if unknown:
            raise ValueError(
                f"Unknown field(s) in the mapping: {', '.join(sorted(unknown))}. "
                f"Fields: {', '.join(FIELDS)}, date_format."
            )
        if self.labels_as not in (LabelSource.IMPORT, LabelSource.HUMAN):
            raise ValueError("Imported labels are either 'import' or 'human'.")
        self.labels_as = LabelSource(self.labels_as)
        if self.file_format and self.file_format not in FORMATS:
            raise ValueError(f"The format is one of {', '.join(FORMATS)}.")
        self.account = (self.account or "").strip()
        if len(self.account) > 64:
            raise ValueError("An account name has at most 64 characters.")
        # Fail on a bad format now rather than on every row.
        DateReader(self.date_format)


@dataclass
class ImportResult:
    """What an import read, found wrong, and did (or would do, in a dry run)."""

    file_name: str = ""
    file_format: str = ""
    encoding: str = ""
    delimiter: str = ""
    header_row: int = 0
    row_word: str = "row"
    columns: dict = field(default_factory=dict)
    dry_run: bool = False
    committed: bool = False
    rows_read: int = 0
    valid: int = 0
    invalid: int = 0
    inserted: int = 0
    duplicates: int = 0
    duplicates_in_file: int = 0
    labels_written: int = 0
    labels_skipped: int = 0
    labels_unchanged: int = 0
    unknown_category_rows: int = 0
    unknown_categories: dict = field(default_factory=dict)
    categories_created: list = field(default_factory=list)
    errors: list = field(default_factory=list)
    warnings: list = field(default_factory=list)
    issues_left_out: int = 0
    notes: list = field(default_factory=list)
    preview: list = field(default_factory=list)
    new_ids: list = field(default_factory=list)

    @property
    def has_errors(self):
        return self.invalid > 0

    @property
    def duplicates_stored(self):
        """Rows whose transaction was already in the database."""
        return self.duplicates - self.duplicates_in_file

    @property
    def blocked(self):
        """Bad rows stopped a real import (valid-only was not chosen)."""
        return self.has_errors and not self.committed and not self.dry_run

    def summary(self):
        """One sentence on the outcome, for messages."""
        if self.dry_run:
            verb = "Would import"
        elif self.committed:
            verb = "Imported"
        else:
            return (
                f"Nothing imported: {self.invalid} of {self.rows_read} rows have "
                "errors."
            )
        text = (
            f"{verb} {self.inserted} new transactions from {self.rows_read} rows "
            f"({self.duplicates} duplicates skipped, {self.invalid} invalid rows "
            f"left out); {self.labels_written} labels written, "
            f"{self.labels_skipped} kept a higher-source label"
        )
        if self.unknown_category_rows:
            text += f", {self.unknown_category_rows} with an unknown category"
        if self.dry_run and self.has_errors:
            text += (
                f". {self.invalid} rows have errors: nothing is imported unless "
                "only the valid rows are"
            )
        return text + "."


def fingerprint(account, posted_on, amount, description, occurrence):
    """Stand-in for a missing bank id: ``fp:`` and 40 hex digits of SHA-256.

    The digest covers the account, the ISO date, the amount with two
    decimals, the description with runs of whitespace collapsed to one space,
    and ``occurrence``: 1 for the first such row in the file, 2 for the next
    identical one, and so on. The external id column holds 64 characters, so
    the digest is cut to 160 bits, still far beyond any chance of collision.
    """
    text = "\x1f".join(
        (
            account,
            posted_on.isoformat(),
            f"{amount:.2f}",
            " ".join(description.split()),
            str(occurrence),
        )
    )
    return "fp:" + hashlib.sha256(text.encode()).hexdigest()[:40]


def parse_mapping(lines):
    """``["field=Column", ...]`` (or text, one per line) to a dict.

    Raises ``ValueError`` naming the bad line.
    """
    if isinstance(lines, str):
        lines = lines.splitlines()
    mapping = {}
    for line in lines:
        if not line.strip():
            continue
        name, sep, column = line.partition("=")
        name = name.strip().lower().replace("-", "_")
        if not sep or not name:
            raise ValueError(f"{line.strip()!r} is not field=Column.")
        if name not in FIELDS and name != "date_format":
            raise ValueError(
                f"{name!r} is not a field; fields are {', '.join(FIELDS)} and "
                "date_format."
            )
        mapping[name] = column.strip()
    return mapping


def max_bytes():
    """The IMPORT_MAX_BYTES setting, read at call time."""
    return getattr(settings, "IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES)


def import_transactions(source, options=None, *, name=None):
    """Read ``source`` (a path or a seekable binary file) and import it.

    Returns an ``ImportResult``; raises ``ImportFileError`` when the file as a
    whole is unusable, and ``ValueError`` for bad options.
    """
    options = options or ImportOptions()
    if isinstance(source, (str, os.PathLike)):
        name = name or Path(source).name
        with open(source, "rb") as stream:
            return _import_stream(stream, options, name)
    if not source.seekable():
        source = io.BytesIO(source.read(max_bytes() + 1))
    source.seek(0)
    return _import_stream(source, options, name or getattr(source, "name", ""))


def read_csv_text(data, options=None):
    """Decode CSV bytes as an import reads them: ``(text, delimiter)``.

    The encoding (UTF-8, UTF-16 with a byte-order mark, else Windows-1252)
    and the delimiter are found the same way, for callers that reshape a
    file before importing it. Raises ``ImportFileError`` for text it cannot
    decode.
    """
    options = options or ImportOptions()
    encoding, _, _ = _detect_encoding(io.BytesIO(data), options.encoding)
    text = data.decode(encoding)
    return text, _pick_delimiter(text[:SNIFF_BYTES], options)


def enqueue_feature_builds(txn_ids):
    """Queue feature builds of new transactions, each followed by the labeling
    rules on the same transactions, in tasks of a bounded size."""
    for start in range(0, len(txn_ids), FEATURE_TASK_BATCH_SIZE):
        batch = txn_ids[start : start + FEATURE_TASK_BATCH_SIZE]
        chain(
            build_transaction_features_task.si(batch),
            apply_rules_to_new_transactions_task.si(batch),
        ).delay()


def format_report(result, max_warnings=None):
    """The result as lines of plain text (the command prints them).

    Every reported error is listed; warnings up to ``max_warnings``.
    """
    lines = []
    where = f"{result.file_format.upper()}"
    if result.encoding:
        where += f", {result.encoding}"
    if result.delimiter:
        where += f", delimiter {_delimiter_name(result.delimiter)}"
    if result.header_row:
        where += f"; header on {result.row_word} {result.header_row}"
    lines.append(f"File: {result.file_name or '(upload)'} ({where})")
    lines.append("Columns: " + describe_columns(result.columns))
    lines.append(
        f"Rows read: {result.rows_read}; valid: {result.valid}; "
        f"with errors: {result.invalid}"
    )
    would = "would be " if not result.committed else ""
    lines.append(
        f"Transactions: {result.inserted} {would}new; {result.duplicates} "
        f"duplicates {would}skipped ({result.duplicates_in_file} repeated "
        f"within the file, {result.duplicates_stored} already stored)"
    )
    lines.append(
        f"Labels: {result.labels_written} {would}written; "
        f"{result.labels_skipped} {would}skipped (the transaction has a "
        f"higher-source label); {result.labels_unchanged} unchanged"
    )
    if result.unknown_categories:
        names = ", ".join(
            f"{name!r} ({count})" for name, count in result.unknown_categories.items()
        )
        lines.append(
            f"Unknown categories on {result.unknown_category_rows} rows, labels "
            f"skipped (use create categories to add them): {names}"
        )
    if result.categories_created:
        created = "created" if result.committed else "to be created"
        lines.append(
            f"Categories {created}: " + ", ".join(map(repr, result.categories_created))
        )
    lines.extend(f"Note: {note}" for note in result.notes)
    warnings = result.warnings[:max_warnings]
    for kind, issues in (("Error", result.errors), ("Warning", warnings)):
        lines.extend(
            f"{kind}: {result.row_word} {issue.row}: {issue.field}: {issue.message}"
            for issue in issues
        )
    left_out = result.issues_left_out + len(result.warnings) - len(warnings)
    if left_out:
        lines.append(f"... and {left_out} more errors and warnings not listed")
    lines.append(("Dry run: " if result.dry_run else "Result: ") + result.summary())
    return lines


def describe_columns(columns):
    return "; ".join(f"{name} <- {source}" for name, source in columns.items())


# ---------------------------------------------------------------------------
# Reading files
# ---------------------------------------------------------------------------


class _Table(NamedTuple):
    file_format: str
    encoding: str
    delimiter: str
    row_word: str
    rows: object  # iterator of (row number, list of cells)
    notes: list


def _import_stream(stream, options, name):
    size = stream.seek(0, io.SEEK_END)
    stream.seek(0)
    limit = max_bytes()
    if size > limit:
        raise ImportFileError(
            f"The file is {_megabytes(size)}; the limit is {_megabytes(limit)} "
            "(setting IMPORT_MAX_BYTES). Split it into smaller files."
        )
    if size == 0:
        raise ImportFileError("The file is empty.")

    file_format = options.file_format or _detect_format(stream, name)
    if file_format == "xlsx":
        table = _xlsx_table(stream)
    elif file_format == "json":
        table = _json_table(stream, options)
    else:
        table = _csv_table(stream, options)

    result = ImportResult(
        file_name=name or "",
        file_format=table.file_format,
        encoding=table.encoding,
        delimiter=table.delimiter,
        row_word=table.row_word,
        dry_run=options.dry_run,
        notes=list(table.notes),
    )
    header_row, header, rows = _find_header(table, options)
    result.header_row = header_row
    columns = _resolve_columns(header, options, table.row_word, header_row)
    result.columns = {
        name: (f'column "{header[index]}"' if header[index] else f"column {index + 1}")
        for name, index in columns.items()
    }
    if options.account:
        result.columns["account"] = f"fixed {options.account!r}"
    return _load(rows, columns, options, result)


def _megabytes(size):
    return f"{size / (1024 * 1024):.1f} MB"


def _delimiter_name(delimiter):
    return {"\t": "tab", ",": "comma", ";": "semicolon", "|": "pipe"}[delimiter]


def _detect_format(stream, name):
    head = stream.read(SNIFF_BYTES)
    stream.seek(0)
    if head.startswith(b"PK\x03\x04"):
        return "xlsx"
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise ImportFileError(
            "This is an old Excel .xls workbook (or an encrypted one); save it "
            "as .xlsx or CSV first."
        )
    suffix = Path(name or "").suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        raise ImportFileError("The file is named .xlsx but is not an XLSX workbook.")
    text = head.lstrip(codecs.BOM_UTF8 + b" \t\r\n")
    if suffix == ".json" or text[:1] in (b"[", b"{"):
        return "json"
    return "csv"


def _detect_encoding(stream, forced):
    """Return (Python codec, name for the report, note or None)."""
    head = stream.read(4)
    stream.seek(0)
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16", "UTF-16", None
    if forced:
        try:
            codecs.lookup(forced)
        except LookupError:
            raise ImportFileError(f"Unknown encoding {forced!r}.") from None
        candidates = [forced]
    else:
        # UTF-8 first; most US bank exports that are not UTF-8 are Excel's
        # Windows-1252, where the same bytes would be misread the other way
        # round.
        candidates = ["utf-8-sig", "cp1252"]
    failures = []
    for encoding in candidates:
        failure = _first_decode_error(stream, encoding)
        if failure is None:
            if encoding == "cp1252" and not forced:
                return (
                    encoding,
                    "Windows-1252",
                    "The file is not valid UTF-8 "
                    f"({failures[0]}); it was read as Windows-1252.",
                )
            return encoding, "UTF-8" if encoding == "utf-8-sig" else encoding, None
        failures.append(failure)
    if not forced:
        raise ImportFileError(
            f"The file is neither UTF-8 nor Windows-1252 text ({failures[0]}). "
            "Save it as CSV UTF-8, or name its encoding."
        )
    raise ImportFileError(f"The file is not {forced} text ({failures[0]}).")


def _first_decode_error(stream, encoding):
    """Decode the whole stream; describe the first failure, or None."""
    decoder = codecs.getincrementaldecoder(encoding)()
    stream.seek(0)
    line = 1
    try:
        while True:
            chunk = stream.read(DECODE_CHUNK_BYTES)
            if b"\x00" in chunk:
                at = line + chunk[: chunk.index(b"\x00")].count(b"\n")
                raise ImportFileError(
                    f"Line {at} contains binary data (NUL bytes): this is not a "
                    "text file, or it is UTF-16 without a byte-order mark."
                )
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as error:
                at = line + chunk[: error.start].count(b"\n")
                byte = chunk[error.start : error.start + 1].hex()
                return f"byte 0x{byte} on line {at} cannot be decoded"
            if not chunk:
                return None
            line += chunk.count(b"\n")
    finally:
        stream.seek(0)


def _csv_table(stream, options):
    encoding, encoding_name, note = _detect_encoding(stream, options.encoding)
    notes = [note] if note else []
    sample = stream.read(SNIFF_BYTES)
    stream.seek(0)
    sample_text = codecs.getincrementaldecoder(encoding)(errors="replace").decode(
        sample
    )
    delimiter = _pick_delimiter(sample_text, options)
    # The stream belongs to the caller; TextIOWrapper would close it.
    text = io.TextIOWrapper(
        io.BufferedReader(_Unclosable(stream), DECODE_CHUNK_BYTES),
        encoding=encoding,
        newline="",
    )
    return _Table(
        "csv", encoding_name, delimiter, "line", _csv_rows(text, delimiter), notes
    )


class _Unclosable(io.RawIOBase):
    """A read-only view of a binary stream that leaves it open."""

    def __init__(self, stream):
        self._stream = stream

    def readable(self):
        return True

    def readinto(self, buffer):
        data = self._stream.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def _pick_delimiter(sample, options):
    """The delimiter whose parse of the sample shows the best header.

    Ties go to the delimiter that splits the most rows into the same number
    of fields (a wrong one splits a header and its rows differently). A
    sample of nothing but whitespace is an empty file.
    """
    if not sample.strip(" \t\r\n\ufeff"):
        raise ImportFileError("The file is empty.")
    best = None
    lines = sample.splitlines()[:-1] or sample.splitlines()
    for delimiter in DELIMITERS:
        rows = list(itertools.islice(csv.reader(lines, delimiter=delimiter), 200))
        header_score = max(
            (_header_score(row, options)[0] for row in rows[:HEADER_SCAN_ROWS]),
            default=0,
        )
        widths = Counter(len(row) for row in rows if len(row) > 1)
        consistency = widths.most_common(1)[0][1] if widths else 0
        score = (header_score, consistency)
        if best is None or score > best[0]:
            best = (score, delimiter)
    return best[1]


def _csv_rows(text, delimiter):
    reader = csv.reader(text, delimiter=delimiter)
    start = 1
    try:
        for cells in reader:
            yield start, cells
            start = reader.line_num + 1
    except csv.Error as error:
        raise ImportFileError(f"Line {reader.line_num + 1}: {error}.") from None


def _xlsx_table(stream):
    # Imported here: only XLSX files need it.
    import openpyxl

    try:
        workbook = openpyxl.load_workbook(stream, read_only=True, data_only=True)
    # A damaged workbook fails in zipfile, the XML parser or openpyxl itself,
    # each with exceptions of its own.
    except Exception as error:
        raise ImportFileError(f"Not a readable XLSX workbook ({error}).") from None
    sheet = workbook.worksheets[0]
    notes = []
    if len(workbook.worksheets) > 1:
        notes.append(f"Only the first worksheet ({sheet.title!r}) was read.")

    def rows():
        try:
            for number, cells in enumerate(
                sheet.iter_rows(min_row=1, values_only=True), start=1
            ):
                yield number, list(cells)
        finally:
            workbook.close()

    return _Table("xlsx", "", "", "row", rows(), notes)


def _json_table(stream, options):
    encoding, encoding_name, note = _detect_encoding(stream, options.encoding)
    try:
        data = json.loads(stream.read().decode(encoding), parse_float=Decimal)
    except json.JSONDecodeError as error:
        raise ImportFileError(
            f"Not valid JSON: {error.msg} at line {error.lineno}, column {error.colno}."
        ) from None
    if isinstance(data, dict) and isinstance(data.get("transactions"), list):
        data = data["transactions"]
    if not isinstance(data, list):
        raise ImportFileError(
            'JSON must be a list of transactions or {"transactions": [...]}.'
        )
    # Keys in order of first appearance make the header.
    keys = list(
        dict.fromkeys(key for item in data if isinstance(item, dict) for key in item)
    )

    def rows():
        yield 0, keys
        for number, item in enumerate(data, start=1):
            if isinstance(item, dict):
                yield number, [item.get(key) for key in keys]
            else:
                yield number, _NotAnObject(item)

    return _Table("json", encoding_name, "", "item", rows(), [note] if note else [])


class _NotAnObject(list):
    """A JSON item that is no object; reported as a bad row."""

    def __init__(self, item):
        super().__init__()
        self.item = item


# ---------------------------------------------------------------------------
# Header and columns
# ---------------------------------------------------------------------------


def _normalize_header(value):
    text = re.sub(r"\([^)]*\)", " ", str(value or "")).lower()
    return " ".join(re.sub(r"[^a-z0-9]+", " ", text).split())


def _header_score(cells, options):
    """(fields recognised, whether the required ones are there)."""
    names = [_normalize_header(cell) for cell in cells]
    columns = _match(names, options.mapping)
    required = "date" in columns and "description" in columns
    required = required and bool({"amount", "debit", "credit"} & set(columns))
    return len(columns), required, columns


def _match(names, mapping):
    columns = {}
    used = set()
    for name, wanted in mapping.items():
        if not wanted:
            continue
        key = _normalize_header(wanted)
        if key in names:
            columns[name] = names.index(key)
        elif wanted.isdigit() and 0 < int(wanted) <= len(names):
            columns[name] = int(wanted) - 1
        else:
            continue
        used.add(columns[name])
    for name, synonyms in SYNONYMS.items():
        if name in mapping:
            continue
        for synonym in synonyms:
            if synonym in names and names.index(synonym) not in used:
                columns[name] = names.index(synonym)
                used.add(columns[name])
                break
    # A file with a signed amount and debit/credit columns: unless the
    # mapping chose the split columns, the signed one is used.
    if "amount" in columns and not {"debit", "credit"} & set(mapping):
        columns.pop("debit", None)
        columns.pop("credit", None)
    elif {"debit", "credit"} & set(mapping) and "amount" not in mapping:
        columns.pop("amount", None)
    return columns


def _find_header(table, options):
    rows = table.rows
    scanned = []
    best = None
    for number, cells in itertools.islice(rows, HEADER_SCAN_ROWS):
        scanned.append((number, cells))
        count, required, _ = _header_score(cells, options)
        if required:
            # The rest of ``rows`` continues right after the header.
            return number, [_cell_text(c) for c in cells], rows
        if count and (best is None or count > best[0]):
            best = (count, number, cells)
    if not any(any(_cell_text(c) for c in cells) for _, cells in scanned):
        raise ImportFileError("The file is empty.")
    if table.file_format == "json":
        found = ", ".join(sorted(_header_score(scanned[0][1], options)[2])) or "none"
        raise ImportFileError(
            "The JSON objects need keys for a date, a description and an amount "
            "(or debit and credit), such as 'date', 'description', 'amount'. "
            f"Recognised: {found}. Name the keys with a mapping (field=key)."
        )
    expected = (
        "a date, a description and an amount (or debit and credit) column, "
        "under names such as 'Date', 'Description', 'Amount'"
    )
    if best:
        _, number, cells = best
        found = _header_score(cells, options)[2]
        missing = [
            f"{name}={wanted!r}"
            for name, wanted in options.mapping.items()
            if wanted and name not in found
        ]
        raise ImportFileError(
            f"No header row found in the first {HEADER_SCAN_ROWS} rows: expected "
            f"{expected}. The closest, {table.row_word} {number}, has only: "
            f"{', '.join(sorted(found))}"
            + (f"; it has no column for {', '.join(missing)}" if missing else "")
            + ". Name the columns with a mapping (field=Column)."
        )
    raise ImportFileError(
        f"No header row found in the first {HEADER_SCAN_ROWS} rows: expected "
        f"{expected}. Name the columns with a mapping (field=Column)."
    )


def _resolve_columns(header, options, row_word, header_row):
    names = [_normalize_header(cell) for cell in header]
    columns = _match(names, options.mapping)
    missing = [
        f"{name}={wanted!r}"
        for name, wanted in options.mapping.items()
        if wanted and name not in columns
    ]
    if missing:
        raise ImportFileError(
            f"The header on {row_word} {header_row} has no column for "
            f"{', '.join(missing)}. Its columns: "
            + ", ".join(repr(cell) for cell in header if cell)
            + "."
        )
    if options.account:
        columns.pop("account", None)
    elif "account" not in columns:
        raise ImportFileError(
            "The file has no account column; give the account the transactions "
            "belong to."
        )
    return columns


# ---------------------------------------------------------------------------
# Values
# ---------------------------------------------------------------------------


def _cell_text(value):
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).replace("\x00", "").strip()


def _unescape(text):
    return _ESCAPED_TEXT.sub("", text, count=1) if text[:1] == "'" else text


class DateReader:
    """Reads the dates of one file.

    ``fmt`` is blank (detect), ``MDY``/``DMY``/``YMD`` (the order of
    numeric dates) or a ``strptime`` format. When detecting, ISO dates,
    ``20251203``, month names (``Dec 03 2025``, ``03-Dec-2025``) and numeric
    dates are read; whether ``03/04/2025`` is day or month first is settled
    by the first date of the file that only fits one way (``observe``), and
    is month first if none does.
    """

    def __init__(self, fmt=""):
        fmt = (fmt or "").strip()
        self.strptime = None
        self.order = None
        self.told = bool(fmt)
        self.guessed = False
        self.ambiguous_seen = False
        self._cache = {}
        if "%" in fmt:
            self.strptime = fmt
            try:
                datetime.strptime(date(2025, 12, 3).strftime(fmt), fmt)
            except ValueError:
                raise ValueError(f"{fmt!r} is not a usable date format.") from None
        elif fmt.upper() in ("ISO", "YMD"):
            self.order = "YMD"
        elif fmt.upper() in DATE_ORDERS:
            self.order = fmt.upper()
        elif fmt:
            raise ValueError(
                f"Date format {fmt!r}: use MDY, DMY, YMD or a strptime format "
                "such as %d.%m.%Y."
            )

    def observe(self, value):
        """Learn the day/month order from a value; True once it is known."""
        if self.order or self.strptime:
            return True
        match = isinstance(value, str) and _NUMERIC_DATE.fullmatch(value.strip())
        if match:
            first, second = int(match[1]), int(match[2])
            if first > 12 >= second:
                self.order = "DMY"
            elif second > 12 >= first:
                self.order = "MDY"
            elif first != second:
                self.ambiguous_seen = True
        return self.order is not None

    def settle(self):
        """No value told the order: numeric dates are month first."""
        if not self.order and not self.strptime:
            self.order = "MDY"
            self.guessed = True

    def parse(self, value):
        if isinstance(value, datetime):
            return value.date()
        if isinstance(value, date):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return self._excel_serial(value)
        text = _cell_text(value)
        if not text:
            raise ValueError("missing date")
        cached = self._cache.get(text)
        if cached is None:
            cached = self._parse_text(text)
            if len(self._cache) < DATE_CACHE_SIZE:
                self._cache[text] = cached
        return cached

    def _excel_serial(self, value):
        from openpyxl.utils.datetime import from_excel

        try:
            return from_excel(value).date()
        except (ValueError, OverflowError, AttributeError):
            raise ValueError(f"{value!r} is not a date") from None

    def _parse_text(self, text):
        if self.strptime:
            try:
                return datetime.strptime(text, self.strptime).date()
            except ValueError:
                raise ValueError(
                    f"{text!r} does not match the date format {self.strptime}"
                ) from None
        try:
            return self._parse_detected(text)
        except ValueError as error:
            raise ValueError(f"{text!r} is not a date ({error})") from None

    def _parse_detected(self, text):
        if match := _ISO_DATE.fullmatch(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _COMPACT_DATE.fullmatch(text):
            return date(int(match[1]), int(match[2]), int(match[3]))
        if match := _NUMERIC_DATE.fullmatch(text):
            first, second, year = int(match[1]), int(match[2]), _year(match[3])
            if self.order == "YMD":
                raise ValueError("expected year first")
            if self.order == "DMY":
                return date(year, second, first)
            return date(year, first, second)
        if match := _MONTH_FIRST_DATE.fullmatch(text):
            return date(_year(match[3]), _month(match[1]), int(match[2]))
        if match := _DAY_FIRST_DATE.fullmatch(text):
            return date(_year(match[3]), _month(match[2]), int(match[1]))
        raise ValueError("unrecognised format")

    def describe(self):
        if self.strptime:
            return self.strptime
        return {"MDY": "MM/DD/YYYY", "DMY": "DD/MM/YYYY", "YMD": "YYYY-MM-DD"}.get(
            self.order, "detected"
        )


def _year(text):
    year = int(text)
    if len(text) == 2:
        # Two-digit years are recent in bank exports.
        year += 2000 if year < 70 else 1900
    return year


def _month(text):
    month = _MONTHS.get(text.lower())
    if month is None:
        raise ValueError(f"{text!r} is not a month")
    return month


def parse_amount(value, decimal_comma=False):
    """A bank amount as a ``Decimal`` with two places; ``None`` when blank.

    Understands ``$1,234.56``, ``-1234.56``, ``(12.00)``, ``12.00-``,
    ``45.10 CR`` / ``45.10 DR``, ``1.234,56`` and ``1 234,56``. A lone
    separator followed by three digits (``1,234`` or ``1.234``) is a
    thousands separator unless the file uses decimal commas, in which case
    ``1,234`` has three decimals and is refused. Raises ``ValueError``.
    """
    if value is None or isinstance(value, bool):
        if value is None:
            return None
        raise ValueError(f"{value!r} is not an amount")
    if isinstance(value, (int, Decimal)):
        number = Decimal(value)
    elif isinstance(value, float):
        number = Decimal(repr(value))
    else:
        number = _parse_amount_text(str(value), decimal_comma)
        if number is None:
            return None
    if not number.is_finite():
        raise ValueError(f"{value!r} is not an amount")
    if number != number.quantize(CENT):
        raise ValueError(f"{value!r} has more than two decimal places")
    number = number.quantize(CENT)
    if abs(number) > MAX_AMOUNT:
        raise ValueError(f"{value!r} is too large")
    return number


def _parse_amount_text(raw, decimal_comma):
    if _PLAIN_AMOUNT.fullmatch(raw):
        return Decimal(raw)
    text = raw.replace("\u00a0", " ").replace("\u202f", " ").strip()
    if text.lower() in _BLANK_AMOUNTS:
        return None
    match = _AMOUNT.fullmatch(text)
    if not match or not re.search(r"\d", match["number"]):
        raise ValueError(f"{raw!r} is not an amount")
    if bool(match["open"]) != bool(match["close"]):
        raise ValueError(f"{raw!r} has unbalanced parentheses")
    minus = (
        bool(match["open"])
        or "-" in (match["sign1"] or "") + (match["sign2"] or "")
        or "\u2212" in (match["sign1"] or "") + (match["sign2"] or "")
        or bool(match["sign3"])
    )
    crdr = (match["crdr"] or "").upper()
    if crdr == "CR" and minus:
        raise ValueError(f"{raw!r} is both negative and a credit")
    number = _parse_number(match["number"], decimal_comma, raw)
    return -number if minus or crdr == "DR" else number


def _parse_number(digits, decimal_comma, raw):
    digits = re.sub(r"[\s']", "", digits)
    commas, points = digits.count(","), digits.count(".")
    if commas and points:
        decimal_sep = "," if digits.rfind(",") > digits.rfind(".") else "."
    elif commas or points:
        sep = "," if commas else "."
        tail = digits.rpartition(sep)[2]
        if digits.count(sep) > 1:
            decimal_sep = None
        elif len(tail) == 3:
            # "1,234" or "1.234": the file's convention decides.
            decimal_sep = sep if (sep == ",") == bool(decimal_comma) else None
        else:
            decimal_sep = sep
    else:
        decimal_sep = None
    if decimal_sep:
        whole, _, fraction = digits.rpartition(decimal_sep)
    else:
        whole, fraction = digits, ""
    if fraction and not fraction.isdigit():
        raise ValueError(f"{raw!r} is not an amount")
    if not re.fullmatch(r"\d*|\d{1,3}(?:,\d{3})+|\d{1,3}(?:\.\d{3})+", whole):
        raise ValueError(f"{raw!r} is not an amount")
    try:
        whole = whole.replace(",", "").replace(".", "") or "0"
        return Decimal(f"{whole}.{fraction or '0'}")
    except InvalidOperation:
        raise ValueError(f"{raw!r} is not an amount") from None


# ---------------------------------------------------------------------------
# Rows
# ---------------------------------------------------------------------------


class _RowReader:
    """Turns the cells of one data row into a ``ParsedRow`` or issues."""

    def __init__(self, columns, options, decimal_comma, result):
        self.columns = columns
        self.options = options
        self.decimal_comma = decimal_comma
        self.result = result
        self.dates = DateReader(options.date_format)
        self.occurrences = Counter()
        # Read up front: no other query can run on the connection while the
        # rows are being copied. A household has a few dozen accounts.
        self.known_accounts = (
            set(Transaction.all_objects.values_list("account", flat=True).distinct())
            if options.require_known_accounts
            else set()
        )
        self.categories = {
            _category_key(name): name
            for name in Category.objects.values_list("name", flat=True)
        }
        self.new_categories = {}
        self.unknown_categories = Counter()
        self.issue_count = 0

    def cell(self, cells, name):
        index = self.columns.get(name)
        if index is None or index >= len(cells):
            return None
        return cells[index]

    def read(self, number, cells):
        """Return a ParsedRow, or None after recording the row's errors."""
        if isinstance(cells, _NotAnObject):
            self.error(number, "row", f"{cells.item!r} is not an object")
            return None
        errors = []
        posted_on = self._date(cells, errors)
        amount = self._amount(cells, errors)
        description = _unescape(_cell_text(self.cell(cells, "description")))
        if not description:
            errors.append(("description", "missing description"))
        account = self._account(cells, errors)
        currency = self._currency(cells, errors)
        external_id = _unescape(_cell_text(self.cell(cells, "external_id")))
        if len(external_id) > 64:
            errors.append(("external_id", "bank id longer than 64 characters"))
        category = _unescape(_cell_text(self.cell(cells, "category")))
        if len(category) > 64:
            errors.append(("category", "category longer than 64 characters"))
        if errors:
            for name, message in errors:
                self.error(number, name, message)
            return None
        if not external_id:
            base = (account, posted_on, amount, " ".join(description.split()))
            key = hashlib.sha256(repr(base).encode()).digest()
            self.occurrences[key] += 1
            external_id = fingerprint(
                account, posted_on, amount, description, self.occurrences[key]
            )
        return ParsedRow(
            number,
            account,
            external_id,
            posted_on,
            description,
            amount,
            currency,
            self._category(number, category) if category else None,
        )

    def is_blank(self, cells):
        if isinstance(cells, _NotAnObject):
            return False
        return not any(_cell_text(cell) for cell in cells)

    def error(self, number, name, message):
        self._issue(self.result.errors, RowIssue(number, name, message))

    def warning(self, number, name, message):
        self._issue(self.result.warnings, RowIssue(number, name, message))

    def _issue(self, target, issue):
        if self.issue_count < MAX_REPORTED_ISSUES:
            target.append(issue)
        else:
            self.result.issues_left_out += 1
        self.issue_count += 1

    def _date(self, cells, errors):
        try:
            return self.dates.parse(self.cell(cells, "date"))
        except ValueError as error:
            message = str(error)
            if self.dates.guessed and _NUMERIC_DATE.fullmatch(
                _cell_text(self.cell(cells, "date"))
            ):
                message += "; dates were read month first, give the date format"
            errors.append(("date", message))
            return None

    def _amount(self, cells, errors):
        try:
            if "amount" in self.columns:
                amount = parse_amount(self.cell(cells, "amount"), self.decimal_comma)
                if amount is None:
                    errors.append(("amount", "missing amount"))
                    return None
                amount = self._direction(cells, amount, errors)
            else:
                debit = parse_amount(self.cell(cells, "debit"), self.decimal_comma)
                credit = parse_amount(self.cell(cells, "credit"), self.decimal_comma)
                if debit and credit:
                    errors.append(
                        ("amount", "both a debit and a credit amount are given")
                    )
                    return None
                if not debit and credit is None and debit is None:
                    errors.append(("amount", "missing debit and credit amount"))
                    return None
                amount = -abs(debit) if debit else abs(credit or Decimal("0.00"))
        except ValueError as error:
            errors.append(("amount", str(error)))
            return None
        return -amount if self.options.negate_amounts else amount

    def _direction(self, cells, amount, errors):
        if "direction" not in self.columns:
            return amount
        word = _cell_text(self.cell(cells, "direction")).lower()
        if not word:
            return amount
        if word in _DEBIT_WORDS:
            return -abs(amount)
        if word in _CREDIT_WORDS:
            return abs(amount)
        errors.append(("direction", f"{word!r} is neither debit nor credit"))
        return amount

    def _account(self, cells, errors):
        account = self.options.account or _unescape(
            _cell_text(self.cell(cells, "account"))
        )
        if not account:
            errors.append(("account", "missing account"))
            return None
        if len(account) > 64:
            errors.append(("account", "account longer than 64 characters"))
            return None
        if self.options.require_known_accounts and account not in self.known_accounts:
            errors.append(("account", f"unknown account {account!r}"))
            return None
        return account

    def _currency(self, cells, errors):
        currency = _cell_text(self.cell(cells, "currency")).upper()
        if not currency:
            return self.options.default_currency
        if not re.fullmatch(r"[A-Z]{3}", currency):
            errors.append(("currency", f"{currency!r} is not a currency code"))
        return currency

    def _category(self, number, name):
        key = _category_key(name)
        known = self.categories.get(key) or self.new_categories.get(key)
        if known:
            return known
        if self.options.create_categories:
            self.new_categories[key] = " ".join(name.split())
            return self.new_categories[key]
        self.unknown_categories[name] += 1
        self.warning(number, "category", f"unknown category {name!r}; label skipped")
        return None


def _category_key(name):
    return " ".join(name.split()).casefold()


def _held_for_date_order(rows, reader):
    """Yield rows once the file's day/month order is known.

    Rows are held back until a date settles it, at most
    ``DATE_ORDER_SAMPLE_ROWS`` of them; past that, or at the end of the file,
    numeric dates are month first.
    """
    held = []
    for item in rows:
        known = reader.dates.observe(reader.cell(item[1], "date"))
        if known and not held:
            yield item
            continue
        held.append(item)
        if known or len(held) >= DATE_ORDER_SAMPLE_ROWS:
            reader.dates.settle()
            yield from held
            held = []
    if held:
        reader.dates.settle()
        yield from held


# ---------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------

_STAGE_COLUMNS = (
    "line, account, external_id, posted_on, description, amount, currency, category"
)

_DROP_STAGE = "DROP TABLE IF EXISTS pg_temp.import_stage"

# ON COMMIT DROP cleans up after an import in autocommit mode; the explicit
# drop covers an import nested in a longer transaction.
_CREATE_STAGE = """
    CREATE TEMPORARY TABLE import_stage (
        line integer NOT NULL,
        account varchar(64) NOT NULL,
        external_id varchar(64) NOT NULL,
        posted_on date NOT NULL,
        description text NOT NULL,
        amount numeric(12, 2) NOT NULL,
        currency varchar(3) NOT NULL,
        category varchar(64)
    ) ON COMMIT DROP
"""

_COPY_STAGE = f"COPY import_stage ({_STAGE_COLUMNS}) FROM STDIN"

# Soft-deleted transactions count as stored: the unique index covers them,
# and re-importing a file must not bring back what a user deleted.
_DUPLICATE_COUNTS = """
    WITH keys AS (SELECT DISTINCT account, external_id FROM import_stage)
    SELECT count(*),
           count(*) FILTER (WHERE EXISTS (
               SELECT 1 FROM transactions t
               WHERE t.account = keys.account AND t.external_id = keys.external_id
           ))
    FROM keys
"""

# In file order, so the first of repeated bank ids wins and ids follow lines.
_INSERT_TRANSACTIONS = """
    INSERT INTO transactions
        (account, external_id, posted_on, description, amount, currency)
    SELECT account, external_id, posted_on, description, amount, currency
    FROM import_stage
    ORDER BY line
    ON CONFLICT (account, external_id) WHERE external_id IS NOT NULL DO NOTHING
    RETURNING id
"""

# One label per live transaction, from its first row in the file.
_FIRST_LABELS = """
    SELECT DISTINCT ON (t.id) t.id AS txn_id, s.category
    FROM import_stage s
    JOIN transactions t
      ON t.account = s.account AND t.external_id = s.external_id
    WHERE s.category IS NOT NULL AND t.deleted_at IS NULL
    ORDER BY t.id, s.line
"""

_LABELS_TO_WRITE = f"""
    SELECT x.txn_id, x.category,
           coalesce(l.label = x.category AND l.source = %(source)s, false)
    FROM ({_FIRST_LABELS}) x
    LEFT JOIN transaction_labels l ON l.txn_id = x.txn_id
    ORDER BY x.txn_id
"""

# The same decision bulk_set_labels makes, counted without writing. Rows that
# are not stored yet get their label for sure.
_LABEL_FORECAST = """
    WITH firsts AS (
        SELECT DISTINCT ON (account, external_id) account, external_id, category
        FROM import_stage
        WHERE category IS NOT NULL
        ORDER BY account, external_id, line
    ), current AS (
        SELECT f.category, l.label, l.source, t.deleted_at
        FROM firsts f
        LEFT JOIN transactions t
          ON t.account = f.account AND t.external_id = f.external_id
        LEFT JOIN transaction_labels l ON l.txn_id = t.id
    )
    SELECT
        count(*) FILTER (
            WHERE source IS NULL
               OR (label_source_rank(%(source)s) >= label_source_rank(source)
                   AND (label, source) IS DISTINCT FROM (category, %(source)s))),
        count(*) FILTER (
            WHERE label_source_rank(%(source)s) < label_source_rank(source)),
        count(*) FILTER (WHERE label = category AND source = %(source)s)
    FROM current
    WHERE deleted_at IS NULL
"""


def _load(rows, columns, options, result):
    decimal_comma = options.decimal_comma
    if decimal_comma is None:
        # Where ";" separates fields, "," is the decimal separator.
        decimal_comma = result.delimiter == ";"
    if decimal_comma:
        result.notes.append("Amounts were read with decimal commas (1.234,56).")

    with transaction.atomic(), connection.cursor() as cursor:
        reader = _RowReader(columns, options, decimal_comma, result)
        cursor.execute(_DROP_STAGE)
        cursor.execute(_CREATE_STAGE)
        with cursor.cursor.copy(_COPY_STAGE) as copy:
            for number, cells in _held_for_date_order(rows, reader):
                if reader.is_blank(cells):
                    continue
                result.rows_read += 1
                parsed = reader.read(number, cells)
                if parsed is None:
                    result.invalid += 1
                    continue
                result.valid += 1
                if len(result.preview) < options.preview_rows:
                    result.preview.append(parsed)
                copy.write_row(parsed)
        if result.rows_read == 0:
            raise ImportFileError(
                f"The file has a header on {result.row_word} {result.header_row} "
                "but no transactions below it."
            )
        if reader.dates.guessed and reader.dates.ambiguous_seen:
            result.notes.append(
                "No date told day-first from month-first; numeric dates were read "
                "as MM/DD/YYYY."
            )
        elif reader.dates.order == "DMY" and not reader.dates.told:
            result.notes.append("Numeric dates were read as DD/MM/YYYY.")
        result.unknown_categories = dict(reader.unknown_categories.most_common())
        result.unknown_category_rows = sum(reader.unknown_categories.values())
        result.categories_created = sorted(
            set(reader.new_categories.values())
            - set(Category.objects.values_list("name", flat=True))
        )

        # Temporary tables are never auto-analyzed; the joins need statistics.
        cursor.execute("ANALYZE import_stage")
        cursor.execute(_DUPLICATE_COUNTS)
        keys, stored = cursor.fetchone()
        result.duplicates_in_file = result.valid - keys
        result.duplicates = result.valid - (keys - stored)

        write = not options.dry_run and (not result.has_errors or options.valid_only)
        if write and result.valid:
            _write(cursor, options, result)
        else:
            result.inserted = keys - stored
            cursor.execute(_LABEL_FORECAST, {"source": options.labels_as.value})
            (
                result.labels_written,
                result.labels_skipped,
                result.labels_unchanged,
            ) = cursor.fetchone()
        cursor.execute(_DROP_STAGE)
        result.committed = write
        if not write:
            transaction.set_rollback(True)

    logger.info(
        "Import of %s: %d rows, %d invalid, %d new, %d duplicates, %d labels "
        "written, %d skipped (%s)",
        result.file_name,
        result.rows_read,
        result.invalid,
        result.inserted,
        result.duplicates,
        result.labels_written,
        result.labels_skipped,
        "committed" if result.committed else "nothing written",
    )
    return result


def _write(cursor, options, result):
    if result.categories_created:
        Category.objects.bulk_create(
            [Category(name=name) for name in result.categories_created],
            ignore_conflicts=True,
        )
    cursor.execute(_INSERT_TRANSACTIONS)
    result.new_ids = sorted(row[0] for row in cursor.fetchall())
    result.inserted = len(result.new_ids)

    cursor.execute(_LABELS_TO_WRITE, {"source": options.labels_as.value})
    while batch := cursor.fetchmany(LABEL_BATCH_SIZE):
        labels = {txn_id: category for txn_id, category, same in batch if not same}
        result.labels_unchanged += len(batch) - len(labels)
        if labels:
            written = bulk_set_labels(labels, options.labels_as, actor=options.actor)
            result.labels_written += written.written
            result.labels_skipped += written.skipped

    if result.new_ids:
        transaction.on_commit(partial(enqueue_feature_builds, result.new_ids))
