"""Quality measures of category suggestions.

Every function takes the true categories, the predicted (top) categories
and the confidence of each prediction as equal-length sequences.
"""

import numpy as np

# Precision targets for "how much could be auto-applied at this precision".
COVERAGE_PRECISIONS = (0.90, 0.95, 0.98)

# Confidence thresholds reported for choosing the auto-apply threshold.
THRESHOLDS = (0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99)

CALIBRATION_BINS = 10


def summary(truth, predicted, confidence):
    """All figures a training run or a backtest reports, JSON-ready."""
    truth, predicted, confidence = _arrays(truth, predicted, confidence)
    return {
        "n": len(truth),
        "accuracy": accuracy(truth, predicted),
        "macro_f1": macro_f1(truth, predicted),
        "calibration_error": calibration_error(truth, predicted, confidence),
        "coverage_at_precision": {
            f"{target:.2f}": coverage_at_precision(truth, predicted, confidence, target)
            for target in COVERAGE_PRECISIONS
        },
        "thresholds": threshold_table(truth, predicted, confidence),
        "per_category": per_category(truth, predicted),
    }


def accuracy(truth, predicted):
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    if len(truth) == 0:
        return None
    return float(np.mean(truth == predicted))


def per_category(truth, predicted):
    """Precision, recall, F1 and support of every category seen in either."""
    truth, predicted = np.asarray(truth), np.asarray(predicted)
    figures = {}
    for category in sorted(set(truth.tolist()) | set(predicted.tolist())):
        actual = truth == category
        guessed = predicted == category
        hits = int(np.sum(actual & guessed))
        precision = hits / guessed.sum() if guessed.any() else 0.0
        recall = hits / actual.sum() if actual.any() else 0.0
        f1 = (
            2 * precision * recall / (precision + recall) if precision + recall else 0.0
        )
        figures[category] = {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "support": int(actual.sum()),
        }
    return figures


def macro_f1(truth, predicted):
    """Mean F1 over the categories that occur in ``truth``.

    Categories that were only predicted count through the precision of the
    true ones, not as extra zero terms.
    """
    if len(truth) == 0:
        return None
    figures = per_category(truth, predicted)
    present = set(np.asarray(truth).tolist())
    return float(np.mean([figures[name]["f1"] for name in present]))


def calibration_error(truth, predicted, confidence, bins=CALIBRATION_BINS):
    """Expected calibration error of the top prediction (equal-width bins).

    The mean over bins of |accuracy - mean confidence|, weighted by the
    share of predictions in the bin: 0 is perfectly calibrated.
    """
    truth, predicted, confidence = _arrays(truth, predicted, confidence)
    if len(truth) == 0:
        return None
    correct = truth == predicted
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        members = which == b
        if members.any():
            gap = abs(correct[members].mean() - confidence[members].mean())
            error += members.mean() * gap
    return float(error)


def reliability(truth, predicted, confidence, bins=CALIBRATION_BINS):
    """Per-bin mean confidence, accuracy and count: the reliability diagram."""
    truth, predicted, confidence = _arrays(truth, predicted, confidence)
    correct = truth == predicted
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    return [
        {
            "low": float(edges[b]),
            "high": float(edges[b + 1]),
            "count": int((which == b).sum()),
            "confidence": float(confidence[which == b].mean())
            if (which == b).any()
            else None,
            "accuracy": float(correct[which == b].mean())
            if (which == b).any()
            else None,
        }
        for b in range(bins)
    ]


def coverage_at_precision(truth, predicted, confidence, target):
    """The largest share of predictions, most confident first, that keeps
    precision at or above ``target``, and the confidence threshold there.
    """
    truth, predicted, confidence = _arrays(truth, predicted, confidence)
    if len(truth) == 0:
        return {"coverage": None, "threshold": None, "precision": None}
    order = np.argsort(-confidence, kind="stable")
    correct = (truth == predicted)[order]
    sorted_confidence = confidence[order]
    precision = np.cumsum(correct) / np.arange(1, len(correct) + 1)
    # Only cut between different confidences: a threshold cannot split ties.
    cut = np.append(sorted_confidence[1:] < sorted_confidence[:-1], True)
    good = np.nonzero((precision >= target) & cut)[0]
    if len(good) == 0:
        return {"coverage": 0.0, "threshold": None, "precision": None}
    last = good[-1]
    return {
        "coverage": float((last + 1) / len(truth)),
        "threshold": float(sorted_confidence[last]),
        "precision": float(precision[last]),
    }


def at_threshold(truth, predicted, confidence, threshold):
    """Share of predictions at or above ``threshold`` and their precision."""
    truth, predicted, confidence = _arrays(truth, predicted, confidence)
    chosen = confidence >= threshold
    return {
        "threshold": threshold,
        "coverage": float(chosen.mean()) if len(truth) else None,
        "precision": float(np.mean(truth[chosen] == predicted[chosen]))
        if chosen.any()
        else None,
        "count": int(chosen.sum()),
    }


def threshold_table(truth, predicted, confidence, thresholds=THRESHOLDS):
    return [at_threshold(truth, predicted, confidence, t) for t in thresholds]


def _arrays(truth, predicted, confidence):
    truth = np.asarray(truth, dtype=object)
    predicted = np.asarray(predicted, dtype=object)
    confidence = np.asarray(confidence, dtype=np.float64)
    if not len(truth) == len(predicted) == len(confidence):
        raise ValueError("truth, predicted and confidence differ in length")
    return truth, predicted, confidence
