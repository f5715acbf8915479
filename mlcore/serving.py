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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import numpy as np
import polars as pl
from django.conf import settings
from django.db import connection, transaction

from finance_project.db import prepared_cursor
from labeling.labels import bulk_set_labels
from labeling.models import TRAINING_WEIGHTS, LabelSource, Transaction
from mlcore import registry
from mlcore.features.build import build_transactions, features_for_new
from mlcore.features.compute import FEATURE_VERSION
from mlcore.modeling import ROW_SCHEMA, SMALL_BATCH
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
    rows, history = _stored_rows_and_windows(txn_ids)
    missing = set(txn_ids) - set(rows["seq"].to_list())
    if missing:
        live = set(
            Transaction.objects.filter(pk__in=missing).values_list("pk", flat=True)
        )
        if live != missing:
            unknown = ", ".join(str(i) for i in sorted(missing - live))
            raise Transaction.DoesNotExist(f"no live transactions with ids {unknown}")
        build_transactions(sorted(missing))
        rows, history = _stored_rows_and_windows(txn_ids)
    if len(rows) > 1:
        position = {txn_id: index for index, txn_id in enumerate(txn_ids)}
        rows = rows.sort(pl.col("seq").replace_strict(position, return_dtype=pl.Int64))
    answers = _answer(
        rows, keys=txn_ids, top_k=top_k, experiment=experiment, history=history
    )
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


def predict_rows(model, rows, top_k, history=None):
    """Top-k categories of each row of ``rows`` with ``model``.

    ``history`` holds the label windows of the rows (``label_history``);
    it is read when not given.
    """
    text = None
    if history is None:
        history, text = _history_and_text(model, rows)
    probabilities = model.predict_proba(rows, history=history, text=text)
    return top_categories(model.classes_, probabilities, top_k)


def _history_and_text(model, rows):
    """``label_history(rows)``, and the model's text blocks of ``rows``
    computed while the database reads it.

    Reading the windows of many rows is the database's work; meanwhile a
    thread vectorizes the rows' text, which needs no history. A few rows
    are not worth a thread: their text is built with their prior.
    """
    if len(rows) <= SMALL_BATCH:
        return label_history(rows), None
    with ThreadPoolExecutor(max_workers=1) as pool:
        text = pool.submit(model.text_blocks, rows)
        history = label_history(rows)
        return history, text.result()


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

    For each row with a merchant: the ``window`` most recent labeled live
    transactions of the merchant strictly before it, in the order
    ``(posted_on, seq)`` the priors use. Rows come back once each.
    """
    # Plain Python: a request names a few rows, where dataframe operations
    # cost more than the work.
    keys = sorted(
        {
            (merchant, day, seq)
            for merchant, day, seq in zip(
                rows["merchant"].to_list(),
                rows["posted_on"].to_list(),
                rows["seq"].to_list(),
                strict=True,
            )
            if merchant
        }
    )
    if not keys:
        return pl.DataFrame(schema=PRIOR_SCHEMA)
    if len(keys) <= LITERAL_ROWS:
        branch = _WINDOW_SQL.format(
            merchant="%s", month="%s", day="%s", seq="%s", since=""
        )
        history = _fetch(
            " UNION ALL ".join([f"({branch})"] * len(keys)),
            [
                value
                for merchant, day, seq in keys
                for value in (merchant, day.replace(day=1), day.day, seq, window)
            ],
            PRIOR_SCHEMA,
        )
        return history if len(keys) == 1 else history.unique("seq")
    with transaction.atomic(), connection.cursor() as cursor:
        # A generic plan for the lateral join sorts all of a busy merchant's
        # rows; walking the index newest first and stopping is what is wanted.
        # The join's estimated cost would also buy a JIT compilation that
        # takes longer than running it.
        cursor.execute(
            "SELECT set_config('enable_bitmapscan', 'off', true),"
            " set_config('enable_sort', 'off', true), set_config('jit', 'off', true)"
        )
        # Rows of one merchant share most of their windows: past a row's
        # predecessor (by date and id) among the merchant's rows, its window
        # only adds the labels since that predecessor; the rest is in the
        # predecessor's window. So each row reads back only to it.
        previous, since = {}, []
        for merchant, day, seq in keys:  # sorted by merchant, day, seq
            since.append(previous.get(merchant, (date.min, 0, 0)))
            previous[merchant] = (day.replace(day=1), day.day, seq)
        branch = _WINDOW_SQL.format(
            merchant="q.m",
            month="q.mo",
            day="q.d",
            seq="q.s",
            since=" AND (wf.ts_month, wf.day_of_month, wf.txn_id)"
            " >= (q.pm, q.pd, q.ps)",
        )
        return _fetch(
            "SELECT h.* FROM unnest(%s::text[], %s::date[], %s::int[], %s::bigint[],"
            " %s::date[], %s::int[], %s::bigint[]) AS q (m, mo, d, s, pm, pd, ps)"
            f" CROSS JOIN LATERAL ({branch}) AS h",
            [
                [merchant for merchant, _, _ in keys],
                [day.replace(day=1) for _, day, _ in keys],
                [day.day for _, day, _ in keys],
                [seq for _, _, seq in keys],
                [month for month, _, _ in since],
                [day for _, day, _ in since],
                [seq for _, _, seq in since],
                window,
            ],
            PRIOR_SCHEMA,
        ).unique("seq")


# The window of one row: the merchant's labeled transactions before the
# row's (posting date, id), newest first. With a literal merchant the
# planner knows how common it is and walks the merchant index backwards
# rather than sorting all of a busy merchant's rows. (ts_month,
# day_of_month, txn_id) is the posting order in the index's terms.
_WINDOW_SQL = (
    "SELECT wf.merchant, wf.ts_month + (wf.day_of_month - 1) AS posted_on,"
    " wf.txn_id AS seq, wl.label, CASE wl.source "
    + " ".join(f"WHEN '{s}' THEN {w}" for s, w in TRAINING_WEIGHTS.items())
    + " END AS weight"
    " FROM ml_features wf"
    " JOIN transaction_labels wl ON wl.txn_id = wf.txn_id"
    " JOIN transactions wt ON wt.id = wf.txn_id AND wt.deleted_at IS NULL"
    " WHERE wf.merchant = {merchant}"
    " AND (wf.ts_month, wf.day_of_month, wf.txn_id) < ({month}, {day}, {seq})"
    "{since}"
    " ORDER BY wf.ts_month DESC, wf.day_of_month DESC, wf.txn_id DESC LIMIT %s"
)

# Requests with up to this many rows get one literal window query per row;
# larger ones one lateral join.
LITERAL_ROWS = 20

# The model rows (``ROW_SCHEMA``) of live transactions with current
# features, by id.
_ROWS_SQL = (
    "SELECT t.id, t.posted_on, f.account, f.merchant, f.tokens,"
    " (f.amount * 100)::bigint, f.is_subscription, f.merchant_prior_count,"
    " f.days_since_prev_merchant, f.amount_deviation{extra}"
    " FROM transactions t JOIN ml_features f ON f.txn_id = t.id{join}"
    " WHERE t.id = ANY(%s::bigint[]) AND t.deleted_at IS NULL"
    " AND f.feature_version = %s::int"
)

# The same rows, each with its label window as parallel arrays (empty when
# it has none).
_ROWS_WITH_WINDOWS_SQL = _ROWS_SQL.format(
    extra=", coalesce(w.seqs, '{}'), coalesce(w.days, '{}'),"
    " coalesce(w.labels, '{}'), coalesce(w.weights, '{}')",
    join=" LEFT JOIN LATERAL (SELECT array_agg(h.seq) AS seqs,"
    " array_agg(h.posted_on) AS days, array_agg(h.label) AS labels,"
    " array_agg(h.weight::float8) AS weights FROM ("
    + _WINDOW_SQL.format(
        merchant="f.merchant",
        month="f.ts_month",
        day="f.day_of_month",
        seq="t.id",
        since="",
    )
    + ") AS h) AS w ON true",
)


def _answer(rows, keys, top_k, experiment=True, history=None):
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
        subset = rows if len(members) == len(rows) else rows[members]
        predictions = predict_rows(model, subset, top_k, history=history)
        for i, top in zip(members, predictions, strict=True):
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
    off for their transaction, set inside the statement so that storing
    them is one round trip): a crash may lose the last fraction of a second
    of them, never a label. Inside a caller's transaction the caller's
    durability stands.
    """
    async_commit = (
        " CROSS JOIN (SELECT set_config('synchronous_commit', 'off', true)) AS s"
        if not connection.in_atomic_block
        else ""
    )
    # One JSON document carries the whole batch: a single parameter, which
    # the driver passes as it is, where arrays are encoded item by item.
    rows = json.dumps(
        [
            {
                "txn_id": a.txn_id,
                "model_version_id": a.model_version,
                "arm": a.arm,
                "label": a.category,
                "confidence": a.confidence,
                "top_k": a.top_k,
            }
            for a in answers
        ]
    )
    with prepared_cursor() as cursor:
        cursor.execute(
            "INSERT INTO ml_suggestions"
            " (txn_id, model_version_id, arm, label, confidence, top_k)"
            " SELECT r.* FROM jsonb_to_recordset(%s::jsonb) AS r (txn_id bigint,"
            " model_version_id bigint, arm text, label text, confidence float8,"
            f" top_k jsonb){async_commit} RETURNING txn_id, id",
            [rows],
        )
        ids = dict(cursor.fetchall())
    # A batch names each transaction once.
    for answer in answers:
        answer.suggestion_id = ids[answer.txn_id]


def stored_rows(txn_ids):
    """Model rows of stored transactions that have current features, in no
    particular order."""
    return _fetch(
        _ROWS_SQL.format(extra="", join=""), [txn_ids, FEATURE_VERSION], ROW_SCHEMA
    )


def _stored_rows_and_windows(txn_ids):
    """``stored_rows(txn_ids)``, and for a few ids their ``label_history``.

    A request of a few ids reads both with one prepared statement that
    returns each row with its label window: the path of a one-transaction
    suggestion, where planning the statements costs more than running them.
    For larger requests the history is ``None``: ``predict_rows`` reads all
    windows with one join planned for many rows, while the model works on
    the rows' text.
    """
    if len(txn_ids) > LITERAL_ROWS:
        return stored_rows(txn_ids), None
    with prepared_cursor() as cursor:
        cursor.execute(_ROWS_WITH_WINDOWS_SQL, [PRIOR_WINDOW, txn_ids, FEATURE_VERSION])
        fetched = cursor.fetchall()
    width = len(ROW_SCHEMA)
    merchant = list(ROW_SCHEMA).index("merchant")
    rows = pl.DataFrame(
        [row[:width] for row in fetched], schema=ROW_SCHEMA, orient="row"
    )
    # Rows of one merchant share window entries; each is kept once.
    history = {
        seq: (row[merchant], posted_on, seq, label, weight)
        for row in fetched
        for seq, posted_on, label, weight in zip(*row[width:], strict=True)
    }
    return rows, pl.DataFrame(list(history.values()), schema=PRIOR_SCHEMA, orient="row")


def _fetch(sql, params, schema):
    """Rows of ``sql`` as a frame: cheaper than COPY for small results."""
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return pl.DataFrame(cursor.fetchall(), schema=schema, orient="row")
