"""Merchant label priors: only earlier labels of the same merchant count."""

from datetime import date, timedelta

import numpy as np
import polars as pl
from hypothesis import given, settings
from hypothesis import strategies as st

from mlcore.modeling import _priors_small
from mlcore.priors import merchant_priors

CLASSES = ["Groceries", "Dining", "Travel"]


def frame(rows):
    return pl.DataFrame(
        rows,
        schema={
            "merchant": pl.Utf8,
            "posted_on": pl.Date,
            "seq": pl.Int64,
            "label": pl.Utf8,
            "weight": pl.Float64,
        },
        orient="row",
    )


def reference(rows, classes, window):
    """The definition, one row at a time."""
    counts, last = [], []
    for merchant, day, seq, _, _ in rows:
        earlier = sorted(
            (h for h in rows if h[0] == merchant and h[3] in classes),
            key=lambda h: (h[1], h[2]),
        )
        earlier = [h for h in earlier if (h[1], h[2]) < (day, seq)][-window:]
        if not merchant:
            earlier = []
        counts.append([sum(h[4] for h in earlier if h[3] == c) for c in classes])
        last.append(classes.index(earlier[-1][3]) if earlier else -1)
    return np.array(counts, dtype=float).reshape(len(rows), len(classes)), last


row = st.tuples(
    st.sampled_from(["shell", "safeway", "", "delta air"]),
    st.integers(0, 6).map(lambda d: date(2025, 1, 1) + timedelta(days=d)),
    st.integers(1, 10_000),
    st.sampled_from([*CLASSES, None, "Unknown category"]),
    st.sampled_from([0.5, 1.0, 3.0]),
)


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(row, min_size=1, max_size=40, unique_by=lambda r: r[2]),
    window=st.integers(1, 8),
)
def test_priors_match_the_definition(rows, window):
    counts, last = merchant_priors(frame(rows), CLASSES, window)
    expected_counts, expected_last = reference(rows, CLASSES, window)

    np.testing.assert_allclose(counts, expected_counts)
    assert last.tolist() == expected_last


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(row, min_size=1, max_size=40, unique_by=lambda r: r[2]),
    window=st.integers(1, 8),
)
def test_the_few_rows_path_matches_the_definition(rows, window):
    # A request: rows without a label, predicted against labeled history.
    query = [r for r in rows if r[3] is None]
    history = [r for r in rows if r[3] is not None]
    if not query:
        return

    counts, last = _priors_small(frame(query), frame(history), CLASSES, window)
    expected_counts, expected_last = reference(rows, CLASSES, window)
    position = [rows.index(r) for r in query]

    np.testing.assert_allclose(counts, expected_counts[position])
    assert last.tolist() == [expected_last[i] for i in position]


def test_a_row_never_sees_its_own_or_a_later_label():
    rows = [
        ("shell", date(2025, 1, 1), 1, "Travel", 3.0),
        ("shell", date(2025, 1, 2), 2, "Groceries", 3.0),
        ("shell", date(2025, 1, 3), 3, "Dining", 1.0),
    ]
    counts, last = merchant_priors(frame(rows), CLASSES, window=20)

    assert counts.tolist() == [[0, 0, 0], [0, 0, 3], [3, 0, 3]]
    assert last.tolist() == [-1, 2, 0]


def test_adding_a_later_row_changes_no_earlier_prior():
    rows = [("shell", date(2025, 1, d), d, CLASSES[d % 3], 1.0) for d in range(1, 10)]
    before, _ = merchant_priors(frame(rows), CLASSES)
    after, _ = merchant_priors(
        frame([*rows, ("shell", date(2025, 2, 1), 99, "Travel", 3.0)]), CLASSES
    )

    np.testing.assert_array_equal(after[: len(rows)], before)
