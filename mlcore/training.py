"""Train a category model from the warehouse's training view.

``train`` reads ``fct_training_view`` (built by dbt; rebuilt first if it is
missing or out of date), splits it by month, fits ``CategoryModel`` on the
months before the cutoff with label-source sample weights, measures it on
the human labels of the months from the cutoff, registers the model and
records the whole attempt, successful or not, as a ``TrainingRun``.

The registered model is the one that was measured: validation months are
not folded back in. Serving still learns from every newer label at once,
through the merchant priors it reads from the database.
"""

import logging
import os
import subprocess
import time
import traceback
from datetime import date

import numpy as np
import polars as pl
from django.conf import settings
from django.db import ProgrammingError, connection, transaction
from django.utils import timezone

from labeling.models import TRAINING_WEIGHTS
from mlcore import dbt, metrics, registry
from mlcore.features.build import copy_out
from mlcore.features.compute import FEATURE_VERSION
from mlcore.modeling import ROW_SCHEMA, CategoryModel
from mlcore.models import Alias, JobStatus, TrainingRun

logger = logging.getLogger(__name__)

TRAINING_VIEW = f"{dbt.SCHEMA}.fct_training_view"

_VIEW_SCHEMA = {
    **ROW_SCHEMA,
    "tokens": pl.Utf8,
    "ts_month": pl.Date,
    "label": pl.Utf8,
    "source": pl.Utf8,
    "weight": pl.Float64,
}


class TrainingError(Exception):
    """Training cannot start or finish; the message says why."""


def train(cutoff=None, promote_if_better=False, user=None, job=None, log=None):
    """Train, measure and register a model; return its ``TrainingRun``.

    ``cutoff`` is the first validation month (a date; default: the last
    full month that has labels). With ``promote_if_better`` the new model
    becomes champion only if it beats the current champion on the same
    validation rows (macro-F1, then accuracy), or if there is none.
    """
    log = log or logger.info
    started = time.monotonic()
    _fail_abandoned_runs(job)
    run = TrainingRun.objects.create(
        status=JobStatus.RUNNING,
        job=job,
        created_by=user,
        started_at=timezone.now(),
        code_version=code_version(),
        params={
            "cutoff": cutoff.isoformat() if cutoff else None,
            "promote_if_better": promote_if_better,
            "max_rows": settings.TRAINING_MAX_ROWS,
            "feature_version": FEATURE_VERSION,
        },
    )
    try:
        _train(run, cutoff, promote_if_better, user, log)
    except Exception as exc:
        run.status = JobStatus.FAILED
        run.error = "".join(traceback.format_exception_only(exc)).strip()
        run.finished_at = timezone.now()
        run.duration_seconds = time.monotonic() - started
        run.save()
        raise
    run.status = JobStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.duration_seconds = time.monotonic() - started
    run.save()
    log(f"Training run {run.pk} finished in {run.duration_seconds:.1f}s")
    return run


def _train(run, cutoff, promote_if_better, user, log):
    ensure_training_view(log)
    rows = read_training_rows()
    if len(rows) == 0:
        raise TrainingError(
            "The training view has no labeled transactions with features; "
            "label some transactions and build features first."
        )
    cutoff = cutoff or default_cutoff(rows["ts_month"])
    cutoff = cutoff.replace(day=1)
    train_rows = rows.filter(pl.col("ts_month") < cutoff)
    validation = rows.filter(
        (pl.col("ts_month") >= cutoff) & (pl.col("source") == "human")
    )
    if len(train_rows) == 0:
        raise TrainingError(f"No labeled transactions before the cutoff {cutoff}.")
    if len(validation) == 0:
        raise TrainingError(
            f"No human labels from the cutoff {cutoff} on to validate with; "
            "choose an earlier --cutoff."
        )
    if len(train_rows) > settings.TRAINING_MAX_ROWS:
        train_rows = train_rows.sort("posted_on", "seq").tail(
            settings.TRAINING_MAX_ROWS
        )
    run.params["cutoff"] = cutoff.isoformat()
    run.train_start = train_rows["posted_on"].min()
    run.train_end = train_rows["posted_on"].max()
    run.validation_start = validation["posted_on"].min()
    run.validation_end = validation["posted_on"].max()
    run.label_counts = _counts(train_rows["source"])
    run.row_counts = {
        "train": len(train_rows),
        "validation": len(validation),
        "view": len(rows),
        "categories": train_rows["label"].n_unique(),
    }
    run.save()
    log(
        f"Training on {len(train_rows):,} labels before {cutoff}, validating on "
        f"{len(validation):,} human labels from it"
    )

    fit_started = time.monotonic()
    model = CategoryModel().fit(train_rows)
    run.params["model"] = model.describe()
    fit_seconds = time.monotonic() - fit_started
    log(f"Fitted in {fit_seconds:.1f}s")

    figures = measure(model, validation, train_rows)
    figures["fit_seconds"] = round(fit_seconds, 3)
    run.metrics = figures
    version = registry.register(run, model)
    log(
        f"Registered model v{version.pk}: accuracy {figures['accuracy']:.3f}, "
        f"macro-F1 {figures['macro_f1']:.3f}"
    )
    if promote_if_better:
        run.metrics["promotion"] = _promote_if_better(
            version, figures, validation, train_rows, user
        )
        log(run.metrics["promotion"]["reason"])


def measure(model, validation, history):
    """Validation figures of ``model``; priors draw on ``history`` only."""
    probabilities = model.predict_proba(validation, history=history)
    predicted = model.classes_[probabilities.argmax(axis=1)]
    confidence = probabilities.max(axis=1)
    truth = validation["label"].to_numpy()
    figures = metrics.summary(truth, predicted, confidence)
    figures["reliability"] = metrics.reliability(truth, predicted, confidence)
    return figures


def _promote_if_better(version, figures, validation, train_rows, user):
    champion = registry.aliases().get(Alias.CHAMPION)
    if champion is None:
        registry.promote(version, Alias.CHAMPION, user, "first model")
        return {"promoted": True, "reason": f"v{version.pk} is the first champion"}
    baseline = measure(registry.load(champion), validation, train_rows)
    mine = (figures["macro_f1"], figures["accuracy"])
    theirs = (baseline["macro_f1"], baseline["accuracy"])
    outcome = {
        "champion": champion.pk,
        "champion_macro_f1": baseline["macro_f1"],
        "champion_accuracy": baseline["accuracy"],
    }
    if mine > theirs:
        registry.promote(
            version,
            Alias.CHAMPION,
            user,
            f"macro-F1 {mine[0]:.4f} > {theirs[0]:.4f} on the same validation",
        )
        return {
            **outcome,
            "promoted": True,
            "reason": f"v{version.pk} beat champion v{champion.pk} "
            f"(macro-F1 {mine[0]:.3f} vs {theirs[0]:.3f}); promoted",
        }
    return {
        **outcome,
        "promoted": False,
        "reason": f"v{version.pk} did not beat champion v{champion.pk} "
        f"(macro-F1 {mine[0]:.3f} vs {theirs[0]:.3f}); not promoted",
    }


def ensure_training_view(log=logger.info):
    """Build the warehouse (``dbt build``) if the training view is missing
    or stale: its row count or newest label change differs from the live
    labeled transactions with features."""
    state = _training_view_state()
    if state == "fresh":
        return
    if state == "out of date" and connection.in_atomic_block:
        # dbt replaces the view on connections of its own and would wait
        # forever for the lock this transaction took by reading it.
        raise TrainingError(
            "The training view is out of date, and dbt cannot rebuild it while "
            "this database transaction is open; run `manage.py run_dbt` first "
            "or train outside a transaction."
        )
    log(f"The training view is {state}; building the warehouse with dbt")
    outcome = dbt.run_dbt(on_line=lambda line: None)
    if not outcome.success:
        raise TrainingError(f"dbt could not build the training view: {outcome.error}")


def _training_view_state():
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s)", [TRAINING_VIEW])
        if cursor.fetchone()[0] is None:
            return "missing"
        try:
            # A view built by an older version of the project may lack
            # a column; the savepoint keeps the caller's transaction usable.
            with transaction.atomic():
                cursor.execute(_FRESHNESS_SQL.format(view=TRAINING_VIEW))
                built_rows, built_at, live_rows, live_at = cursor.fetchone()
        except ProgrammingError:
            return "out of date"
    return "fresh" if (built_rows, built_at) == (live_rows, live_at) else "out of date"


_FRESHNESS_SQL = """
    SELECT built.*, live.*
    FROM (SELECT count(*), max(label_updated_at) FROM {view}) AS built,
    (
        SELECT count(*), max(l.updated_at)
        FROM transaction_labels l
        JOIN transactions t ON t.id = l.txn_id AND t.deleted_at IS NULL
        JOIN ml_features f ON f.txn_id = l.txn_id
    ) AS live
"""


# The training view's rows read straight from the tables, for backtests
# that relabel and retrain many times in a scratch database.
LABELED_ROWS = (
    "(SELECT f.txn_id, t.posted_on, f.account, f.merchant, f.tokens, f.amount,"
    " f.is_subscription, f.merchant_prior_count, f.days_since_prev_merchant,"
    " f.amount_deviation, f.ts_month, l.label, l.source AS label_source,"
    " CASE l.source "
    + " ".join(f"WHEN '{s}' THEN {w}" for s, w in TRAINING_WEIGHTS.items())
    + " END AS sample_weight"
    " FROM transaction_labels l"
    " JOIN transactions t ON t.id = l.txn_id AND t.deleted_at IS NULL"
    " JOIN ml_features f ON f.txn_id = l.txn_id) AS labeled"
)


def read_training_rows(relation=TRAINING_VIEW):
    """Every row of the training view (or ``relation`` with the same
    columns), as model rows with label and weight."""
    return copy_out(
        "SELECT txn_id, posted_on, account, merchant, array_to_string(tokens, ' '),"
        " (amount * 100)::bigint, is_subscription::text, merchant_prior_count,"
        " days_since_prev_merchant, amount_deviation, ts_month, label,"
        f" label_source, sample_weight FROM {relation}",
        [],
        _VIEW_SCHEMA,
    ).with_columns(
        tokens=pl.col("tokens")
        .fill_null("")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
    )


def default_cutoff(months, today=None):
    """The last full calendar month among ``months`` (the validation month)."""
    this_month = (today or date.today()).replace(day=1)
    full = sorted(m for m in months.unique().to_list() if m < this_month)
    if not full:
        raise TrainingError(
            "Every label is from the current month; give --cutoff explicitly."
        )
    return full[-1]


def code_version():
    """The deployed code's git commit, or ``CODE_VERSION`` from the environment."""
    if os.environ.get("CODE_VERSION"):
        return os.environ["CODE_VERSION"]
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            check=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _counts(column):
    values, counts = np.unique(column.to_numpy().astype(str), return_counts=True)
    return {str(v): int(c) for v, c in zip(values, counts, strict=True)}


def _fail_abandoned_runs(job):
    """A job retried after its worker died leaves a run "running"; close it."""
    if job is None:
        return
    TrainingRun.objects.filter(job=job, status=JobStatus.RUNNING).update(
        status=JobStatus.FAILED,
        error="The worker running this training was lost; the job ran again.",
        finished_at=timezone.now(),
    )
