"""Write golden labels while respecting source precedence.

The database enforces the rules (see the ``0002_label_rules`` migration);
these functions add what callers need on top: a clear exception for a
refused single write, skip counts for bulk writes, and the actor of a
deletion.
"""

from dataclasses import dataclass

from django.db import connection, transaction

from labeling.models import LabelSource, TransactionLabel

_UPSERT_SQL = """
    INSERT INTO transaction_labels (txn_id, label, source, labeled_by_id, rule_id)
    SELECT * FROM unnest(
        %s::bigint[], %s::varchar[], %s::varchar[], %s::integer[], %s::bigint[]
    )
    ON CONFLICT (txn_id) DO UPDATE
    SET label = EXCLUDED.label,
        source = EXCLUDED.source,
        labeled_by_id = EXCLUDED.labeled_by_id,
        rule_id = EXCLUDED.rule_id
    WHERE label_source_rank(EXCLUDED.source)
          >= label_source_rank(transaction_labels.source)
    RETURNING txn_id
"""


class LabelPrecedenceError(Exception):
    """A label of lower source would have overwritten a higher one."""

    def __init__(self, txn_id, existing_label, existing_source, attempted_source):
        self.txn_id = txn_id
        self.existing_label = existing_label
        self.existing_source = existing_source
        self.attempted_source = attempted_source
        super().__init__(
            f"Transaction {txn_id} has a {existing_source} label "
            f"{existing_label!r}; a {attempted_source} label cannot overwrite it."
        )


@dataclass(frozen=True)
class BulkResult:
    written: int
    skipped: int


def set_label(txn_id, category, source, *, actor=None, rule_id=None):
    """Set the label of one transaction, or raise ``LabelPrecedenceError``."""
    source = LabelSource(source)
    written = _upsert([txn_id], [category], source, actor, rule_id)
    if written:
        return

    existing = TransactionLabel.objects.get(txn_id=txn_id)
    raise LabelPrecedenceError(txn_id, existing.label_id, existing.source, source)


def bulk_set_labels(labels, source, *, actor=None, rule_id=None):
    """Write ``{txn_id: category}`` in one statement.

    Transactions holding a label of a higher source keep it and are counted
    as skipped.
    """
    source = LabelSource(source)
    txn_ids = list(labels)
    written = _upsert(txn_ids, [labels[t] for t in txn_ids], source, actor, rule_id)
    return BulkResult(written=written, skipped=len(txn_ids) - written)


def clear_label(txn_id, *, actor=None):
    """Delete a transaction's label; the history records who did it."""
    with transaction.atomic(), connection.cursor() as cursor:
        _set_actor(cursor, actor)
        cursor.execute("DELETE FROM transaction_labels WHERE txn_id = %s", [txn_id])
        return cursor.rowcount == 1


def _upsert(txn_ids, categories, source, actor, rule_id):
    count = len(txn_ids)
    actor_id = getattr(actor, "pk", actor)
    with connection.cursor() as cursor:
        cursor.execute(
            _UPSERT_SQL,
            [
                txn_ids,
                categories,
                [source.value] * count,
                [actor_id] * count,
                [rule_id] * count,
            ],
        )
        return len(cursor.fetchall())


def _set_actor(cursor, actor):
    actor_id = getattr(actor, "pk", actor)
    cursor.execute(
        "SELECT set_config('labeling.actor_id', %s, true)",
        ["" if actor_id is None else str(actor_id)],
    )
