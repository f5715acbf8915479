"""Category suggestions from the registered models.

``suggest_transactions`` answers for stored transactions (by id) and
records each suggestion, so that the label a person sets later can be
compared with it. ``suggest_new`` answers for transactions that are not
stored, computing their features with the batch feature code against the
stored history. Either way the merchant prior is read from the labels of
transactions dated before the one being suggested for.

When a challenger is registered, a stable hash of the transaction sends a
fixed share of traffic (``SUGGESTIONS_CHALLENGER_SHARE``) to it: the same
transaction always lands in the same arm.
"""

import hashlib
import json
from dataclasses import dataclass, field

import numpy as np
import polars as pl
from django.conf import settings
from django.db import connection, transaction

from labeling.labels import bulk_set_labels
from labeling.models import TRAINING_WEIGHTS, LabelSource, Transaction
from mlcore import registry
from mlcore.features.build import build_transactions, features_for_new
from mlcore.features.compute import FEATURE_VERSION
from mlcore.modeling import ROW_SCHEMA
from mlcore.models import Alias
from mlcore.priors import PRIOR_SCHEMA, PRIOR_WINDOW

# Sequence numbers of unsaved transactions: after every stored id, so each
# one counts as the last transaction of its day.
NEW_SEQ_BASE = 2**62


class NoModel(Exception):
    """No champion is registered, so there is nothing to suggest with."""


@dataclass
class Answer:
    """The suggestion for one transaction."""

    txn_id: int | None
    top_k: list
    model_version: int
    arm: str
    suggestion_id: int | None = None
    extra: dict = field(default_factory=dict)

    @property
    def category(self):
        return self.top_k[0]["category"]

    @property
    def confidence(self):
        return self.top_k[0]["probability"]


def arm_for(key, share=None):
    """``challenger`` for a stable ``share`` of keys, else ``champion``."""
    share = settings.SUGGESTIONS_CHALLENGER_SHARE if share is None else share
    digest = hashlib.blake2b(str(key).encode(), digest_size=8).digest()
    bucket = int.from_bytes(digest, "big") / 2**64
    return Alias.CHALLENGER.value if bucket < share else Alias.CHAMPION.value


def suggest_transactions(txn_ids, top_k=None, store=True, experiment=True):
    """Suggestions for stored transactions, in the order of ``txn_ids``.

    Transactions without current features get them built first. Unknown or
    deleted ids raise ``Transaction.DoesNotExist`` naming them.
    """
    txn_ids = list(dict.fromkeys(int(i) for i in txn_ids))
    if not txn_ids:
        return []
    _champion()  # refuse before building any features
    rows = stored_rows(txn_ids)
    missing = set(txn_ids) - set(rows["seq"].to_list())
    if missing:
        live = set(
            Transaction.objects.filter(pk__in=missing).values_list("pk", flat=True)
        )
        if live != missing:
            unknown = ", ".join(str(i) for i in sorted(missing - live))
            raise Transaction.DoesNotExist(f"no live transactions with ids {unknown}")
        build_transactions(sorted(missing))
        rows = stored_rows(txn_ids)
    if len(rows) > 1:
        position = {txn_id: index for index, txn_id in enumerate(txn_ids)}
        rows = rows.sort(pl.col("seq").replace_strict(position, return_dtype=pl.Int64))
    answers = _answer(rows, keys=txn_ids, top_k=top_k, experiment=experiment)
    for answer, txn_id in zip(answers, txn_ids, strict=True):
        answer.txn_id = txn_id
    if store:
        _store(answers)
    return answers


def suggest_new(transactions, top_k=None):
    """Suggestions for unsaved transactions (dicts with ``account``,
    ``posted_on``, ``description`` and a Decimal ``amount``)."""
    if not transactions:
        return []
    features = features_for_new(transactions)
    rows = pl.DataFrame(
        {
            "seq": [NEW_SEQ_BASE + i for i in range(len(features))],
            "posted_on": [t["posted_on"] for t in transactions],
            "account": [f["account"] for f in features],
            "merchant": [f["merchant"] for f in features],
            "tokens": [f["tokens"] for f in features],
            "amount_cents": [int(f["amount"] * 100) for f in features],
            "is_subscription": [f["is_subscription"] for f in features],
            "merchant_prior_count": [f["merchant_prior_count"] for f in features],
            "days_since_prev_merchant": [
                f["days_since_prev_merchant"] for f in features
            ],
            "amount_deviation": [f["amount_deviation"] for f in features],
        },
        schema=ROW_SCHEMA,
    )
    keys = [
        f"{t['account']}|{t['posted_on']}|{t['description']}|{t['amount']}"
        for t in transactions
    ]
    return _answer(rows, keys=keys, top_k=top_k)


def auto_apply(limit=10_000, threshold=None):
    """Write confident champion suggestions as ``rule`` labels.

    Looks at up to ``limit`` of the newest unlabeled live transactions and
    labels those whose suggestion reaches ``threshold`` (default: the
    ``SUGGESTIONS_AUTO_APPLY_THRESHOLD`` setting; nothing happens while it
    is unset). The labels go through the usual precedence rules, so a
    label set in the meantime is never overwritten.
    """
    threshold = (
        settings.SUGGESTIONS_AUTO_APPLY_THRESHOLD if threshold is None else threshold
    )
    if threshold is None:
        return {"enabled": False, "considered": 0, "labeled": 0}
    txn_ids = list(
        Transaction.objects.filter(label__isnull=True)
        .order_by("-id")
        .values_list("pk", flat=True)[:limit]
    )
    # Not stored: the experiment's figures are about suggestions people saw.
    answers = (
        suggest_transactions(txn_ids, store=False, experiment=False) if txn_ids else []
    )
    confident = {a.txn_id: a.category for a in answers if a.confidence >= threshold}
    labeled = bulk_set_labels(confident, LabelSource.RULE).written if confident else 0
    return {
        "enabled": True,
        "threshold": threshold,
        "considered": len(answers),
        "labeled": labeled,
    }


def predict_rows(model, rows, top_k):
    """Top-k categories of each row of ``rows`` with ``model``."""
    history = label_history(rows)
    probabilities = model.predict_proba(rows, history=history)
    return top_categories(model.classes_, probabilities, top_k)


def top_categories(classes, probabilities, top_k):
    top_k = min(top_k, len(classes))
    order = np.argsort(-probabilities, axis=1, kind="stable")[:, :top_k]
    return [
        [
            {"category": str(classes[k]), "probability": round(float(row[k]), 6)}
            for k in ranks
        ]
        for row, ranks in zip(probabilities, order, strict=True)
    ]


def label_history(rows, window=PRIOR_WINDOW):
    """Labeled transactions that may inform the priors of ``rows``.

    For each distinct (merchant, day) of ``rows``: the ``window`` most recent
    labeled live transactions of the merchant dated on or before that day.
    Every row's own window is among them; the model picks the rows strictly
    before it. Rows come back once each.
    """
    # Plain Python: a request names a few rows, where dataframe operations
    # cost more than the work.
    pairs = sorted(
        {
            (merchant, day)
            for merchant, day in zip(
                rows["merchant"].to_list(), rows["posted_on"].to_list(), strict=True
            )
            if merchant
        }
    )
    if not pairs:
        return pl.DataFrame(schema=PRIOR_SCHEMA)
    if len(pairs) <= LITERAL_PAIRS:
        branch = _WINDOW_SQL.format(merchant="%s", month="%s", day="%s")
        history = _fetch(
            " UNION ALL ".join([f"({branch})"] * len(pairs)),
            [
                value
                for merchant, day in pairs
                for value in (merchant, day.replace(day=1), day.day, window)
            ],
            PRIOR_SCHEMA,
        )
        return history if len(pairs) == 1 else history.unique("seq")
    with transaction.atomic(), connection.cursor() as cursor:
        # A generic plan for the lateral join sorts all of a busy merchant's
        # rows; walking the index newest first and stopping is what is wanted.
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("SET LOCAL enable_sort = off")
        branch = _WINDOW_SQL.format(merchant="q.m", month="q.mo", day="q.d")
        return _fetch(
            "SELECT h.* FROM unnest(%s::text[], %s::date[], %s::int[]) AS q (m, mo, d)"
            f" CROSS JOIN LATERAL ({branch}) AS h",
            [
                [merchant for merchant, _ in pairs],
                [day.replace(day=1) for _, day in pairs],
                [day.day for _, day in pairs],
                window,
            ],
            PRIOR_SCHEMA,
        ).unique("seq")


# The window of one (merchant, day): with a literal merchant the planner
# knows how common it is and walks the merchant index newest first rather
# than sorting all of a busy merchant's rows. (ts_month, day_of_month) is the
# posting date in the index's terms.
_WINDOW_SQL = (
    "SELECT f.merchant, f.ts_month + (f.day_of_month - 1) AS posted_on,"
    " f.txn_id AS seq, l.label, CASE l.source "
    + " ".join(f"WHEN '{s}' THEN {w}" for s, w in TRAINING_WEIGHTS.items())
    + " END AS weight"
    " FROM ml_features f"
    " JOIN transaction_labels l ON l.txn_id = f.txn_id"
    " JOIN transactions t ON t.id = f.txn_id AND t.deleted_at IS NULL"
    " WHERE f.merchant = {merchant}"
    " AND (f.ts_month, f.day_of_month) <= ({month}, {day})"
    " ORDER BY f.ts_month DESC, f.day_of_month DESC, f.txn_id DESC LIMIT %s"
)

# Requests with up to this many (merchant, day) pairs get one literal
# branch per pair; larger ones one lateral join.
LITERAL_PAIRS = 20


def _answer(rows, keys, top_k, experiment=True):
    champion = _champion()
    challenger = (
        registry.serving_versions().get(Alias.CHALLENGER) if experiment else None
    )
    arms = [
        arm_for(key) if challenger is not None else Alias.CHAMPION.value for key in keys
    ]
    top_k = top_k or settings.SUGGESTIONS_TOP_K
    answers = [None] * len(keys)
    for arm, version in ((Alias.CHAMPION, champion), (Alias.CHALLENGER, challenger)):
        members = [i for i, chosen in enumerate(arms) if chosen == arm.value]
        if not members:
            continue
        model = registry.load(version)
        subset = rows[members]
        for i, top in zip(members, predict_rows(model, subset, top_k), strict=True):
            answers[i] = Answer(
                txn_id=None, top_k=top, model_version=version.pk, arm=arm.value
            )
    return answers


def _champion():
    champion = registry.serving_versions().get(Alias.CHAMPION)
    if champion is None:
        raise NoModel("No champion model is registered; train and promote one.")
    return champion


def _store(answers):
    """Save the suggestions; return once they are written.

    Suggestions are a log of what was served, so on their own they are
    committed without waiting for the disk flush (``synchronous_commit``
    off for this transaction): a crash may lose the last fraction of a
    second of them, never a label. Inside a caller's transaction the
    caller's durability stands.
    """
    outermost = not connection.in_atomic_block
    with transaction.atomic():
        if outermost:
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL synchronous_commit = off")
        ids = _bulk_create(answers)
    for answer, suggestion_id in zip(answers, ids, strict=True):
        answer.suggestion_id = suggestion_id


def _bulk_create(answers):
    """Insert the rows with one set-based statement; return their ids in
    order (a batch names each transaction once).

    ``unnest`` keeps a batch of a thousand to one statement with ten array
    parameters, where the ORM would build ten thousand placeholders.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO ml_suggestions"
            " (txn_id, model_version_id, arm, label, confidence, top_k)"
            " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::text[],"
            " %s::text[], %s::float8[], %s::jsonb[])"
            " RETURNING txn_id, id",
            [
                [a.txn_id for a in answers],
                [a.model_version for a in answers],
                [a.arm for a in answers],
                [a.category for a in answers],
                [a.confidence for a in answers],
                [json.dumps(a.top_k) for a in answers],
            ],
        )
        ids = dict(cursor.fetchall())
    return [ids[a.txn_id] for a in answers]


def stored_rows(txn_ids):
    """Model rows of stored transactions that have current features, in no
    particular order."""
    return _fetch(
        "SELECT t.id, t.posted_on, f.account, f.merchant,"
        " f.tokens, (f.amount * 100)::bigint,"
        " f.is_subscription, f.merchant_prior_count, f.days_since_prev_merchant,"
        " f.amount_deviation "
        "FROM transactions t JOIN ml_features f ON f.txn_id = t.id "
        "WHERE t.id = ANY(%s) AND t.deleted_at IS NULL AND f.feature_version = %s",
        [txn_ids, FEATURE_VERSION],
        ROW_SCHEMA,
    )


def _fetch(sql, params, schema):
    """Rows of ``sql`` as a frame: cheaper than COPY for small results."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pl.DataFrame(cursor.fetchall(), schema=schema, orient="row")
