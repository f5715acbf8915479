"""Suggestion quality measures."""

import numpy as np
import pytest
from sklearn.metrics import f1_score

from mlcore import metrics


def test_accuracy_and_macro_f1_match_scikit_learn():
    rng = np.random.default_rng(3)
    truth = rng.choice(["a", "b", "c", "d"], size=300)
    predicted = np.where(rng.random(300) < 0.7, truth, rng.choice(["a", "e"], 300))

    assert metrics.accuracy(truth, predicted) == pytest.approx(
        np.mean(truth == predicted)
    )
    assert metrics.macro_f1(truth, predicted) == pytest.approx(
        f1_score(truth, predicted, labels=sorted(set(truth)), average="macro")
    )


def test_per_category_counts_precision_recall_and_support():
    figures = metrics.per_category(["a", "a", "b", "b"], ["a", "b", "b", "b"])

    assert figures["a"] == {"precision": 1.0, "recall": 0.5, "f1": 2 / 3, "support": 2}
    assert figures["b"]["precision"] == pytest.approx(2 / 3)
    assert figures["b"]["recall"] == 1.0


def test_calibration_error_is_zero_when_confidence_is_the_hit_rate():
    truth = ["a"] * 10
    predicted = ["a"] * 8 + ["b"] * 2

    assert metrics.calibration_error(truth, predicted, [0.8] * 10) == pytest.approx(0)
    assert metrics.calibration_error(truth, predicted, [1.0] * 10) == pytest.approx(0.2)


def test_coverage_at_precision_takes_the_longest_precise_prefix():
    truth = ["a", "a", "a", "a", "a"]
    predicted = ["a", "a", "b", "a", "b"]
    confidence = [0.99, 0.95, 0.9, 0.8, 0.5]

    at_full = metrics.coverage_at_precision(truth, predicted, confidence, 1.0)
    at_75 = metrics.coverage_at_precision(truth, predicted, confidence, 0.75)

    assert at_full == {"coverage": 0.4, "threshold": 0.95, "precision": 1.0}
    assert at_75 == {"coverage": 0.8, "threshold": 0.8, "precision": 0.75}


def test_coverage_never_splits_tied_confidences():
    result = metrics.coverage_at_precision(["a", "a"], ["a", "b"], [0.9, 0.9], 1.0)

    assert result["coverage"] == 0.0


def test_threshold_table_reports_share_and_precision_above_each_threshold():
    row = metrics.at_threshold(
        ["a", "a", "a"], ["a", "b", "a"], [0.99, 0.97, 0.5], 0.95
    )

    assert row == {
        "threshold": 0.95,
        "coverage": pytest.approx(2 / 3),
        "precision": 0.5,
        "count": 2,
    }
    assert metrics.at_threshold(["a"], ["a"], [0.1], 0.9)["precision"] is None


def test_mismatched_lengths_are_refused():
    with pytest.raises(ValueError, match="differ in length"):
        metrics.summary(["a"], ["a", "b"], [0.5])
