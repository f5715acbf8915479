"""Compute point-in-time features for a frame of transactions.

``compute_features`` is pure: it takes transactions as a polars frame and
returns one feature row per input row. History features look only at rows
of the same account and canonical merchant that come *before* the row in
the order ``(posted_on, id)``: earlier days, then earlier ids on the same
day. A frame must therefore hold each row's whole history for the result to
be right; the builders in ``mlcore.features.build`` take care of that.

Every feature is documented in ``docs/features.md``. Change
``FEATURE_VERSION`` whenever a definition changes, so builds rewrite old rows.
"""

import polars as pl

from mlcore.features.merchant import merchant_expr, tokens_expr

FEATURE_VERSION = 1

# Columns a frame must have: transactions as they are in the database, with
# the amount in integer cents so that sums of amounts are exact.
INPUT_SCHEMA = {
    "id": pl.Int64,
    "account": pl.Utf8,
    "posted_on": pl.Date,
    "description": pl.Utf8,
    "amount_cents": pl.Int64,
}

# Columns derived from the description alone, which callers may supply.
TEXT_SCHEMA = {"merchant": pl.Utf8, "tokens": pl.List(pl.Utf8)}

# Feature columns in ``ml_features`` order (without ``computed_at``).
FEATURE_COLUMNS = [
    "txn_id",
    "account",
    "ts_month",
    "merchant",
    "tokens",
    "amount",
    "abs_amount",
    "log_amount",
    "is_credit",
    "is_round_amount",
    "dow",
    "is_weekend",
    "day_of_month",
    "month",
    "is_subscription",
    "days_since_prev_merchant",
    "merchant_prior_count",
    "amount_deviation",
    "feature_version",
]

# Gaps between charges, in days, that count as a regular cadence. Monthly
# allows for short and long months and for charges moved off weekends.
CADENCES = {"weekly": (6, 8), "monthly": (26, 35), "yearly": (358, 372)}

# Two charges have a stable amount when they differ by at most this many
# cents, or by at most 1/STABLE_AMOUNT_FRACTION of the earlier charge.
STABLE_AMOUNT_CENTS = 100
STABLE_AMOUNT_FRACTION = 20

_GROUP = ["account", "merchant"]


def compute_features(transactions):
    """Return the features of every row in ``transactions``.

    Rows may carry ``merchant`` and ``tokens`` already (stored history whose
    description is not re-read); where those are missing they are derived
    from ``description``.
    """
    frame = transactions.select(
        *(pl.col(name).cast(dtype) for name, dtype in INPUT_SCHEMA.items()),
        *(
            pl.col(name)
            if name in transactions.columns
            else pl.lit(None, dtype).alias(name)
            for name, dtype in TEXT_SCHEMA.items()
        ),
    )
    frame = _with_text_features(frame)
    frame = frame.sort("account", "merchant", "posted_on", "id")
    frame = frame.with_columns(abs_cents=pl.col("amount_cents").abs())
    frame = frame.with_columns(_history_features())
    return frame.select(
        txn_id=pl.col("id"),
        account=pl.col("account"),
        ts_month=pl.col("posted_on").dt.truncate("1mo"),
        merchant=pl.col("merchant"),
        tokens=pl.col("tokens"),
        amount=pl.col("amount_cents"),
        abs_amount=pl.col("abs_cents"),
        log_amount=(pl.col("abs_cents") / 100).log1p(),
        is_credit=pl.col("amount_cents") > 0,
        is_round_amount=(pl.col("abs_cents") % 100 == 0) & (pl.col("abs_cents") > 0),
        dow=pl.col("posted_on").dt.weekday().cast(pl.Int16) - 1,
        is_weekend=pl.col("posted_on").dt.weekday() >= 6,
        day_of_month=pl.col("posted_on").dt.day().cast(pl.Int16),
        month=pl.col("posted_on").dt.month().cast(pl.Int16),
        is_subscription=pl.col("is_subscription"),
        days_since_prev_merchant=pl.col("days_since_prev"),
        merchant_prior_count=pl.col("prior_count"),
        amount_deviation=pl.col("amount_deviation"),
        feature_version=pl.lit(FEATURE_VERSION, dtype=pl.Int32),
    ).sort("txn_id")


def _with_text_features(frame):
    missing = pl.col("merchant").is_null() | pl.col("tokens").is_null()
    derived = frame.filter(missing).with_columns(
        merchant=merchant_expr(pl.col("description")),
        tokens=tokens_expr(pl.col("description")),
    )
    return pl.concat([frame.filter(~missing), derived])


def _history_features():
    """Features from earlier rows of the same account and merchant.

    The frame is sorted by ``(account, merchant, posted_on, id)``, so within
    a group ``shift(1)`` is the previous transaction and a running sum minus
    the current value is the sum over strictly earlier rows.
    """
    date = pl.col("posted_on")
    cents = pl.col("amount_cents")
    abs_cents = pl.col("abs_cents")

    prior_count = pl.int_range(pl.len(), dtype=pl.Int32).over(_GROUP)
    prior_abs_sum = (abs_cents.cum_sum() - abs_cents).over(_GROUP)

    prev_date = date.shift(1).over(_GROUP)
    prev2_date = date.shift(2).over(_GROUP)
    prev_cents = cents.shift(1).over(_GROUP)
    prev2_cents = cents.shift(2).over(_GROUP)

    gap = (date - prev_date).dt.total_days()
    gap_before = (prev_date - prev2_date).dt.total_days()

    # The deviation of |amount| from the mean of earlier |amounts|, as a
    # fraction of that mean, from exact integer sums: |a| * n / sum - 1.
    deviation = (
        pl.when((prior_count > 0) & (prior_abs_sum > 0))
        .then(abs_cents * prior_count / prior_abs_sum - 1.0)
        .otherwise(None)
    )

    return [
        prior_count.alias("prior_count"),
        gap.cast(pl.Int32).alias("days_since_prev"),
        deviation.alias("amount_deviation"),
        _is_subscription(cents, prev_cents, prev2_cents, gap, gap_before).alias(
            "is_subscription"
        ),
    ]


def _is_subscription(cents, prev_cents, prev2_cents, gap, gap_before):
    """A charge that repeats the two before it at one cadence and amount."""
    same_cadence = pl.lit(False)
    for low, high in CADENCES.values():
        same_cadence = same_cadence | (
            gap.is_between(low, high) & gap_before.is_between(low, high)
        )

    charges = (cents < 0) & (prev_cents < 0) & (prev2_cents < 0)
    stable = _stable(cents, prev_cents) & _stable(prev_cents, prev2_cents)
    return (charges & same_cadence & stable).fill_null(False)


def _stable(later, earlier):
    difference = (later - earlier).abs()
    return (difference <= STABLE_AMOUNT_CENTS) | (
        difference * STABLE_AMOUNT_FRACTION <= earlier.abs()
    )
