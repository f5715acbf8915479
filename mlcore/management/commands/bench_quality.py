"""Measure suggestion quality with the evaluate backtest on hard data sets.

    manage.py bench_quality [--households 5] [--months 18] [--test-months 6]

Each data set is one generated household's export (the way a person's
bank history arrives: several accounts, every bank's own spelling), written
as a CSV with the columns ``evaluate`` reads, and backtested three ways:

- ``noisy``: rows before the cutoff carry the labels a real history would
  (people, sloppy keyword rules, imports mapped from another app, about one
  in ten of the latter two wrong); rows after it are scored against the
  true category.
- ``cold``: the same, with only three months of history to learn from
  and the rest of the window to predict.
- ``replay``: month-by-month replay after the cutoff, as a labeler works.
- ``fine``: like ``noisy``, with each category split in three by merchant
  (about 55 categories, as in exports of people who keep detailed
  budgets). The split follows no rule a model could read off the text, so
  a merchant seen for the first time after the cutoff is a guess: a harsh
  test of how much the model learns from each merchant's history.

The public sample (``tests/mlcore/files``) is backtested too. The command
prints each result and the mean per setting, each next to a baseline: a
linear SVM on the description's word and character n-grams, trained on the
same rows before the cutoff, the classifier bank-import tools commonly use.
How far the model is ahead of it says more than the model's own figures,
since generated data is easier than a real bank export.
"""

import csv
import json
import statistics
import tempfile
import zlib
from datetime import date
from io import StringIO
from pathlib import Path

from django.conf import settings
from django.core.management import call_command
from django.core.management.base import BaseCommand
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import make_pipeline, make_union
from sklearn.svm import LinearSVC

from labeling.synthetic.generate import (
    DEFAULT_END,
    MEAN_ACTIVITY,
    GenerationParams,
    generate,
)

SAMPLE = (
    Path(settings.BASE_DIR)
    / "tests"
    / "mlcore"
    / "files"
    / "personal_transactions_sample.csv"
)
FIGURES = ("accuracy", "macro_f1", "coverage_at_95", "precision_at_95")
BASELINE_FIGURES = ("baseline_accuracy", "baseline_macro_f1")


class Command(BaseCommand):
    help = "Backtest suggestion quality on generated households and the sample."

    def add_arguments(self, parser):
        parser.add_argument("--households", type=int, default=5)
        parser.add_argument("--months", type=int, default=18)
        parser.add_argument("--test-months", type=int, default=6)
        parser.add_argument("--seed", type=int, default=101)

    def handle(self, *args, **options):
        results = {}
        months, test_months = options["months"], options["test_months"]
        cutoff = _months_before(DEFAULT_END, test_months - 1)
        cold = _months_before(DEFAULT_END, months - 4)
        runs = {
            "noisy": (cutoff, None),
            "cold": (cold, None),
            "replay": (cutoff, "monthly"),
            "fine": (cutoff, None),
        }
        with tempfile.TemporaryDirectory() as folder:
            for number in range(options["households"]):
                seed = options["seed"] + number
                for setting, (start, replay) in runs.items():
                    path = Path(folder) / f"household{number + 1}-{setting}.csv"
                    _write_household(path, seed, months, start, setting == "fine")
                    figures = self._evaluate(path, start, replay)
                    results.setdefault(setting, []).append(figures)
                    self._report(f"household {number + 1} {setting}", figures)
        for replay in (None, "monthly"):
            figures = self._evaluate(SAMPLE, date(2019, 4, 1), replay)
            setting = "sample replay" if replay else "sample"
            results[setting] = [figures]
            self._report(setting, figures)

        self.stdout.write("")
        for setting, runs in results.items():
            names = [name for name in FIGURES + BASELINE_FIGURES if name in runs[0]]
            mean = {
                name: statistics.mean(
                    run[name] for run in runs if run[name] is not None
                )
                for name in names
            }
            self.stdout.write(
                self.style.SUCCESS(
                    f"{setting}: mean of {len(runs)}: "
                    + ", ".join(f"{name} {mean[name]:.3f}" for name in names)
                )
            )

    def _evaluate(self, path, cutoff, replay):
        out = StringIO()
        options = {"csv": path, "cutoff": cutoff, "json": True, "stdout": out}
        if replay:
            options["replay"] = replay
        call_command("evaluate", **options)
        figures = json.loads(out.getvalue())
        if not replay:  # the baseline is never retrained month by month
            figures.update(_baseline(path, cutoff))
        return figures

    def _report(self, name, figures):
        names = FIGURES + tuple(name for name in BASELINE_FIGURES if name in figures)
        self.stdout.write(
            f"{name}: "
            + ", ".join(f"{key} {figures[key]:.3f}" for key in names)
            + f" (train {figures['n_train']:,}, test {figures['n_test']:,})"
        )


def _baseline(path, cutoff):
    """Accuracy and macro-F1 of a linear SVM on description n-grams."""
    with open(path, newline="") as handle:
        rows = list(csv.DictReader(handle))
    train = [row for row in rows if date.fromisoformat(row["date"]) < cutoff]
    test = [row for row in rows if date.fromisoformat(row["date"]) >= cutoff]
    classifier = make_pipeline(
        make_union(
            TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4)),
            TfidfVectorizer(),
        ),
        LinearSVC(),
    )
    classifier.fit(
        [row["description"] for row in train], [row["category"] for row in train]
    )
    predicted = classifier.predict([row["description"] for row in test])
    truth = [row["category"] for row in test]
    return {
        "baseline_accuracy": accuracy_score(truth, predicted),
        "baseline_macro_f1": f1_score(truth, predicted, average="macro"),
    }


def _write_household(path, seed, months, cutoff, fine=False):
    """One household's export: history with the labels people had, and the
    true category from ``cutoff`` on."""
    params = GenerationParams(
        count=round(MEAN_ACTIVITY * months), months=months, seed=seed, label_fraction=1
    )
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["date", "description", "amount", "category", "account"])
        for row in generate(params):
            category = row.label if row.posted_on < cutoff else row.category
            if fine:
                category = f"{category} {'ABC'[zlib.crc32(row.merchant.encode()) % 3]}"
            writer.writerow(
                [row.posted_on, row.description, row.amount, category, row.account]
            )


def _months_before(day, months):
    """The first day of the month ``months`` before ``day``'s month."""
    index = day.year * 12 + day.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)
