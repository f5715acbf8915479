"""Offline backtest of the whole pipeline on any labeled CSV.

``run`` expects to be inside a scratch database (``mlcore.scratch``). It
imports the file with the project's importer (every category becomes a
human label), then removes the labels of rows dated on or after the
cutoff, keeping them aside as the truth. From there it works like a person
using the product:

- build features (point-in-time, as for any import);
- train on the labels there are;
- suggest a category for each held-out row, with the serving code, whose
  merchant priors only read labels of earlier transactions;
- with ``replay="monthly"``, reveal each month's labels after predicting it
  and retrain before the next month, as a labeler working through the
  admin month by month would.

Nothing a prediction uses is dated after the row it predicts, and no
held-out label is visible before its month has been predicted.
"""

import csv
import io
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import numpy as np
from django.db import connection

from labeling.importing import (
    ImportFileError,
    ImportOptions,
    import_transactions,
    read_csv_text,
)
from labeling.labels import bulk_set_labels
from labeling.models import LabelSource
from mlcore import metrics, serving, training
from mlcore.features.build import build_window
from mlcore.modeling import CategoryModel

logger = logging.getLogger(__name__)

# A suggestion at least this confident counts as auto-applicable.
AUTO_APPLY_CONFIDENCE = 0.95

REQUIRED_COLUMNS = ("date", "description", "amount", "category")
DEFAULT_ACCOUNT = "default"


class BacktestError(Exception):
    """The file or the cutoff cannot be backtested; the message says why."""


@dataclass
class Result:
    n_train: int
    n_test: int
    accuracy: float | None
    macro_f1: float | None
    coverage_at_95: float | None
    precision_at_95: float | None
    periods: list = field(default_factory=list)
    figures: dict = field(default_factory=dict)
    import_notes: list = field(default_factory=list)

    def as_dict(self):
        return {
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "coverage_at_95": self.coverage_at_95,
            "precision_at_95": self.precision_at_95,
            "n_train": self.n_train,
            "n_test": self.n_test,
        }


def run(path, cutoff, replay=None, log=logger.info):
    """Backtest the CSV at ``path`` from ``cutoff`` on; return a ``Result``."""
    if replay not in (None, "monthly"):
        raise BacktestError(f"Unknown replay {replay!r}; the choice is 'monthly'.")
    notes = _import(path, log)
    truth = _hold_out(cutoff)
    if not truth:
        raise BacktestError(f"No rows are dated on or after the cutoff {cutoff}.")
    build_window()

    periods = _periods(cutoff, max(day for day, _ in truth.values()), replay)
    predicted, confidence, actual = [], [], []
    n_train = None
    summaries = []
    for start, end in periods:
        rows = training.read_training_rows(training.LABELED_ROWS)
        if len(rows) == 0:
            raise BacktestError(f"No labeled rows before {start} to train on.")
        if n_train is None:
            n_train = len(rows)
        model = CategoryModel().fit(rows)
        ids = sorted(i for i, (day, _) in truth.items() if start <= day < end)
        if not ids:
            continue
        top, conf = _predict(model, ids)
        labels = [truth[i][1] for i in ids]
        predicted += top
        confidence += conf
        actual += labels
        period = metrics.summary(labels, top, conf)
        summaries.append(
            {
                "start": start.isoformat(),
                "end": end.isoformat(),
                "n_train": len(rows),
                "n_test": len(ids),
                "accuracy": period["accuracy"],
            }
        )
        log(
            f"{start} to {end}: trained on {len(rows):,}, predicted {len(ids):,}, "
            f"accuracy {period['accuracy']:.3f}"
        )
        if replay:
            bulk_set_labels({i: truth[i][1] for i in ids}, LabelSource.HUMAN)

    figures = metrics.summary(actual, predicted, confidence)
    auto = metrics.at_threshold(actual, predicted, confidence, AUTO_APPLY_CONFIDENCE)
    return Result(
        n_train=n_train,
        n_test=len(actual),
        accuracy=figures["accuracy"],
        macro_f1=figures["macro_f1"],
        coverage_at_95=auto["coverage"],
        precision_at_95=auto["precision"],
        periods=summaries,
        figures=figures,
        import_notes=notes,
    )


def _import(path, log):
    """Import the file with every category as a human label."""
    text = _normalized_csv(path)
    options = ImportOptions(
        labels_as=LabelSource.HUMAN,
        create_categories=True,
        account="" if "account" in _header(text) else DEFAULT_ACCOUNT,
        valid_only=True,
    )
    result = import_transactions(io.BytesIO(text.encode()), options, name=str(path))
    if not result.inserted:
        problems = "; ".join(str(issue) for issue in result.errors[:5])
        raise BacktestError(f"No rows of {path} could be imported. {problems}")
    notes = [str(issue) for issue in result.errors]
    if result.invalid:
        log(f"{result.invalid} rows of {path} were rejected and left out")
    log(f"Imported {result.inserted:,} transactions, {result.labels_written:,} labels")
    return notes


def _normalized_csv(path):
    """The file as UTF-8 comma-separated text, with a ``merchant`` column
    folded into the description.

    The file may be in any encoding and use any delimiter the importer
    reads. Some exports split payee and memo; the description is what the
    feature code reads, so both go there.
    """
    try:
        text, delimiter = read_csv_text(Path(path).read_bytes())
    except (OSError, ImportFileError) as exc:
        raise BacktestError(f"Cannot read {path}: {exc}") from None
    rows = list(csv.reader(io.StringIO(text, newline=""), delimiter=delimiter))
    header = [name.strip().lower() for name in rows[0]]
    missing = [name for name in REQUIRED_COLUMNS if name not in header]
    if missing:
        raise BacktestError(
            f"{path} lacks the column(s) {', '.join(missing)}; it needs "
            f"{', '.join(REQUIRED_COLUMNS)} (account and merchant are optional)."
        )
    if "merchant" in header:
        merchant = header.index("merchant")
        description = header.index("description")
        for row in rows[1:]:
            if merchant < len(row) and description < len(row):
                parts = (row[merchant].strip(), row[description].strip())
                row[description] = " ".join(part for part in parts if part)
        for row in rows:
            if merchant < len(row):
                del row[merchant]
        header = [name for name in header if name != "merchant"]
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    writer.writerows(rows[1:])
    return out.getvalue()


def _header(text):
    return next(csv.reader(io.StringIO(text)))


def _hold_out(cutoff):
    """Remove the labels of rows from ``cutoff`` on; return them by id."""
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM transaction_labels l USING transactions t "
            "WHERE t.id = l.txn_id AND t.posted_on >= %s "
            "RETURNING t.id, t.posted_on, l.label",
            [cutoff],
        )
        return {txn_id: (day, label) for txn_id, day, label in cursor.fetchall()}


def _periods(cutoff, last_day, replay):
    """(start, end) ranges to predict; one unless replaying month by month."""
    end_of_data = date.fromordinal(last_day.toordinal() + 1)
    if not replay:
        return [(cutoff, end_of_data)]
    periods, start = [], cutoff
    while start < end_of_data:
        month_after = date(start.year + start.month // 12, start.month % 12 + 1, 1)
        periods.append((start, min(month_after, end_of_data)))
        start = month_after
    return periods


def _predict(model, ids):
    rows = serving.stored_rows(ids)
    history = serving.label_history(rows)
    probabilities = model.predict_proba(rows, history=history)
    best = probabilities.argmax(axis=1)
    by_id = dict(
        zip(
            rows["seq"].to_list(),
            zip(model.classes_[best], probabilities.max(axis=1), strict=True),
            strict=True,
        )
    )
    missing = [i for i in ids if i not in by_id]
    if missing:
        raise BacktestError(f"{len(missing)} held-out rows have no features.")
    return [str(by_id[i][0]) for i in ids], [float(by_id[i][1]) for i in ids]


def describe(result):
    """A short human-readable report."""
    lines = [
        f"Trained on {result.n_train:,} labeled rows; predicted {result.n_test:,}.",
        f"accuracy        {_pct(result.accuracy)}",
        f"macro-F1        {_pct(result.macro_f1)}",
        f"auto-apply ≥95% coverage {_pct(result.coverage_at_95)}, "
        f"precision {_pct(result.precision_at_95)}",
        f"calibration error {_pct(result.figures.get('calibration_error'))}",
    ]
    at = result.figures.get("coverage_at_precision", {})
    for target, value in at.items():
        lines.append(
            f"coverage at {float(target):.0%} precision: {_pct(value['coverage'])}"
        )
    return "\n".join(lines)


def _pct(value):
    return "n/a" if value is None or np.isnan(value) else f"{value:.1%}"
