"""The labeling queue: which transaction to show next, labeling, undo, stats.

Plain functions over the database and a ``state`` dict that the views keep
in the user's session (see ``labeling.queue_views``):

- ``batch``: the next transaction ids to show. Ranking a million rows by
  merchant frequency takes a while, so it is done once per ``BATCH_SIZE``
  transactions, not per keystroke: unlabeled live transactions of the most
  frequent unlabeled merchants first (one decision there teaches the most),
  the newest first within a merchant, transactions without features last.
- ``skipped``: ids the user skipped; they come back once nothing else is
  left.
- ``undo``: what each label written in this queue replaced, newest last.
- ``left``: unlabeled live transactions. An exact ``count(*)`` takes about
  0.3 s on a million rows, so it is counted when the page opens and when a
  batch is refreshed, and in between decremented by what the user labels
  here; labels written elsewhere in the meantime show at the next count.
- ``top_categories``: the most used categories, the numbered choices while
  there are no model suggestions; refreshed with the batch.
"""

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.db.models import Count
from django.utils import timezone

from labeling import rules
from labeling.labels import bulk_set_labels, clear_label, set_label
from labeling.models import (
    Category,
    LabelHistory,
    LabelSource,
    Rule,
    Transaction,
    TransactionLabel,
)
from labeling.tasks import measure_rule_task

logger = logging.getLogger(__name__)

BATCH_SIZE = 50
CHOICES = 9
# Enough to undo a long run of mistakes without growing the session forever.
UNDO_DEPTH = 100
SKIPPED_MAX = 1000

_UNLABELED = (
    "t.deleted_at IS NULL AND NOT EXISTS "
    "(SELECT 1 FROM transaction_labels l WHERE l.txn_id = t.id)"
)

_BATCH_SQL = f"""
    WITH unlabeled AS (
        SELECT t.id, t.posted_on, NULLIF(f.merchant, '') AS merchant
        FROM transactions t
        LEFT JOIN ml_features f ON f.txn_id = t.id
        WHERE {_UNLABELED} AND t.id <> ALL(%(exclude)s)
    ),
    frequency AS (
        SELECT merchant, count(*) AS n
        FROM unlabeled
        WHERE merchant IS NOT NULL
        GROUP BY merchant
    )
    SELECT u.id
    FROM unlabeled u
    LEFT JOIN frequency USING (merchant)
    ORDER BY frequency.n DESC NULLS LAST, u.merchant, u.posted_on DESC, u.id DESC
    LIMIT %(limit)s
"""


class QueueError(Exception):
    """A request the queue cannot carry out; ``status`` is the HTTP status."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.message = message
        self.status = status


def new_state():
    return {"batch": [], "skipped": [], "undo": [], "left": None, "since_count": 0}


# --- choosing -------------------------------------------------------------


def next_batch(exclude=(), limit=BATCH_SIZE):
    """Ids of the next unlabeled live transactions, best teachers first."""
    with connection.cursor() as cursor:
        cursor.execute(_BATCH_SQL, {"exclude": list(exclude), "limit": limit})
        return [row[0] for row in cursor.fetchall()]


def count_left():
    """Exact number of unlabeled live transactions."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM transactions t WHERE {_UNLABELED}")
        return cursor.fetchone()[0]


def still_unlabeled(ids):
    """The subset of ``ids`` that are live and unlabeled."""
    if not ids:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.id FROM transactions t WHERE t.id = ANY(%s) AND {_UNLABELED}",
            [list(ids)],
        )
        return {row[0] for row in cursor.fetchall()}


def top_categories(limit=CHOICES):
    """Names of the most used active categories, topped up alphabetically."""
    used = (
        TransactionLabel.objects.filter(label__is_active=True)
        .values_list("label_id", flat=True)
        .annotate(n=Count("txn_id"))
        .order_by("-n", "label_id")[:limit]
    )
    names = list(used)
    if len(names) < limit:
        names += (
            Category.objects.filter(is_active=True)
            .exclude(name__in=names)
            .values_list("name", flat=True)[: limit - len(names)]
        )
    return names


def refresh(state):
    """Fill an exhausted batch, recounting what is left."""
    batch = next_batch(exclude=state["skipped"])
    if not batch and state["skipped"]:
        # Only skipped ones remain: show them again, oldest skip first.
        alive = still_unlabeled(state["skipped"])
        batch = [i for i in state["skipped"] if i in alive][:BATCH_SIZE]
        state["skipped"] = [i for i in state["skipped"] if i in alive][BATCH_SIZE:]
    state["batch"] = batch
    state["left"] = count_left()
    state["since_count"] = 0
    state["top_categories"] = top_categories()


def current(state):
    """The transaction to show now, or ``None`` when nothing is left.

    Ids labeled or deleted by someone else since the batch was made are
    dropped on the way.
    """
    for _attempt in range(2):
        alive = still_unlabeled(state["batch"])
        state["batch"] = [i for i in state["batch"] if i in alive]
        if state["batch"]:
            break
        refresh(state)
    if not state["batch"]:
        return None
    return Transaction.objects.select_related("features").get(pk=state["batch"][0])


def describe(txn):
    """What the page shows of one transaction."""
    features = getattr(txn, "features", None)
    label = TransactionLabel.objects.filter(txn_id=txn.pk).first()
    return {
        "id": txn.pk,
        "posted_on": txn.posted_on.isoformat(),
        "description": txn.description,
        "merchant": (features.merchant if features else "") or "",
        "amount": str(txn.amount),
        "direction": "out" if txn.amount < 0 else "in",
        "currency": txn.currency,
        "account": txn.account,
        "label": {"category": label.label_id, "source": label.source}
        if label
        else None,
    }


def labels_last_hour(user):
    """Human labels this user wrote in the last hour, as the history has them."""
    return LabelHistory.objects.filter(
        actor_id=user.pk,
        new_source=LabelSource.HUMAN,
        changed_at__gte=timezone.now() - timedelta(hours=1),
    ).count()


# --- writing --------------------------------------------------------------


def live_transaction(txn_id):
    txn = Transaction.objects.filter(pk=txn_id).first()
    if txn is None:
        raise QueueError(f"Transaction {txn_id} does not exist.", status=404)
    return txn


def active_category(name):
    category = Category.objects.filter(name=name, is_active=True).first()
    if category is None:
        raise QueueError(f"Unknown or inactive category {name!r}.")
    return category


def _snapshot(txn_id):
    label = TransactionLabel.objects.filter(txn_id=txn_id).first()
    if label is None:
        return None
    return {
        "category": label.label_id,
        "source": label.source,
        "labeled_by": label.labeled_by_id,
        "rule_id": label.rule_id,
    }


def _forget(state, txn_id):
    state["batch"] = [i for i in state["batch"] if i != txn_id]
    state["skipped"] = [i for i in state["skipped"] if i != txn_id]


def _push_undo(state, entry):
    state["undo"] = [*state["undo"], entry][-UNDO_DEPTH:]


def label(state, txn_id, category_name, user):
    """Give one transaction a human label by ``user``."""
    live_transaction(txn_id)
    category = active_category(category_name)
    with transaction.atomic():
        previous = _snapshot(txn_id)
        # A human label outranks every source, so this is never refused.
        set_label(txn_id, category.name, LabelSource.HUMAN, actor=user)
    _push_undo(
        state,
        {"txn_id": txn_id, "category": category.name, "previous": previous},
    )
    _forget(state, txn_id)
    if previous is None:
        _count_labeled(state, 1)
    logger.info("queue: %s labeled %s as %s", user, txn_id, category.name)


def skip(state, txn_id):
    live_transaction(txn_id)
    _forget(state, txn_id)
    state["skipped"] = [*state["skipped"], txn_id][-SKIPPED_MAX:]


def merchant_of(txn_id):
    live_transaction(txn_id)
    merchant = (
        Transaction.objects.filter(pk=txn_id)
        .values_list("features__merchant", flat=True)
        .first()
    )
    if not merchant:
        raise QueueError(
            f"Transaction {txn_id} has no merchant yet (its features are not built)."
        )
    return merchant


def same_merchant_unlabeled(txn_id):
    """Ids of the other unlabeled live transactions of ``txn_id``'s merchant."""
    merchant = merchant_of(txn_id)
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT t.id FROM ml_features f JOIN transactions t ON t.id = f.txn_id "
            f"WHERE f.merchant = %s AND t.id <> %s AND {_UNLABELED} ORDER BY t.id",
            [merchant, txn_id],
        )
        return merchant, [row[0] for row in cursor.fetchall()]


def merchant_rule(merchant, category, user):
    """The rule "merchant is ``merchant`` -> ``category``", made if missing.

    Returns the rule and whether it was made now.
    """
    return Rule.objects.get_or_create(
        name=f"Merchant {merchant} → {category.name}",
        defaults={
            "field": rules.MERCHANT,
            "operator": rules.EQUALS,
            "pattern": merchant,
            "category": category,
            "created_by": user,
        },
    )


def label_merchant(state, txn_id, category_name, user):
    """Label ``txn_id`` (human) and its merchant's other unlabeled ones (rule).

    The rule labels carry the id of the rule "merchant is X -> category",
    made (or reused) here, so they are measured like any other rule's and
    the rule labels new transactions of the merchant from now on.
    """
    live_transaction(txn_id)
    category = active_category(category_name)
    with transaction.atomic():
        merchant, others = same_merchant_unlabeled(txn_id)
        rule, created = merchant_rule(merchant, category, user)
        previous = _snapshot(txn_id)
        set_label(txn_id, category.name, LabelSource.HUMAN, actor=user)
        # Only unlabeled rows were chosen; anything labeled since by someone
        # else with a human label is skipped by the precedence rule.
        result = bulk_set_labels(
            dict.fromkeys(others, category.name),
            LabelSource.RULE,
            actor=user,
            rule_id=rule.pk,
        )
        # Its coverage and precision, measured without writing labels.
        transaction.on_commit(lambda: measure_rule_task.delay(rule.pk))
    _push_undo(
        state,
        {
            "txn_id": txn_id,
            "category": category.name,
            "previous": previous,
            "rule_txn_ids": others,
            "rule_id": rule.pk,
            "rule_created": created,
        },
    )
    _forget(state, txn_id)
    _count_labeled(state, result.written + (1 if previous is None else 0))
    logger.info(
        "queue: %s labeled merchant %r as %s (%d rule labels by rule %d, %d skipped)",
        user,
        merchant,
        category.name,
        result.written,
        rule.pk,
        result.skipped,
        extra={"rule_id": rule.pk},
    )
    return {"merchant": merchant, "rule_labels": result.written, "rule": rule.pk}


def undo(state, user):
    """Put back what the user's last label in this queue replaced."""
    if not state["undo"]:
        raise QueueError("Nothing to undo.", status=409)
    entry = state["undo"][-1]
    txn_id, previous = entry["txn_id"], entry["previous"]
    with transaction.atomic():
        now = TransactionLabel.objects.filter(txn_id=txn_id).first()
        if now is None or (now.label_id, now.source, now.labeled_by_id) != (
            entry["category"],
            LabelSource.HUMAN,
            user.pk,
        ):
            state["undo"] = state["undo"][:-1]
            raise QueueError(
                f"Transaction {txn_id} was relabeled since; not undone.", status=409
            )
        restored = _clear_rule_labels(entry.get("rule_txn_ids", []), entry, user)
        _drop_unused_rule(entry)
        # A label cannot be updated to a lower source, but it can be deleted
        # and inserted again; the history shows both steps. The re-inserted
        # row keeps its original author, who the history then names.
        clear_label(txn_id, actor=user)
        if previous is not None:
            set_label(
                txn_id,
                previous["category"],
                previous["source"],
                actor=previous["labeled_by"],
                rule_id=previous["rule_id"],
            )
    state["undo"] = state["undo"][:-1]
    if previous is None:
        _forget(state, txn_id)
        state["batch"] = [txn_id, *state["batch"]]
    _count_labeled(state, -(restored + (1 if previous is None else 0)))
    logger.info("queue: %s undid the label of %s", user, txn_id)
    return txn_id


def _clear_rule_labels(txn_ids, entry, user):
    """Delete the rule labels a merchant-wide label wrote, if still unchanged."""
    if not txn_ids:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('labeling.actor_id', %s, true)", [str(user.pk)]
        )
        cursor.execute(
            "DELETE FROM transaction_labels WHERE txn_id = ANY(%s) "
            "AND source = %s AND label = %s AND labeled_by_id = %s",
            [txn_ids, LabelSource.RULE.value, entry["category"], user.pk],
        )
        return cursor.rowcount


def _drop_unused_rule(entry):
    """Delete the merchant rule the undone label made, unless it labeled more
    since (a later run); then it stays, for its owner to disable."""
    if not entry.get("rule_created"):
        return
    if not TransactionLabel.objects.filter(rule_id=entry["rule_id"]).exists():
        Rule.objects.filter(pk=entry["rule_id"]).delete()


def _count_labeled(state, n):
    if state.get("left") is not None:
        state["left"] = max(0, state["left"] - n)
    state["since_count"] = state.get("since_count", 0) + max(n, 0)
