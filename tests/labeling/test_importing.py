"""Importing transactions from bank files, and exporting them again."""

import csv
import hashlib
import io
import json
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import openpyxl
import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from labeling.importing import (
    DateReader,
    ImportFileError,
    ImportOptions,
    enqueue_feature_builds,
    fingerprint,
    import_transactions,
    parse_amount,
    parse_mapping,
)
from labeling.labels import set_label
from labeling.models import Category, LabelHistory, Transaction, TransactionLabel
from mlcore.models import FeatureVector
from mlcore.tasks import build_transaction_features_task

pytestmark = pytest.mark.django_db

FILES = Path(__file__).parent / "files"
# The public labeled sample, kept with the backtest tests.
SAMPLE = (
    Path(__file__).parents[1] / "mlcore" / "files" / "personal_transactions_sample.csv"
)


def write(tmp_path, name, content):
    path = tmp_path / name
    if isinstance(content, str):
        content = content.encode()
    path.write_bytes(content)
    return path


def rows(**filters):
    return list(
        Transaction.objects.filter(**filters)
        .order_by("id")
        .values_list("posted_on", "description", "amount", "account")
    )


def issues(result):
    return [(issue.row, issue.field) for issue in result.errors]


SIMPLE = (
    "date,description,amount,account\n"
    "2025-12-01,COFFEE,-3.50,Checking\n"
    "2025-12-02,LUNCH,-12.00,Checking\n"
)


# ---------------------------------------------------------------------------
# Layouts
# ---------------------------------------------------------------------------


def test_signed_amount_card_export_with_fixed_account():
    result = import_transactions(
        FILES / "card_signed.csv", ImportOptions(account="Chase Sapphire")
    )

    assert (result.rows_read, result.valid, result.inserted) == (5, 5, 5)
    assert result.committed and not result.errors
    # "Post Date" is preferred over "Transaction Date", "Description" over "Memo".
    assert result.columns["date"] == 'column "Post Date"'
    assert result.columns["description"] == 'column "Description"'
    assert rows()[2:4] == [
        (date(2025, 12, 4), "NETFLIX.COM", Decimal("-15.49"), "Chase Sapphire"),
        (date(2025, 12, 15), "AUTOMATIC PAYMENT - THANK YOU", Decimal("250.00"),
         "Chase Sapphire"),
    ]  # fmt: skip
    assert all(
        external_id.startswith("fp:")
        for external_id in Transaction.objects.values_list("external_id", flat=True)
    )


def test_debit_credit_columns_below_a_bank_preamble():
    result = import_transactions(
        FILES / "checking_debit_credit.csv", ImportOptions(account="Checking 4321")
    )

    assert result.header_row == 5 and not result.errors
    assert rows() == [
        (date(2025, 12, 1), "ACME CORP PAYROLL PPD ID: 1234567890", Decimal("2450.00"),
         "Checking 4321"),
        (date(2025, 12, 2), "POS DEBIT WALGREENS #4411 ALTOONA PA", Decimal("-12.34"),
         "Checking 4321"),
        (date(2025, 12, 3), 'CHECK 1042 "RENT"', Decimal("-1500.00"), "Checking 4321"),
        (date(2025, 12, 5), "ATM WITHDRAWAL FEE", Decimal("-2.50"), "Checking 4321"),
    ]  # fmt: skip
    # The bank's reference is the external id.
    assert set(Transaction.objects.values_list("external_id", flat=True)) == {
        "REF-0001",
        "REF-0002",
        "REF-0003",
        "REF-0004",
    }


def test_semicolon_csv_with_decimal_commas_and_day_first_dates():
    result = import_transactions(FILES / "semicolon_decimal_comma.csv")

    assert result.delimiter == ";" and not result.errors
    assert rows() == [
        (date(2025, 12, 3), "REWE SAGT DANKE", Decimal("-45.30"), "Girokonto"),
        (date(2025, 12, 13), "GEHALT DEZEMBER", Decimal("2450.00"), "Girokonto"),
        (date(2025, 12, 15), "MIETE", Decimal("-1100.00"), "Girokonto"),
    ]
    assert any("DD/MM/YYYY" in note for note in result.notes)


@pytest.mark.parametrize("delimiter", ["\t", "|"])
def test_tab_and_pipe_delimiters(tmp_path, delimiter):
    path = write(tmp_path, "export.txt", SIMPLE.replace(",", delimiter))

    result = import_transactions(path)

    assert result.delimiter == delimiter and result.inserted == 2


def test_xlsx_with_extra_header_lines(tmp_path):
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    sheet.append(["First Example Bank"])
    sheet.append(["Account", "Savings 5555"])
    sheet.append(["From", datetime(2025, 12, 1), "To", datetime(2025, 12, 31)])
    sheet.append([])
    sheet.append(["Transaction Date", "Description", "Debit", "Credit", "Account"])
    sheet.append([datetime(2025, 12, 1), "INTEREST PAYMENT", None, 1.25, "Savings"])
    sheet.append(["03-Dec-2025", "TRANSFER TO CHECKING", 200, None, "Savings"])
    sheet.append([datetime(2025, 12, 9), "BAD ROW", "lots", None, "Savings"])
    sheet.append([])
    sheet.append([datetime(2025, 12, 10), "MONTHLY FEE", 5.5, 0, "Savings"])
    path = tmp_path / "statement.xlsx"
    workbook.save(path)

    result = import_transactions(path, ImportOptions(valid_only=True))

    assert result.file_format == "xlsx" and result.header_row == 5
    # Worksheet rows, as Excel numbers them.
    assert issues(result) == [(8, "amount")]
    assert rows() == [
        (date(2025, 12, 1), "INTEREST PAYMENT", Decimal("1.25"), "Savings"),
        (date(2025, 12, 3), "TRANSFER TO CHECKING", Decimal("-200.00"), "Savings"),
        (date(2025, 12, 10), "MONTHLY FEE", Decimal("-5.50"), "Savings"),
    ]


def test_json_wrapped_list_with_bank_ids_and_categories():
    result = import_transactions(FILES / "transactions.json")

    assert result.file_format == "json" and result.inserted == 3
    spotify = Transaction.objects.get(external_id="T-100")
    assert (spotify.amount, spotify.currency) == (Decimal("-11.99"), "USD")
    assert spotify.label.label_id == "Music" and spotify.label.source == "import"
    assert Transaction.objects.get(external_id="T-102").amount == Decimal("25.00")


def test_json_plain_list_reports_items_by_position(tmp_path):
    items = [
        {"date": "2025-12-01", "description": "A", "amount": "-1", "account": "X"},
        "not an object",
        {"date": "2025-12-02", "description": "B", "amount": None, "account": "X"},
    ]
    path = write(tmp_path, "list.json", json.dumps(items))

    result = import_transactions(path)

    assert result.row_word == "item"
    assert issues(result) == [(2, "row"), (3, "amount")]
    assert Transaction.objects.count() == 0


def test_mint_style_direction_column_signs_unsigned_amounts(tmp_path):
    path = write(
        tmp_path,
        "mint.csv",
        "Date,Description,Original Description,Amount,Transaction Type,"
        "Category,Account Name\n"
        "12/01/2025,Starbucks,STARBUCKS STORE 00123,5.25,debit,Coffee Shops,Visa\n"
        "12/02/2025,Paycheck,ACME PAYROLL,1000.00,credit,Paycheck,Checking\n",
    )

    import_transactions(path)

    assert rows() == [
        (date(2025, 12, 1), "STARBUCKS STORE 00123", Decimal("-5.25"), "Visa"),
        (date(2025, 12, 2), "ACME PAYROLL", Decimal("1000.00"), "Checking"),
    ]


def test_explicit_mapping_overrides_recognised_names(tmp_path):
    path = write(
        tmp_path,
        "custom.csv",
        "When,What,Description,How much\n2025-12-01,BLUE BOTTLE,ignored text,-4.50\n",
    )
    mapping = parse_mapping(["date=When", "description = What", "amount=How much"])

    import_transactions(path, ImportOptions(mapping=mapping, account="Cash"))

    assert rows() == [(date(2025, 12, 1), "BLUE BOTTLE", Decimal("-4.50"), "Cash")]


def test_mapping_naming_a_missing_column_is_refused(tmp_path):
    path = write(tmp_path, "simple.csv", SIMPLE)

    with pytest.raises(ImportFileError, match="no column for description='Payee'"):
        import_transactions(path, ImportOptions(mapping={"description": "Payee"}))


def test_mapping_syntax_errors():
    with pytest.raises(ValueError, match="'colour' is not a field"):
        parse_mapping("colour=Red")
    with pytest.raises(ValueError, match="is not field=Column"):
        parse_mapping(["date"])
    assert parse_mapping("date_format=%d.%m.%Y\ncategory=") == {
        "date_format": "%d.%m.%Y",
        "category": "",
    }


def test_an_explicit_date_format_wins_over_the_mapping_one():
    options = ImportOptions(mapping={"date_format": "DMY"}, date_format="MDY")

    assert (options.date_format, options.mapping) == ("MDY", {})


def test_date_format_told_by_the_mapping(tmp_path):
    path = write(
        tmp_path,
        "dots.csv",
        "date,description,amount,account\n01.02.2025,X,-1,A\n",
    )

    import_transactions(path, ImportOptions(mapping={"date_format": "%d.%m.%Y"}))

    assert rows()[0][0] == date(2025, 2, 1)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-12-03", date(2025, 12, 3)),
        ("2025-12-03T18:22:01Z", date(2025, 12, 3)),
        ("2025/12/03", date(2025, 12, 3)),
        ("20251203", date(2025, 12, 3)),
        ("12/03/2025", date(2025, 12, 3)),
        ("12/3/25", date(2025, 12, 3)),
        ("Dec 03 2025", date(2025, 12, 3)),
        ("December 3, 2025", date(2025, 12, 3)),
        ("Wed, Dec 3 2025", date(2025, 12, 3)),
        ("03-Dec-2025", date(2025, 12, 3)),
        ("3 Dec 25", date(2025, 12, 3)),
        ("Sept 3 2025", date(2025, 9, 3)),
    ],
)
def test_date_formats(text, expected):
    assert DateReader().parse(text) == expected


def test_numeric_dates_follow_the_order_the_file_shows_or_is_told():
    dates = DateReader()
    assert not dates.observe("03/04/2025")
    assert dates.observe("25/04/2025")
    assert dates.parse("03/04/2025") == date(2025, 4, 3)
    assert DateReader("DMY").parse("03/04/2025") == date(2025, 4, 3)
    assert DateReader("MDY").parse("03/04/2025") == date(2025, 3, 4)
    with pytest.raises(ValueError, match=r"not a usable date format|Date format"):
        DateReader("DD-MM")


def test_day_first_dates_after_ambiguous_ones_are_read_day_first(tmp_path):
    path = write(
        tmp_path,
        "dmy.csv",
        "date,description,amount,account\n"
        "02/03/2025,A,-1,X\n"
        "05/03/2025,B,-1,X\n"
        "20/03/2025,C,-1,X\n",
    )

    import_transactions(path)

    assert [row[0] for row in rows()] == [
        date(2025, 3, 2),
        date(2025, 3, 5),
        date(2025, 3, 20),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("$1,234.56", "1234.56"),
        ("-1234.56", "-1234.56"),
        ("(12.00)", "-12.00"),
        ("12.00-", "-12.00"),
        ("-$12.50", "-12.50"),
        ("$-12.50", "-12.50"),
        ("45.10 CR", "45.10"),
        ("45.10 DR", "-45.10"),
        ("USD 12", "12.00"),
        ("1,234,567.89", "1234567.89"),
        ("1.234,56", "1234.56"),
        ("\u22125.00", "-5.00"),
        ("-", None),
        ("", None),
    ],
)
def test_amount_formats(text, expected):
    assert parse_amount(text) == (None if expected is None else Decimal(expected))


@pytest.mark.parametrize(
    ("text", "decimal_comma", "expected"),
    [
        ("1,234", False, "1234.00"),
        ("1.234", True, "1234.00"),
        ("12,5", True, "12.50"),
        ("1 234,56", True, "1234.56"),
    ],
)
def test_amount_separators_follow_the_file_convention(text, decimal_comma, expected):
    assert parse_amount(text, decimal_comma) == Decimal(expected)


@pytest.mark.parametrize("text", ["twelve", "1.234", "12.345", "(12", "1e5", "-5 CR"])
def test_bad_amounts(text):
    with pytest.raises(ValueError, match=r"amount|decimal places|parentheses|credit"):
        parse_amount(text)


# ---------------------------------------------------------------------------
# Bad rows and bad files
# ---------------------------------------------------------------------------


def test_bad_rows_are_named_by_line_and_nothing_is_imported():
    result = import_transactions(FILES / "bad_rows.csv")

    assert not result.committed and result.blocked
    assert (result.rows_read, result.valid, result.invalid) == (6, 3, 3)
    assert issues(result) == [(3, "date"), (4, "amount"), (5, "description")]
    messages = [issue.message for issue in result.errors]
    assert "'2025-13-45' is not a date" in messages[0]
    assert "'twelve' is not an amount" in messages[1]
    assert messages[2] == "missing description"
    assert Transaction.objects.count() == 0


def test_valid_only_imports_the_good_rows():
    result = import_transactions(FILES / "bad_rows.csv", ImportOptions(valid_only=True))

    assert result.committed and result.inserted == 3
    assert [row[1] for row in rows()] == [
        "GOOD COFFEE",
        "MULTI\nLINE DESCRIPTION",
        "GOOD LUNCH",
    ]


def test_command_prints_row_errors_and_fails_without_valid_only():
    out = io.StringIO()

    with pytest.raises(CommandError, match="3 rows have errors; nothing was imported"):
        call_command("import_transactions", str(FILES / "bad_rows.csv"), stdout=out)

    assert "Error: line 3: date: '2025-13-45' is not a date" in out.getvalue()
    assert "Error: line 5: description: missing description" in out.getvalue()
    assert Transaction.objects.count() == 0


def test_command_valid_only_imports_and_succeeds():
    out = io.StringIO()

    call_command(
        "import_transactions", str(FILES / "bad_rows.csv"), "--valid-only", stdout=out
    )

    assert "Imported 3 new transactions" in out.getvalue()
    assert Transaction.objects.count() == 3


def test_command_options(tmp_path):
    path = write(
        tmp_path,
        "card.csv",
        "Day,Text,Value,Kind\n02.01.2025,GROCER,12.30,Groceries\n",
    )
    out = io.StringIO()

    call_command(
        "import_transactions",
        str(path),
        "--account=Amex",
        "--map=date=Day",
        "--map",
        "description=Text",
        "--map=amount=Value",
        "--map=category=Kind",
        "--date-format=%d.%m.%Y",
        "--negate-amounts",
        "--labels-as=human",
        stdout=out,
    )

    txn = Transaction.objects.get()
    assert (txn.posted_on, txn.amount, txn.account) == (
        date(2025, 1, 2),
        Decimal("-12.30"),
        "Amex",
    )
    assert txn.label.source == "human"


def test_command_rejects_unknown_mapping_field():
    with pytest.raises(CommandError, match="'colour' is not a field"):
        call_command(
            "import_transactions", str(FILES / "bad_rows.csv"), "--map=colour=x"
        )


def test_unknown_accounts_are_refused_when_known_ones_are_required(tmp_path, make_txn):
    make_txn(account="Checking")
    path = write(
        tmp_path,
        "accounts.csv",
        "date,description,amount,account\n"
        "2025-12-01,A,-1,Checking\n"
        "2025-12-02,B,-1,Checkng\n",
    )

    result = import_transactions(path, ImportOptions(require_known_accounts=True))

    assert issues(result) == [(3, "account")]
    assert result.errors[0].message == "unknown account 'Checkng'"
    assert Transaction.objects.count() == 1


def test_missing_account_column_needs_a_fixed_account(tmp_path):
    path = write(tmp_path, "noacct.csv", "date,description,amount\n2025-12-01,A,-1\n")

    with pytest.raises(ImportFileError, match="no account column"):
        import_transactions(path)


def test_windows_1252_file_is_read_as_such_and_says_so(tmp_path):
    path = write(
        tmp_path,
        "cp1252.csv",
        "date,description,amount,account\n"
        "2025-12-01,CAF\u00c9 \u2013 NOIR,-3,A\n".encode("cp1252"),
    )

    result = import_transactions(path)

    assert result.encoding == "Windows-1252"
    assert "not valid UTF-8" in result.notes[0] and "line 2" in result.notes[0]
    assert Transaction.objects.get().description == "CAF\u00c9 \u2013 NOIR"


def test_text_in_no_supported_encoding_is_refused_with_its_line(tmp_path):
    # 0x81 is undefined in Windows-1252 and invalid on its own in UTF-8.
    path = write(
        tmp_path,
        "broken.csv",
        b"date,description,amount,account\n2025-12-01,OK,-1,A\n2025-12-02,\x81,-1,A\n",
    )

    with pytest.raises(ImportFileError, match=r"neither UTF-8 nor .*line 3"):
        import_transactions(path)


def test_binary_data_is_refused(tmp_path):
    path = write(tmp_path, "binary.csv", b"date,description\x00\x00,amount\n")

    with pytest.raises(ImportFileError, match="binary data"):
        import_transactions(path)


def test_utf16_with_byte_order_mark_is_read(tmp_path):
    path = write(tmp_path, "utf16.csv", SIMPLE.encode("utf-16"))

    assert import_transactions(path).inserted == 2


def test_utf8_byte_order_mark_is_not_part_of_the_first_header(tmp_path):
    path = write(tmp_path, "bom.csv", SIMPLE.encode("utf-8-sig"))

    result = import_transactions(path)

    assert result.encoding == "UTF-8" and result.inserted == 2


@pytest.mark.parametrize("content", [b"", b"\n\n  \r\n", b"\xef\xbb\xbf"])
def test_empty_file(tmp_path, content):
    path = write(tmp_path, "empty.csv", content)

    with pytest.raises(ImportFileError, match="empty"):
        import_transactions(path)


def test_header_without_rows(tmp_path):
    path = write(tmp_path, "header.csv", "date,description,amount,account\n")

    with pytest.raises(ImportFileError, match="header on line 1 but no transactions"):
        import_transactions(path)


def test_no_recognisable_header(tmp_path):
    path = write(
        tmp_path,
        "noheader.csv",
        "2025-12-01,COFFEE,-3.50\n2025-12-02,LUNCH,-12.00\n",
    )

    with pytest.raises(ImportFileError, match="No header row found in the first 30"):
        import_transactions(path)


def test_header_missing_a_required_column_names_what_it_found(tmp_path):
    path = write(tmp_path, "partial.csv", "Date,Amount,Account\n2025-12-01,-3,A\n")

    with pytest.raises(ImportFileError, match="line 1, has only: account, amount"):
        import_transactions(path)


def test_not_a_workbook(tmp_path):
    path = write(tmp_path, "fake.xlsx", b"PK\x03\x04 but no zip")

    with pytest.raises(ImportFileError, match="Not a readable XLSX workbook"):
        import_transactions(path)


def test_invalid_json(tmp_path):
    path = write(tmp_path, "bad.json", '[{"date": "2025-12-01",]')

    with pytest.raises(ImportFileError, match=r"Not valid JSON.*line 1"):
        import_transactions(path)


def test_file_over_the_size_limit(tmp_path, settings):
    settings.IMPORT_MAX_BYTES = 64
    path = write(tmp_path, "simple.csv", SIMPLE)

    with pytest.raises(ImportFileError, match=r"limit is 0\.0 MB.*IMPORT_MAX_BYTES"):
        import_transactions(path)


def test_a_generated_file_over_the_default_limit_is_refused_at_once(tmp_path):
    # Each line is 50 bytes; 1.1 million lines make about 55 MB.
    line = b"2025-12-01,COFFEE SHOP NUMBER 0001,-3.50,Checking\n"
    path = tmp_path / "huge.csv"
    with open(path, "wb") as out:
        out.write(b"date,description,amount,account\n")
        block = line * 10_000
        for _ in range(110):
            out.write(block)
    assert path.stat().st_size > 50 * 1024 * 1024

    started = time.monotonic()
    with pytest.raises(ImportFileError, match=r"The file is 5\d\.\d MB; the limit"):
        import_transactions(path)

    assert time.monotonic() - started < 1
    assert Transaction.objects.count() == 0


@pytest.mark.slow
def test_a_large_file_under_the_limit_imports_in_bounded_time(tmp_path):
    count = 50_000
    path = tmp_path / "large.csv"
    with open(path, "w", newline="") as out:
        writer = csv.writer(out)
        writer.writerow(["Posting Date", "Details", "Amount", "Account", "Category"])
        for n in range(count):
            writer.writerow(
                [
                    f"{1 + n % 12:02d}/{1 + n % 28:02d}/2025",
                    f"POS DEBIT STORE {n % 500} AUSTIN TX",
                    f"-{n % 300}.{n % 100:02d}",
                    f"Card {n % 4}",
                    "Groceries" if n % 3 else "",
                ]
            )

    started = time.monotonic()
    result = import_transactions(path)
    elapsed = time.monotonic() - started

    assert result.inserted == count and not result.errors
    assert result.labels_written == count - len(range(0, count, 3))
    assert elapsed < 20, f"{count} rows took {elapsed:.1f} s"


# ---------------------------------------------------------------------------
# Duplicates
# ---------------------------------------------------------------------------


def test_reimport_with_bank_ids_adds_nothing():
    import_transactions(FILES / "transactions.json")

    again = import_transactions(FILES / "transactions.json")

    assert (again.inserted, again.duplicates, again.duplicates_stored) == (0, 3, 3)
    assert Transaction.objects.count() == 3


def test_reimport_without_bank_ids_adds_nothing_and_identical_rows_stay_two():
    options = ImportOptions(account="Chase Sapphire")
    first = import_transactions(FILES / "card_signed.csv", options)

    again = import_transactions(FILES / "card_signed.csv", options)

    # The two identical coffees on one day are two transactions, both times.
    assert first.inserted == 5
    coffees = Transaction.objects.filter(description__startswith="SQ *BLUE")
    assert coffees.count() == 2
    assert (again.inserted, again.duplicates) == (0, 5)
    assert Transaction.objects.count() == 5


def test_a_later_export_with_one_more_identical_row_adds_only_that_row(tmp_path):
    head = "date,description,amount,account\n"
    coffee = "2025-12-01,COFFEE,-3.50,Checking\n"
    import_transactions(write(tmp_path, "a.csv", head + coffee))

    result = import_transactions(write(tmp_path, "b.csv", head + coffee * 2))

    assert (result.inserted, result.duplicates) == (1, 1)
    assert Transaction.objects.count() == 2


def test_repeated_bank_id_within_a_file_counts_as_a_duplicate(tmp_path):
    path = write(
        tmp_path,
        "repeat.csv",
        "date,description,amount,account,transaction id\n"
        "2025-12-01,FIRST,-1,A,X1\n"
        "2025-12-01,SECOND,-1,A,X1\n",
    )

    result = import_transactions(path)

    assert (result.inserted, result.duplicates_in_file) == (1, 1)
    assert Transaction.objects.get().description == "FIRST"


def test_soft_deleted_transactions_are_not_imported_again(tmp_path):
    path = write(tmp_path, "simple.csv", SIMPLE)
    import_transactions(path)
    Transaction.objects.filter(description="COFFEE").update(deleted_at=timezone.now())

    result = import_transactions(path)

    assert result.inserted == 0
    assert Transaction.objects.count() == 1


def test_fingerprint_is_the_documented_digest():
    expected = hashlib.sha256(
        b"Checking\x1f2025-12-01\x1f-3.50\x1fSQ *BLUE BOTTLE\x1f2"
    ).hexdigest()[:40]

    assert fingerprint(
        "Checking", date(2025, 12, 1), Decimal("-3.5"), "  SQ  *BLUE\tBOTTLE ", 2
    ) == ("fp:" + expected)


def test_dry_run_writes_nothing_and_forecasts_duplicates_and_labels(tmp_path):
    head = "date,description,amount,account,category\n"
    first = "2025-12-01,COFFEE,-3.50,Checking,Coffee Shops\n"
    second = "2025-12-02,LUNCH,-12.00,Checking,Restaurants\n"
    import_transactions(write(tmp_path, "a.csv", head + first))
    set_label(Transaction.objects.get().pk, "Food & Dining", "human")
    history = LabelHistory.objects.count()

    result = import_transactions(
        write(tmp_path, "b.csv", head + first + second), ImportOptions(dry_run=True)
    )

    assert result.dry_run and not result.committed
    assert (result.inserted, result.duplicates) == (1, 1)
    assert (result.labels_written, result.labels_skipped) == (1, 1)
    assert [row.description for row in result.preview] == ["COFFEE", "LUNCH"]
    assert Transaction.objects.count() == 1
    assert LabelHistory.objects.count() == history


# ---------------------------------------------------------------------------
# Labels and categories
# ---------------------------------------------------------------------------


def test_category_column_writes_import_labels_with_history():
    result = import_transactions(FILES / "transactions.json")

    assert (result.labels_written, result.labels_skipped) == (2, 0)
    labels = {
        label.txn.external_id: (label.label_id, label.source)
        for label in TransactionLabel.objects.select_related("txn")
    }
    assert labels == {"T-100": ("Music", "import"), "T-102": ("Refunds", "import")}
    assert set(
        LabelHistory.objects.values_list("operation", "new_label", "new_source")
    ) == {("insert", "Music", "import"), ("insert", "Refunds", "import")}


def test_import_label_never_overwrites_a_human_label(tmp_path):
    import_transactions(FILES / "transactions.json")
    spotify = Transaction.objects.get(external_id="T-100")
    set_label(spotify.pk, "Streaming", "human")
    changed = write(
        tmp_path,
        "changed.json",
        (FILES / "transactions.json").read_text().replace('"Music"', '"Software"'),
    )

    result = import_transactions(changed)

    assert (result.labels_written, result.labels_skipped) == (0, 1)
    assert result.labels_unchanged == 1  # T-102 keeps its identical import label
    spotify.label.refresh_from_db()
    assert (spotify.label.label_id, spotify.label.source) == ("Streaming", "human")


def test_human_labels_record_the_importing_user(tmp_path):
    user = get_user_model().objects.create_user("importer")

    import_transactions(
        FILES / "transactions.json", ImportOptions(labels_as="human", actor=user)
    )

    label = TransactionLabel.objects.get(txn__external_id="T-100")
    assert (label.source, label.labeled_by) == ("human", user)
    assert LabelHistory.objects.filter(actor=user).count() == 2


def test_categories_match_regardless_of_case_and_spacing(tmp_path):
    path = write(
        tmp_path,
        "case.csv",
        "date,description,amount,account,category\n"
        "2025-12-01,A,-1,X,  coffee   SHOPS \n",
    )

    import_transactions(path)

    assert TransactionLabel.objects.get().label_id == "Coffee Shops"


def test_unknown_categories_are_reported_per_row_and_skipped(tmp_path):
    result = import_transactions(
        FILES / "card_signed.csv", ImportOptions(account="Chase")
    )

    assert result.unknown_categories == {"Food & Drink": 1}
    assert result.warnings == [
        (6, "category", "unknown category 'Food & Drink'; label skipped")
    ]
    assert result.inserted == 5 and result.labels_written == 4
    assert not Category.objects.filter(name="Food & Drink").exists()


def test_unknown_categories_are_created_when_asked(tmp_path):
    result = import_transactions(
        FILES / "card_signed.csv",
        ImportOptions(account="Chase", create_categories=True),
    )

    assert result.categories_created == ["Food & Drink"] and not result.warnings
    assert result.labels_written == 5
    assert Category.objects.get(name="Food & Drink").parent is None


# ---------------------------------------------------------------------------
# Features
# ---------------------------------------------------------------------------


def test_feature_builds_are_queued_after_commit(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        result = import_transactions(FILES / "transactions.json")

    assert len(callbacks) == 1
    assert callbacks[0].func is enqueue_feature_builds
    new_ids = callbacks[0].args[0]
    stored = sorted(Transaction.objects.values_list("id", flat=True))
    assert new_ids == result.new_ids == stored
    assert not FeatureVector.objects.exists()

    # What the queued task does on a worker.
    build_transaction_features_task.run(new_ids)

    assert set(FeatureVector.objects.values_list("txn_id", flat=True)) == set(new_ids)


def test_nothing_is_queued_when_nothing_is_new(django_capture_on_commit_callbacks):
    import_transactions(FILES / "transactions.json")

    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        import_transactions(FILES / "transactions.json")
        import_transactions(FILES / "bad_rows.csv")

    assert callbacks == []


# ---------------------------------------------------------------------------
# The shared sample and the round trip through export
# ---------------------------------------------------------------------------


@pytest.fixture
def sample():
    return SAMPLE


SAMPLE_MAPPING = {
    "date": "date",
    "description": "description",
    "amount": "amount",
    "account": "account",
    "category": "category",
}


def test_sample_export_imports_with_created_categories(sample):
    result = import_transactions(
        sample, ImportOptions(mapping=SAMPLE_MAPPING, create_categories=True)
    )

    assert (result.rows_read, result.inserted, result.invalid) == (808, 808, 0)
    assert result.labels_written == 808
    assert "Credit Card Payment" in result.categories_created
    assert Transaction.objects.values("account").distinct().count() == 3

    again = import_transactions(
        sample, ImportOptions(mapping=SAMPLE_MAPPING, create_categories=True)
    )
    assert (again.inserted, again.labels_written, again.labels_unchanged) == (
        0,
        0,
        808,
    )


def test_sample_export_reports_unknown_categories(sample):
    out = io.StringIO()

    call_command(
        "import_transactions",
        str(sample),
        *(f"--map={field}={column}" for field, column in SAMPLE_MAPPING.items()),
        stdout=out,
    )

    text = out.getvalue()
    assert "Unknown categories on 328 rows" in text
    assert "'Credit Card Payment' (143)" in text
    assert "more errors and warnings not listed" in text
    assert Transaction.objects.count() == 808
    assert TransactionLabel.objects.count() == 808 - 328


def test_export_round_trips_through_import(tmp_path, make_txn):
    user = get_user_model().objects.create_user("alice")
    labeled = make_txn(description="=HYPERLINK(evil)", amount=Decimal("-9.99"))
    set_label(labeled.pk, "Groceries", "human", actor=user)
    make_txn(account="Savings", posted_on=date(2025, 1, 1))
    output = tmp_path / "export.csv"

    call_command("export_transactions", f"--output={output}", stdout=io.StringIO())

    exported = list(csv.DictReader(output.open(newline="")))
    assert [row["account"] for row in exported] == ["Savings", "Checking 1234"]
    assert exported[1] == {
        "date": "2025-03-14",
        "description": "'=HYPERLINK(evil)",
        "amount": "-9.99",
        "currency": "USD",
        "account": "Checking 1234",
        "external_id": labeled.external_id,
        "label": "Groceries",
        "label_source": "human",
        "labeled_by": "alice",
    }
    result = import_transactions(output, ImportOptions(labels_as="human"))
    assert (result.inserted, result.duplicates, result.labels_unchanged) == (0, 2, 1)
    assert result.preview[1].description == "=HYPERLINK(evil)"


def test_export_command_filters(tmp_path, make_txn):
    make_txn(posted_on=date(2025, 1, 1))
    make_txn(posted_on=date(2025, 2, 1))
    make_txn(posted_on=date(2025, 2, 2), account="Savings")
    make_txn(posted_on=date(2025, 3, 1))
    output = tmp_path / "filtered.csv"

    call_command(
        "export_transactions",
        f"--output={output}",
        "--since=2025-01-15",
        "--until=2025-02-28",
        "--account=Checking 1234",
        stdout=io.StringIO(),
    )

    exported = list(csv.DictReader(output.open(newline="")))
    assert [row["date"] for row in exported] == ["2025-02-01"]
