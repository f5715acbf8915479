"""Point-in-time features agree with a slow reference, however they are built.

Hypothesis draws random transaction histories. Each history is built three
ways — one full build, month windows and account partitions in random
order, and day by day as transactions arrive — and every way must give
exactly the features of ``reference_features`` below, a direct reading of
the definitions in docs/features.md. Building day by day also checks that
later transactions never change the features of earlier ones.
"""

import math
from datetime import date, timedelta
from decimal import Decimal

import pytest
from django.db import transaction
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from labeling.models import Transaction
from mlcore.features import build
from mlcore.features.compute import FEATURE_COLUMNS, FEATURE_VERSION
from mlcore.features.merchant import normalize_merchant, tokenize
from mlcore.models import FeatureVector

pytestmark = pytest.mark.django_db

START = date(2024, 11, 1)

# A few shops, each written several ways, so that groups form across formats.
DESCRIPTIONS = [
    "NETFLIX.COM 866-579-7172 CA",
    "Netflix.com",
    "SQ *BLUE BOTTLE COFFEE OAKLAND CA",
    "BLUE BOTTLE COFFEE #12 OAKLAND CA",
    "SPOTIFY USA 877-778-1161 NY",
    "PLANET FITNESS #1234 ALTOONA PA",
    "SHEETZ 0412 ALTOONA PA",
    "AMZN MKTP US*2K4X81 AMZN.COM/BILL WA",
]
ACCOUNTS = ["Checking 1234", "Visa 9876"]


@st.composite
def histories(draw):
    """Rows of (day offset, account, description, amount in cents)."""
    rows = draw(
        st.lists(
            st.tuples(
                st.integers(0, 120),
                st.sampled_from(ACCOUNTS),
                st.sampled_from(DESCRIPTIONS),
                st.sampled_from([-1599, -1599, -1649, -450, -2000, -120000, 250000]),
            ),
            min_size=1,
            max_size=30,
        )
    )
    # A monthly charge, so that subscriptions occur in most histories.
    first = draw(st.integers(0, 20))
    for month in range(draw(st.integers(0, 4))):
        jitter = draw(st.integers(-2, 2))
        rows.append((first + 30 * month + jitter, ACCOUNTS[0], DESCRIPTIONS[0], -1599))
    # Insertion order decides ids, and so the order within a day.
    return draw(st.permutations(rows))


def reference_features(transactions):
    """Compute features one transaction at a time from their definitions."""
    merchants = {t.pk: normalize_merchant(t.description) for t in transactions}
    features = {}
    for t in transactions:
        cents = int(t.amount * 100)
        prior = sorted(
            (
                p
                for p in transactions
                if p.account == t.account
                and merchants[p.pk] == merchants[t.pk]
                and (p.posted_on, p.pk) < (t.posted_on, t.pk)
            ),
            key=lambda p: (p.posted_on, p.pk),
        )
        prior_abs = sum(abs(int(p.amount * 100)) for p in prior)
        features[t.pk] = {
            "account": t.account,
            "ts_month": t.posted_on.replace(day=1),
            "merchant": merchants[t.pk],
            "tokens": tokenize(t.description),
            "amount": t.amount,
            "abs_amount": abs(t.amount),
            "log_amount": math.log1p(abs(cents) / 100),
            "is_credit": cents > 0,
            "is_round_amount": cents != 0 and cents % 100 == 0,
            "dow": t.posted_on.weekday(),
            "is_weekend": t.posted_on.weekday() >= 5,
            "day_of_month": t.posted_on.day,
            "month": t.posted_on.month,
            "is_subscription": reference_is_subscription(t, prior),
            "days_since_prev_merchant": (
                (t.posted_on - prior[-1].posted_on).days if prior else None
            ),
            "merchant_prior_count": len(prior),
            "amount_deviation": (
                abs(cents) * len(prior) / prior_abs - 1.0 if prior_abs else None
            ),
            "feature_version": FEATURE_VERSION,
        }
        features[t.pk] = comparable(features[t.pk])
    return features


def reference_is_subscription(t, prior):
    if len(prior) < 2:
        return False
    older, previous = prior[-2], prior[-1]
    charges = [int(x.amount * 100) for x in (older, previous, t)]
    if any(c >= 0 for c in charges):
        return False
    gaps = [
        (previous.posted_on - older.posted_on).days,
        (t.posted_on - previous.posted_on).days,
    ]
    cadences = [(6, 8), (26, 35), (358, 372)]
    regular = any(all(low <= g <= high for g in gaps) for low, high in cadences)

    def stable(later, earlier):
        return abs(later - earlier) <= 100 or abs(later - earlier) * 20 <= abs(earlier)

    return regular and stable(charges[2], charges[1]) and stable(charges[1], charges[0])


def stored_features():
    return {
        row.pop("txn_id"): comparable(row)
        for row in FeatureVector.objects.values(*FEATURE_COLUMNS)
    }


def comparable(features):
    # Python's and polars' log1p may differ in the last bit.
    return {**features, "log_amount": round(features["log_amount"], 12)}


def insert(rows, first_external_id=0):
    return [
        Transaction.objects.create(
            account=account,
            external_id=str(first_external_id + index),
            posted_on=START + timedelta(days=offset),
            description=description,
            amount=Decimal(cents).scaleb(-2),
        )
        for index, (offset, account, description, cents) in enumerate(rows)
    ]


def by_external_id(features, transactions):
    external = {t.pk: t.external_id for t in transactions}
    return {external[pk]: values for pk, values in features.items()}


@settings(
    max_examples=25,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(rows=histories(), data=st.data())
def test_every_way_of_building_matches_the_reference(rows, data):
    with transaction.atomic():
        transactions = insert(rows)
        expected = reference_features(transactions)

        build.build_window()
        assert stored_features() == expected

        FeatureVector.objects.all().delete()
        months = sorted({t.posted_on.replace(day=1) for t in transactions})
        for month in data.draw(st.permutations(months)):
            month_end = (month + timedelta(days=32)).replace(day=1) - timedelta(days=1)
            partitions = data.draw(st.permutations(range(build.PARTITIONS)))
            cut = data.draw(st.integers(1, build.PARTITIONS - 1))
            for chunk in data.draw(
                st.permutations([partitions[:cut], partitions[cut:]])
            ):
                build.build_window(month, month_end, chunk)
        assert stored_features() == expected

        expected_by_row = by_external_id(expected, transactions)
        transaction.set_rollback(True)

    with transaction.atomic():
        order = {id(row): index for index, row in enumerate(rows)}
        arrived = []
        for day in sorted({offset for offset, *_ in rows}):
            todays = [row for row in rows if row[0] == day]
            before = stored_features()
            new = [
                Transaction.objects.create(
                    account=account,
                    external_id=str(order[id(row)]),
                    posted_on=START + timedelta(days=offset),
                    description=description,
                    amount=Decimal(cents).scaleb(-2),
                )
                for row in todays
                for offset, account, description, cents in [row]
            ]
            arrived += new
            build.build_transactions([t.pk for t in new])

            after = stored_features()
            assert {pk: after[pk] for pk in before} == before
        assert by_external_id(stored_features(), arrived) == expected_by_row
        transaction.set_rollback(True)


def test_a_backdated_transaction_updates_the_later_history():
    transactions = insert(
        [
            (0, ACCOUNTS[0], DESCRIPTIONS[0], -1599),
            (60, ACCOUNTS[0], DESCRIPTIONS[1], -1599),
        ]
    )
    build.build_window()

    late_arrival = insert([(30, ACCOUNTS[0], DESCRIPTIONS[0], -1599)], 100)
    build.build_transactions([late_arrival[0].pk])

    everything = transactions + late_arrival
    assert stored_features() == reference_features(everything)
    assert stored_features()[transactions[1].pk]["merchant_prior_count"] == 2


def test_a_soft_deleted_transaction_loses_its_features_and_leaves_the_history():
    transactions = insert(
        [(offset, ACCOUNTS[0], DESCRIPTIONS[0], -1599) for offset in (0, 30, 60)]
    )
    build.build_window()

    Transaction.objects.filter(pk=transactions[1].pk).update(
        deleted_at="2025-01-01T00:00Z"
    )
    build.build_transactions([transactions[1].pk])

    live = [transactions[0], transactions[2]]
    assert stored_features() == reference_features(live)


def test_building_twice_writes_nothing_the_second_time():
    insert([(offset, ACCOUNTS[0], DESCRIPTIONS[2], -450) for offset in range(10)])

    first = build.build_window()
    second = build.build_window()

    assert (first.written, second.written) == (10, 0)
    assert build.pending_transaction_ids() == []


def test_online_features_agree_with_the_stored_ones():
    insert([(offset, ACCOUNTS[0], DESCRIPTIONS[0], -1599) for offset in (0, 30, 61)])
    build.build_window()
    raw = {
        "account": ACCOUNTS[0],
        "posted_on": START + timedelta(days=91),
        "description": "NETFLIX.COM 866-579-7172 CA",
        "amount": Decimal("-15.99"),
    }

    online = build.features_for_new([raw])[0]
    saved = insert([(91, raw["account"], raw["description"], -1599)], 100)[0]
    build.build_transactions([saved.pk])

    stored = stored_features()[saved.pk]
    assert comparable({k: online[k] for k in stored}) == stored
    assert stored["is_subscription"] is True
