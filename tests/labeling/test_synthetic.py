"""The synthetic transaction generator, its catalogue, loader and command.

Most tests inspect generated rows in memory; the command tests load them
into the real test database.
"""

import hashlib
import itertools
import os
import re
import subprocess
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from labeling.labels import set_label
from labeling.models import (
    Category,
    LabelHistory,
    Rule,
    RuleMatch,
    RuleRun,
    Transaction,
    TransactionLabel,
)
from labeling.synthetic import demo_rules
from labeling.synthetic import generate as gen
from labeling.synthetic import merchants as mc
from labeling.synthetic.demo_rules import DEMO_RULES
from labeling.synthetic.generate import GenerationParams, generate

ROOT = Path(__file__).resolve().parents[2]
COUNT = 20_000


@pytest.fixture(scope="module")
def rows():
    return list(generate(GenerationParams(count=COUNT, seed=11)))


@pytest.fixture(scope="module")
def fully_labeled():
    return list(generate(GenerationParams(count=COUNT, seed=12, label_fraction=1.0)))


def _rate(rows, predicate):
    return sum(1 for row in rows if predicate(row)) / len(rows)


def _by_household(rows):
    groups = defaultdict(list)
    for row in rows:
        groups[row.account.split(" ", 1)[0]].append(row)
    return groups


def _checking_accounts(rows):
    """Paychecks land in checking, so accounts with paychecks are checking."""
    return {row.account for row in rows if row.kind == gen.PAYCHECK}


def _digest(params):
    digest = hashlib.sha256()
    for row in generate(params):
        digest.update(repr(tuple(row)).encode())
    return digest.hexdigest()


# Reproducibility and shape ---------------------------------------------------


def test_same_seed_gives_identical_rows():
    params = GenerationParams(count=5_000, seed=3)

    assert list(generate(params)) == list(generate(params))


def test_output_does_not_depend_on_string_hashing():
    script = (
        "from labeling.synthetic.generate import GenerationParams, generate\n"
        "import hashlib\n"
        "d = hashlib.sha256()\n"
        "for row in generate(GenerationParams(count=3000, seed=5)):\n"
        "    d.update(repr(tuple(row)).encode())\n"
        "print(d.hexdigest())\n"
    )
    digests = set()
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", script],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        digests.add(result.stdout.strip())

    assert digests == {_digest(GenerationParams(count=3000, seed=5))}


def test_different_seed_gives_different_rows():
    first = list(generate(GenerationParams(count=2_000, seed=1)))
    second = list(generate(GenerationParams(count=2_000, seed=2)))

    assert first != second
    assert {r.external_id for r in first}.isdisjoint(r.external_id for r in second)


def test_label_fraction_changes_labels_but_not_transactions():
    low = list(generate(GenerationParams(count=3_000, seed=4, label_fraction=0.2)))
    high = list(generate(GenerationParams(count=3_000, seed=4, label_fraction=0.6)))

    assert [r[:5] for r in low] == [r[:5] for r in high]
    # A row labeled at the lower fraction keeps its label at the higher one.
    pairs = zip(low, high, strict=True)
    assert all(more.label for fewer, more in pairs if fewer.label is not None)


@pytest.mark.parametrize(
    ("count", "months"),
    [(0, 12), (1, 12), (37, 1), (999, 3), (2_500, 12), (12_345, 24), (20_001, 6)],
)
def test_exact_count(count, months):
    params = GenerationParams(count=count, months=months, seed=9)

    assert sum(1 for _ in generate(params)) == count


@pytest.mark.parametrize(
    ("end", "months", "start"),
    [
        (date(2026, 11, 30), 12, date(2025, 12, 1)),
        (date(2025, 3, 31), 1, date(2025, 3, 1)),
        (date(2024, 2, 29), 3, date(2023, 11, 30)),
    ],
)
def test_dates_fall_in_the_window_ending_at_end(end, months, start):
    params = GenerationParams(count=4_000, months=months, seed=2, end=end)
    dates = [row.posted_on for row in generate(params)]

    assert gen.Calendar(end, months).start == start
    assert min(dates) >= start
    assert max(dates) <= end
    # The whole window is used, not just part of it.
    assert min(dates) - start < timedelta(days=3)
    assert end - max(dates) < timedelta(days=3)


def test_default_end_is_a_fixed_date():
    assert GenerationParams(count=1).end == date(2026, 11, 30)


def test_households_are_plausibly_sized(rows):
    households = _by_household(rows)

    assert len(households) == gen.household_count(GenerationParams(count=COUNT))
    for household_rows in households.values():
        accounts = {row.account for row in household_rows}
        assert 2 <= len(accounts) <= 4
        assert 60 <= len(household_rows) / 12 <= 170
    assert all(len(row.account) <= 64 for row in rows)


# The catalogue -------------------------------------------------------------


def test_catalogue_is_large_and_covers_every_category():
    names = {merchant.name for merchant in mc.MERCHANTS}

    assert len(names) >= 150
    assert {m.category for m in mc.MERCHANTS} == set(mc.TOP_LEVEL_CATEGORIES)
    shop_categories = {m.category for m in mc.MERCHANTS if m.kind == mc.SHOP}
    assert len(shop_categories) >= 12


def test_catalogue_categories_match_the_seeded_taxonomy(db):
    top_level = set(
        Category.objects.filter(parent__isnull=True).values_list("name", flat=True)
    )

    assert set(mc.TOP_LEVEL_CATEGORIES) == top_level


def test_generated_rows_cover_every_category_and_many_merchants(rows):
    assert {row.category for row in rows} == set(mc.TOP_LEVEL_CATEGORIES)
    assert len({row.merchant for row in rows}) >= 150


# Messy descriptors -----------------------------------------------------------

_PREFIXES = ("SQ *", "TST*", "PAYPAL *", "AMZN MKTP US*", "AMAZON.COM*", "SP * ")
_GLUED_CITIES = {
    f"{city[:13]}{state}".upper()
    for _, towns, _ in mc.METROS
    for city, state in towns
    if len(city) >= 13
}


@pytest.mark.parametrize(
    ("name", "pattern", "low", "high"),
    [
        (
            "processor prefix",
            r"SQ \*|TST\*|PAYPAL \*|AMZN MKTP|AMAZON\.COM\*|SP \* |GOOGLE \*",
            0.08,
            0.3,
        ),
        ("store number after #", r"#\s?\d{2,}", 0.15, 0.5),
        ("store number after a space", r"\b[A-Z][A-Z'&-]+ \d{3,5}\b", 0.15, 0.5),
        (
            "card mask",
            r"X{4}\d{4}|\*\d{4}\b|\.\.\.\d{4}|CA?RD \d{4}|CRD \d{4}",
            0.1,
            0.4,
        ),
        ("date inside", r"\b\d\d/\d\d\b|CHECKCARD \d{4}", 0.08, 0.35),
        ("double space", r"\S  +\S", 0.04, 0.25),
        ("ACH company id or reference", r"PPD|WEB ID|CO ID|REF#", 0.03, 0.2),
    ],
)
def test_descriptors_carry_messy_patterns_at_realistic_rates(
    rows, name, pattern, low, high
):
    regex = re.compile(pattern, re.IGNORECASE)

    assert low <= _rate(rows, lambda r: regex.search(r.description)) <= high, name


def test_each_processor_prefix_appears(rows):
    upper = [row.description.upper() for row in rows]

    for prefix in _PREFIXES:
        assert any(prefix in text for text in upper), prefix
    for marker in ("GOOGLE *", "APPLE.COM/BILL"):
        assert any(marker in text for text in upper), marker


def test_marketplace_codes_are_random_per_purchase(rows):
    codes = [
        match.group(1)
        for row in rows
        if (match := re.search(r"AMZN MKTP US\*([A-Z0-9]{6})", row.description.upper()))
    ]

    assert len(codes) > 100
    assert len(set(codes)) > 0.95 * len(codes)


def test_cities_are_truncated_and_glued_to_the_state(rows):
    upper = [row.description.upper() for row in rows]

    assert any(any(glued in text for glued in _GLUED_CITIES) for text in upper)


def test_case_is_mostly_upper_with_some_title_and_lower(rows):
    def is_title(text):
        return any(c.islower() for c in text) and any(c.isupper() for c in text)

    assert _rate(rows, lambda r: r.description.isupper()) > 0.6
    assert _rate(rows, lambda r: is_title(r.description)) > 0.02
    assert _rate(rows, lambda r: r.description.islower()) > 0.001


def test_banks_write_the_same_merchant_differently(rows):
    # What comes before the merchant's name, with digits masked: one shape
    # per bank export style.
    shapes = {
        re.sub(r"\d", "9", row.description.upper().split("STARBUCKS")[0])
        for row in rows
        if row.merchant == "starbucks"
    }

    assert len(shapes) >= 5


# Recurring patterns -------------------------------------------------------------


def _posted_soon_after(posted, day_of_month):
    """Whether ``posted`` is 0-3 days after the ``day_of_month`` before it."""
    scheduled = posted.replace(day=day_of_month)
    if scheduled > posted:
        previous = posted.replace(day=1) - timedelta(days=1)
        scheduled = previous.replace(day=day_of_month)
    return (posted - scheduled).days <= 3


def test_subscriptions_recur_monthly_with_stable_amounts(rows):
    monthly = {m.key for m in mc.of_kind(mc.MONTHLY)}
    series = defaultdict(list)
    for row in rows:
        if row.kind == gen.SUBSCRIPTION and row.merchant in monthly:
            series[(row.account, row.merchant)].append(row)

    assert len(series) >= 20
    for charges in series.values():
        assert len(charges) in (11, 12, 13)
        assert len({row.amount for row in charges}) == 1
        assert Decimal(charges[0].amount) < 0
        days = [row.posted_on for row in charges]
        gaps = [(b - a).days for a, b in itertools.pairwise(days)]
        assert all(25 <= gap <= 34 for gap in gaps)
        # A stable day of the month, give or take the posting lag.
        assert any(
            all(_posted_soon_after(day, dom) for day in days) for dom in range(1, 29)
        )


def test_annual_subscriptions_renew_once_a_year(rows):
    annual = {m.key for m in mc.of_kind(mc.ANNUAL)}
    counts = Counter(
        (row.account, row.merchant) for row in rows if row.merchant in annual
    )

    assert counts
    assert set(counts.values()) == {1}


def test_every_household_has_biweekly_positive_paychecks(rows):
    for household_rows in _by_household(rows).values():
        by_employer = defaultdict(list)
        for row in household_rows:
            if row.kind == gen.PAYCHECK:
                assert Decimal(row.amount) > 0
                by_employer[row.merchant].append(row.posted_on)
        biweekly = [
            days
            for days in by_employer.values()
            if all((b - a).days == 14 for a, b in itertools.pairwise(days))
        ]
        assert biweekly
        assert all(len(days) >= 25 for days in biweekly)
        assert all(day.weekday() == 4 for days in biweekly for day in days)


def test_rent_or_mortgage_is_paid_every_month(rows):
    for household_rows in _by_household(rows).values():
        housing = [row for row in household_rows if row.kind == gen.HOUSING]
        months = {(row.posted_on.year, row.posted_on.month) for row in housing}
        assert len(months) >= 11
        assert all(Decimal(row.amount) < 0 for row in housing)


def _pairs(rows, kind):
    sides = defaultdict(list)
    for row in rows:
        if row.kind == kind:
            household = row.account.split(" ", 1)[0]
            sides[(household, row.posted_on, abs(Decimal(row.amount)))].append(row)
    return sides


def test_transfers_between_own_accounts_show_both_sides(rows):
    pairs = _pairs(rows, gen.TRANSFER)

    assert pairs
    for sides in pairs.values():
        assert len(sides) % 2 == 0
        assert sum(Decimal(row.amount) for row in sides) == 0
        assert len({row.account for row in sides}) == 2


def test_card_payments_show_both_sides(rows):
    pairs = _pairs(rows, gen.CARD_PAYMENT)
    checking = _checking_accounts(rows)

    assert pairs
    for sides in pairs.values():
        assert sum(Decimal(row.amount) for row in sides) == 0
        negative = {row.account for row in sides if Decimal(row.amount) < 0}
        positive = {row.account for row in sides if Decimal(row.amount) > 0}
        # Money leaves checking and arrives on a card.
        assert negative <= checking
        assert positive and not positive & checking


def test_refunds_fees_and_interest_are_present(rows):
    kinds = Counter(row.kind for row in rows)
    refunds = [row for row in rows if row.kind == gen.REFUND]

    assert 0.005 < kinds[gen.REFUND] / len(rows) < 0.03
    assert all(Decimal(row.amount) > 0 for row in refunds)
    assert all(mc.BY_KEY[row.merchant].refundable for row in refunds)
    assert kinds[gen.FEE] > 0
    assert kinds[gen.INTEREST] > 0


# Amount- and account-dependent categories --------------------------------------


def test_big_box_category_depends_on_amount_and_account(fully_labeled):
    checking = _checking_accounts(fully_labeled)
    target = [
        r for r in fully_labeled if r.merchant == "target" and r.kind == gen.PURCHASE
    ]
    categories = {row.category for row in target}

    assert {mc.HOUSEHOLD, mc.GROCERIES, mc.ELECTRONICS} <= categories
    for row in target:
        amount = -Decimal(row.amount)
        if amount < 20:
            assert row.category == mc.HOUSEHOLD
        elif amount >= 200:
            assert row.category == mc.ELECTRONICS
        elif row.account in checking:
            assert row.category == mc.GROCERIES
        else:
            assert row.category == mc.SHOPPING
    assert any(
        20 <= -Decimal(row.amount) < 200 and row.account not in checking
        for row in target
    )


def test_marketplace_and_fuel_categories_depend_on_amount(fully_labeled):
    amazon = [
        r
        for r in fully_labeled
        if r.merchant == "amazon_marketplace" and r.kind == gen.PURCHASE
    ]
    fuel = [
        r
        for r in fully_labeled
        if mc.BY_KEY[r.merchant].rule == mc.FUEL and r.kind == gen.PURCHASE
    ]

    assert {row.category for row in amazon} == {mc.SHOPPING, mc.ELECTRONICS}
    assert all(
        (row.category == mc.ELECTRONICS) == (-Decimal(row.amount) >= 150)
        for row in amazon
    )
    assert {row.category for row in fuel} == {mc.TRANSPORTATION, mc.DINING}
    assert all(
        (row.category == mc.DINING) == (-Decimal(row.amount) < 15) for row in fuel
    )


# Labels ------------------------------------------------------------------------


def test_label_fraction_and_source_shares_match_the_constants(rows):
    labeled = [row for row in rows if row.label is not None]
    shares = Counter(row.source for row in labeled)
    expected = dict(gen.LABEL_SOURCE_SHARES)

    assert abs(len(labeled) / len(rows) - 0.3) < 0.015
    assert abs(shares[gen.IMPORT] / len(labeled) - expected[gen.IMPORT]) < 0.03
    # Rows drawn for a rule label that no demo rule matches went to people.
    human_or_rule = (shares[gen.HUMAN] + shares[gen.RULE]) / len(labeled)
    assert abs(human_or_rule - expected[gen.HUMAN] - expected[gen.RULE]) < 0.03
    assert 0.02 < shares[gen.RULE] / len(labeled) < expected[gen.RULE]
    assert all(row.source is None for row in rows if row.label is None)


def _error_rate(rows, source):
    labeled = [row for row in rows if row.source == source]
    return sum(row.label != row.category for row in labeled) / len(labeled)


def test_import_labels_are_noisier_than_human_labels(fully_labeled):
    human = _error_rate(fully_labeled, gen.HUMAN)
    imported = _error_rate(fully_labeled, gen.IMPORT)

    assert human == 0
    assert abs(imported - gen.IMPORT_NOISE) < 0.02


def test_rule_labels_are_what_the_winning_demo_rule_says(fully_labeled):
    rule_rows = [row for row in fully_labeled if row.source == gen.RULE]
    specs = {spec["name"]: spec for spec in DEMO_RULES}

    assert {row.rule for row in rule_rows} == set(specs)
    for row in rule_rows[:2000]:
        spec = specs[row.rule]
        assert row.label == spec["category"]
        matcher = demo_rules.conditions(spec).matcher()
        amount = Decimal(row.amount)
        assert matcher(row.description, None, amount, row.account, row.posted_on.day)
    assert all(row.rule is None for row in fully_labeled if row.source != gen.RULE)


def test_only_the_sloppy_demo_rule_is_often_wrong(fully_labeled):
    rule_rows = [row for row in fully_labeled if row.source == gen.RULE]
    wrong = Counter(row.rule for row in rule_rows if row.label != row.category)
    total = Counter(row.rule for row in rule_rows)

    sloppy = "Anything with credit is income"
    assert wrong[sloppy] / total[sloppy] > 0.1
    for name, count in total.items():
        if name != sloppy:
            assert wrong[name] / count < 0.1, name


def test_labels_are_top_level_categories(fully_labeled):
    assert {row.label for row in fully_labeled} <= set(mc.TOP_LEVEL_CATEGORIES)


# Loading -------------------------------------------------------------------------


def _run(**options):
    out = StringIO()
    call_command("generate_transactions", stdout=out, **options)
    return out.getvalue()


def test_command_loads_exact_rows_and_labels(db):
    params = GenerationParams(count=3_000, seed=21, label_fraction=0.3)
    expected = list(generate(params))

    output = _run(count=3_000, seed=21, label_fraction=0.3)

    assert Transaction.objects.count() == 3_000
    stored = {
        (t.account, t.external_id): (t.posted_on, t.description, t.amount, t.currency)
        for t in Transaction.objects.all()
    }
    assert stored == {
        (r.account, r.external_id): (
            r.posted_on,
            r.description,
            Decimal(r.amount),
            "USD",
        )
        for r in expected
    }
    labels = {
        (label.txn.account, label.txn.external_id): (label.label_id, label.source)
        for label in TransactionLabel.objects.select_related("txn")
    }
    assert labels == {
        (r.account, r.external_id): (r.label, r.source) for r in expected if r.label
    }
    rules = dict(Rule.objects.values_list("name", "id"))
    assert set(rules) == {spec["name"] for spec in DEMO_RULES}
    rule_ids = {
        (label.txn.account, label.txn.external_id): label.rule_id
        for label in TransactionLabel.objects.select_related("txn")
    }
    assert rule_ids == {
        (r.account, r.external_id): rules.get(r.rule) for r in expected if r.label
    }
    assert LabelHistory.objects.filter(rule_id__isnull=False).count() == sum(
        1 for r in expected if r.rule
    )
    assert LabelHistory.objects.count() == len(labels)
    assert "3,000 transactions" in output
    # The demo rules were measured, so their figures show at once.
    assert "Measured 7 demo rules" in output
    assert RuleMatch.objects.exists()
    assert RuleRun.objects.filter(dry_run=True).count() == len(DEMO_RULES)


def test_second_run_inserts_nothing(db):
    _run(count=2_000, seed=8, months=6)
    labels = TransactionLabel.objects.count()

    output = _run(count=2_000, seed=8, months=6)

    assert Transaction.objects.count() == 2_000
    assert TransactionLabel.objects.count() == labels
    assert "Inserted 0 transactions and 0 labels" in output
    assert "2,000 transactions were already present" in output


def test_existing_labels_are_never_overwritten(db):
    _run(count=2_000, seed=13, label_fraction=0.0)
    assert not TransactionLabel.objects.exists()
    txn = Transaction.objects.order_by("id").first()
    set_label(txn.id, mc.GIFTS, "import")

    _run(count=2_000, seed=13, label_fraction=1.0)

    assert Transaction.objects.count() == 2_000
    assert TransactionLabel.objects.count() == 2_000
    kept = TransactionLabel.objects.get(txn=txn)
    assert (kept.label_id, kept.source) == (mc.GIFTS, "import")


def test_different_seeds_add_to_existing_data(db):
    _run(count=1_000, seed=30)
    _run(count=1_000, seed=31)

    assert Transaction.objects.count() == 2_000


def test_bad_arguments_are_reported(db):
    with pytest.raises(CommandError):
        _run(count=10, months=0)
    with pytest.raises(CommandError):
        _run(count=10, label_fraction=1.5)
    with pytest.raises(CommandError):
        call_command("generate_transactions", "--end", "30/11/2026", stdout=StringIO())
