"""Load generated transactions and golden labels into PostgreSQL.

Rows are streamed with ``COPY`` into a temporary staging table while they
are generated, so Python and the server work at the same time. Two set-based
statements then move them into ``transactions`` and ``transaction_labels``:

- transactions are inserted with ``ON CONFLICT DO NOTHING`` on the
  ``(account, external_id)`` unique index, so loading the same rows again
  adds nothing;
- labels are joined back to ``transactions`` by ``(account, external_id)``
  and inserted with ``ON CONFLICT (txn_id) DO NOTHING``: an existing label,
  whatever its source, is never overwritten, and the label triggers record
  each new one in the history;
- the demo rules (``labeling.synthetic.demo_rules``) are created when
  missing, and rule labels carry the id of the rule that wrote them.

Everything runs in one database transaction, so a failed load leaves no
trace. The ORM is bypassed on purpose: a million model instances would
cost more than the whole load.
"""

import logging
from dataclasses import dataclass

from django.db import connection, transaction

from labeling.models import Rule
from labeling.synthetic.demo_rules import DEMO_RULES

logger = logging.getLogger(__name__)

_DROP_STAGE = "DROP TABLE IF EXISTS pg_temp.synthetic_txn_stage"

# ON COMMIT DROP cleans up after a load in autocommit mode; the explicit
# drop above covers a load nested in a longer transaction (tests).
_CREATE_STAGE = """
    CREATE TEMPORARY TABLE synthetic_txn_stage (
        account varchar(64) NOT NULL,
        external_id varchar(64) NOT NULL,
        posted_on date NOT NULL,
        description text NOT NULL,
        amount numeric(12, 2) NOT NULL,
        label varchar(64),
        source varchar(8),
        rule varchar(100)
    ) ON COMMIT DROP
"""

_COPY_STAGE = """
    COPY synthetic_txn_stage
        (account, external_id, posted_on, description, amount, label, source, rule)
    FROM STDIN
"""

_INSERT_TRANSACTIONS = """
    INSERT INTO transactions
        (account, external_id, posted_on, description, amount, currency)
    SELECT account, external_id, posted_on, description, amount, 'USD'
    FROM synthetic_txn_stage
    ON CONFLICT (account, external_id) WHERE external_id IS NOT NULL DO NOTHING
"""

_INSERT_LABELS = """
    INSERT INTO transaction_labels (txn_id, label, source, rule_id)
    SELECT t.id, s.label, s.source, r.id
    FROM synthetic_txn_stage AS s
    JOIN transactions AS t
      ON t.account = s.account AND t.external_id = s.external_id
    LEFT JOIN label_rules AS r ON r.name = s.rule
    WHERE s.label IS NOT NULL
    ON CONFLICT (txn_id) DO NOTHING
"""


@dataclass(frozen=True)
class LoadResult:
    staged: int  # rows generated and copied
    staged_labels: int  # of those, rows carrying a golden label
    transactions: int  # transactions actually inserted
    labels: int  # labels actually inserted

    @property
    def skipped(self):
        """Transactions that were already present."""
        return self.staged - self.transactions


def load(rows, using=None):
    """Load ``SyntheticTxn`` rows (or any 8-tuples in that order).

    ``using`` is a Django connection; the default connection when omitted.
    """
    conn = connection if using is None else using
    with transaction.atomic(using=conn.alias), conn.cursor() as cursor:
        ensure_demo_rules(using=conn.alias)
        cursor.execute(_DROP_STAGE)
        cursor.execute(_CREATE_STAGE)
        staged, staged_labels = _copy(cursor.cursor, rows)
        logger.debug("Staged %d rows (%d labeled)", staged, staged_labels)
        # Temporary tables are never auto-analyzed; without statistics the
        # planner guesses the label join badly.
        cursor.execute("ANALYZE synthetic_txn_stage")
        cursor.execute(_INSERT_TRANSACTIONS)
        inserted = cursor.rowcount
        logger.debug("Inserted %d transactions", inserted)
        cursor.execute(_INSERT_LABELS)
        labeled = cursor.rowcount
        logger.debug("Inserted %d labels", labeled)
        cursor.execute(_DROP_STAGE)
    return LoadResult(staged, staged_labels, inserted, labeled)


def _copy(cursor, rows):
    staged = labeled = 0
    with cursor.copy(_COPY_STAGE) as copy:
        write = copy.write_row
        for row in rows:
            write(row[:8])
            staged += 1
            if row[5] is not None:
                labeled += 1
    return staged, labeled


def ensure_demo_rules(using=None):
    """Create the demo rules that are missing; return all of them.

    A rule of the same name is left as it is: someone may have tuned it.
    """
    rules = []
    for spec in DEMO_RULES:
        fields = {key: value for key, value in spec.items() if key != "category"}
        rule, _ = Rule.objects.using(using).get_or_create(
            name=spec["name"],
            defaults={**fields, "category_id": spec["category"]},
        )
        rules.append(rule)
    return rules
