"""Build and store point-in-time features in ``ml_features``.

Three ways in, one computation (``compute_features``):

- ``build_window`` recomputes the features of the live transactions posted in
  a date range (or all of them), re-reading the earlier history of the same
  accounts from ``transactions``;
- ``build_transactions`` brings the features of given transactions up to
  date (new, edited or soft-deleted ones), recomputing only the
  account-and-merchant groups they belong to, with the history read from the
  stored features;
- ``features_for_new`` computes features for transactions that are not
  stored at all (a suggestion request), against the stored history.

Writes are upserts that skip unchanged rows, so every build is idempotent.
Transactions are split by account into ``PARTITIONS`` fixed partitions;
a build holds a transaction-scoped advisory lock on each partition it
writes, taken in ascending order, so overlapping builds wait for each other
instead of racing or deadlocking.
"""

import io
import logging
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal

import polars as pl
from django.db import connection, transaction

from mlcore.features.compute import (
    FEATURE_COLUMNS,
    FEATURE_VERSION,
    INPUT_SCHEMA,
    compute_features,
)
from mlcore.features.merchant import merchant_expr

logger = logging.getLogger(__name__)

# Enough partitions to keep two to eight workers busy, few enough that a
# partition of a million-row table is still a large, efficient batch.
PARTITIONS = 16

# Namespace of the advisory locks that guard feature writes (an arbitrary
# constant that no other part of the project uses).
LOCK_NAMESPACE = 7301

# Rows per chunk of a window build: a million-row table becomes a handful of
# chunks, each small enough to keep a worker's memory well under a gigabyte.
DEFAULT_BATCH_SIZE = 250_000

# Threads for command-line window builds: with two, PostgreSQL writes one
# chunk while Python computes the next.
DEFAULT_WORKERS = 2

_PARTITION_SQL = f"mod(abs(hashtext(t.account)), {PARTITIONS})"

_COPY_OPTIONS = "FORMAT csv, FORCE_NOT_NULL (merchant)"

_UPDATED_COLUMNS = [c for c in FEATURE_COLUMNS if c != "txn_id"]

_UPSERT_SQL = """
    INSERT INTO ml_features ({columns}, computed_at)
    SELECT {columns}, statement_timestamp() FROM feature_batch
    ON CONFLICT (txn_id) DO UPDATE
    SET {assignments}, computed_at = statement_timestamp()
    WHERE ({current}) IS DISTINCT FROM ({incoming})
""".format(
    columns=", ".join(FEATURE_COLUMNS),
    assignments=", ".join(f"{c} = EXCLUDED.{c}" for c in _UPDATED_COLUMNS),
    current=", ".join(f"ml_features.{c}" for c in _UPDATED_COLUMNS),
    incoming=", ".join(f"EXCLUDED.{c}" for c in _UPDATED_COLUMNS),
)


@dataclass
class BuildResult:
    processed: int = 0
    written: int = 0
    deleted: int = 0

    def __iadd__(self, other):
        self.processed += other.processed
        self.written += other.written
        self.deleted += other.deleted
        return self


@dataclass(frozen=True)
class Chunk:
    """Account partitions built together, and how many rows they hold."""

    partitions: tuple
    rows: int


def plan_chunks(since=None, until=None, batch_size=DEFAULT_BATCH_SIZE):
    """Split a window into chunks of whole partitions of about ``batch_size``.

    Partitions hold disjoint accounts, so chunks can be built in any order
    or in parallel and give the same result.
    """
    conditions, params = _dated_between(since, until)
    conditions.append("t.deleted_at IS NULL")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {_PARTITION_SQL} AS p, COUNT(*) FROM transactions t "
            f"WHERE {' AND '.join(conditions)} GROUP BY p ORDER BY p",
            params,
        )
        counts = cursor.fetchall()

    chunks, partitions, rows = [], [], 0
    for partition, count in counts:
        if partitions and rows + count > batch_size:
            chunks.append(Chunk(tuple(partitions), rows))
            partitions, rows = [], 0
        partitions.append(partition)
        rows += count
    if partitions:
        chunks.append(Chunk(tuple(partitions), rows))
    return chunks


def build_in_chunks(
    since=None,
    until=None,
    batch_size=DEFAULT_BATCH_SIZE,
    workers=1,
    on_progress=None,
):
    """Build a window chunk by chunk, one database transaction per chunk.

    With ``workers`` above one, chunks run in that many threads, each on its
    own database connection, so that one chunk is computed while another is
    written. Threads see only committed data. ``on_progress(done, total)``
    is called after each chunk.
    """
    chunks = plan_chunks(since, until, batch_size)
    total = sum(chunk.rows for chunk in chunks)
    result = BuildResult()

    def report(chunk_result):
        nonlocal result
        result += chunk_result
        if on_progress is not None:
            on_progress(result.processed, total)

    if workers <= 1:
        for chunk in chunks:
            report(build_window(since, until, chunk.partitions))
        return result

    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = [
            pool.submit(_build_in_thread, since, until, chunk.partitions)
            for chunk in chunks
        ]
        for future in as_completed(futures):
            report(future.result())
    return result


def _build_in_thread(since, until, partitions):
    try:
        return build_window(since, until, partitions)
    finally:
        connection.close()


def build_window(since=None, until=None, partitions=None):
    """Recompute features of live transactions posted in ``[since, until]``.

    ``None`` leaves a bound open; ``partitions`` limits the build to some
    account partitions (the unit of parallel work). Features of
    soft-deleted transactions in the range are removed.
    """
    partitions = sorted(range(PARTITIONS) if partitions is None else partitions)
    conditions = ["t.deleted_at IS NULL", f"{_PARTITION_SQL} = ANY(%(partitions)s)"]
    if until is not None:
        conditions.append("t.posted_on <= %(until)s")
    params = {"partitions": partitions, "since": since, "until": until}
    if since is not None:
        # The window's rows plus the earlier history of the same accounts.
        conditions.append(
            "t.account IN (SELECT account FROM transactions w "
            "WHERE w.deleted_at IS NULL AND w.posted_on >= %(since)s"
            + (" AND w.posted_on <= %(until)s" if until is not None else "")
            + ")"
        )

    with transaction.atomic():
        _lock_partitions(partitions)
        rows = _read_transactions(" AND ".join(conditions), params)
        features = compute_features(rows)
        if since is not None:
            in_window = rows.filter(pl.col("posted_on") >= since)["id"]
            features = features.filter(pl.col("txn_id").is_in(in_window.implode()))
        written = _write(features)
        deleted = _delete_soft_deleted(since, until, partitions)

    return BuildResult(processed=len(features), written=written, deleted=deleted)


def build_transactions(txn_ids):
    """Bring the features of ``txn_ids`` and everything they affect up to date.

    A new or edited transaction changes the history of the later
    transactions of its account and merchant, and a soft-deleted one removes
    itself from that history. Those groups are recomputed from the stored
    features, and rows from the earliest affected day on are rewritten.
    """
    txn_ids = sorted(set(txn_ids))
    if not txn_ids:
        return BuildResult()

    with transaction.atomic():
        changed = _read_transactions(
            "t.id = ANY(%(ids)s) AND t.deleted_at IS NULL", {"ids": txn_ids}
        ).with_columns(merchant=merchant_expr(pl.col("description")))
        starts = (
            pl.concat(
                [
                    changed.select("account", "merchant", "posted_on"),
                    _read_stored_rows(txn_ids),
                ]
            )
            .group_by("account", "merchant")
            .agg(start=pl.col("posted_on").min())
        )
        _lock_partitions(_partitions_of(starts["account"]))

        history = _read_stored_groups(starts, exclude=txn_ids)
        rows = pl.concat([history, changed], how="diagonal_relaxed")
        affected = (
            rows.join(starts, on=["account", "merchant"])
            .filter(pl.col("posted_on") >= pl.col("start"))
            .get_column("id")
        )
        features = compute_features(rows).filter(
            pl.col("txn_id").is_in(affected.implode())
        )
        written = _write(features)
        deleted = _delete_features_of_deleted(txn_ids)
        _mark_current(txn_ids)

    return BuildResult(processed=len(features), written=written, deleted=deleted)


def pending_transaction_ids(limit=None):
    """Live transactions whose features are missing, outdated or stale."""
    sql = """
        SELECT t.id FROM transactions t
        LEFT JOIN ml_features f ON f.txn_id = t.id
        WHERE t.deleted_at IS NULL
          AND (f.txn_id IS NULL OR f.feature_version <> %s
               OR t.updated_at > f.computed_at)
        UNION ALL
        SELECT f.txn_id FROM ml_features f
        JOIN transactions t ON t.id = f.txn_id
        WHERE t.deleted_at IS NOT NULL
        ORDER BY 1
    """
    if limit is not None:
        sql += " LIMIT %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [FEATURE_VERSION, *([limit] if limit else [])])
        return [row[0] for row in cursor.fetchall()]


def features_for_new(transactions):
    """Compute features of unsaved transactions against the stored history.

    ``transactions`` is a list of dicts with ``account``, ``posted_on``,
    ``description`` and ``amount``. Each one is placed after every stored
    transaction of its day, as if it had just been imported. Returns a list
    of feature dicts in input order; nothing is written.
    """
    if not transactions:
        return []
    new = pl.DataFrame(
        {
            "id": [_NEW_ID_BASE + i for i in range(len(transactions))],
            "account": [t["account"] for t in transactions],
            "posted_on": [t["posted_on"] for t in transactions],
            "description": [t["description"] for t in transactions],
            "amount_cents": [round(t["amount"] * 100) for t in transactions],
        },
        schema=INPUT_SCHEMA,
    ).with_columns(merchant=merchant_expr(pl.col("description")))

    history = _read_stored_groups(new.select("account", "merchant").unique())
    rows = pl.concat([history, new], how="diagonal_relaxed")
    features = compute_features(rows)
    features = features.filter(pl.col("txn_id") >= _NEW_ID_BASE).sort("txn_id")
    return [
        {
            **row,
            "txn_id": None,
            "amount": Decimal(row["amount"]).scaleb(-2),
            "abs_amount": Decimal(row["abs_amount"]).scaleb(-2),
        }
        for row in features.to_dicts()
    ]


# Ids given to unsaved transactions: above any real bigserial id in use.
_NEW_ID_BASE = 2**62


def _lock_partitions(partitions):
    with connection.cursor() as cursor:
        for partition in sorted(set(partitions)):
            cursor.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, partition]
            )


def _partitions_of(accounts):
    if len(accounts) == 0:
        return []
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT {_PARTITION_SQL} FROM unnest(%s::text[]) AS t(account)",
            [accounts.unique().to_list()],
        )
        return [row[0] for row in cursor.fetchall()]


def copy_out(sql, params, schema):
    """Run ``sql`` through COPY and read the rows into a frame of ``schema``."""
    buffer = io.BytesIO()
    statement = f"COPY ({sql}) TO STDOUT (FORMAT csv)"
    with connection.cursor() as cursor, cursor.cursor.copy(statement, params) as copy:
        for chunk in copy:
            buffer.write(chunk)
    if buffer.tell() == 0:
        return pl.DataFrame(schema=schema)
    buffer.seek(0)
    return pl.read_csv(buffer, has_header=False, schema=schema)


def _read_transactions(where, params):
    return copy_out(
        "SELECT t.id, t.account, t.posted_on, t.description, "
        "(t.amount * 100)::bigint FROM transactions t WHERE " + where,
        params,
        INPUT_SCHEMA,
    )


_STORED_SCHEMA = {**INPUT_SCHEMA, "merchant": pl.Utf8, "tokens": pl.Utf8}


def _read_stored_groups(groups, exclude=()):
    """Stored history of the given (account, merchant) groups.

    Everything history needs is in ``ml_features`` itself, so this is one
    index scan; transactions soft-deleted since their features were stored
    are dropped.
    """
    if len(groups) == 0:
        return pl.DataFrame(schema=_STORED_SCHEMA).with_columns(
            tokens=pl.lit(None, pl.List(pl.Utf8))
        )
    stored = copy_out(
        "SELECT f.txn_id, f.account, f.ts_month + (f.day_of_month - 1), NULL, "
        "(f.amount * 100)::bigint, f.merchant, array_to_string(f.tokens, ' ') "
        "FROM ml_features f "
        "WHERE (f.account, f.merchant) IN "
        "(SELECT * FROM unnest(%s::text[], %s::text[])) "
        "AND f.feature_version = %s AND NOT EXISTS "
        "(SELECT 1 FROM transactions t "
        "WHERE t.id = f.txn_id AND t.deleted_at IS NOT NULL)",
        [groups["account"].to_list(), groups["merchant"].to_list(), FEATURE_VERSION],
        _STORED_SCHEMA,
    )
    excluded = pl.Series(list(exclude), dtype=pl.Int64).implode()
    return stored.filter(~pl.col("id").is_in(excluded)).with_columns(
        tokens=pl.col("tokens")
        .fill_null("")
        .str.split(" ")
        .list.eval(pl.element().filter(pl.element() != ""))
    )


def _read_stored_rows(txn_ids):
    """Where the given transactions were stored: (account, merchant, date)."""
    return copy_out(
        "SELECT account, merchant, ts_month + (day_of_month - 1) "
        "FROM ml_features WHERE txn_id = ANY(%s)",
        [txn_ids],
        {"account": pl.Utf8, "merchant": pl.Utf8, "posted_on": pl.Date},
    )


def _write(features):
    """Store feature rows; return how many were inserted or changed.

    Rows without a stored version are copied straight into the table; the
    others go through a staging table and an upsert that skips rows whose
    values did not change.
    """
    if len(features) == 0:
        return 0
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT txn_id FROM ml_features WHERE txn_id = ANY(%s)",
            [features["txn_id"].to_list()],
        )
        stored = pl.Series("txn_id", [row[0] for row in cursor.fetchall()])
    is_stored = pl.col("txn_id").is_in(stored.implode())
    new, existing = features.filter(~is_stored), features.filter(is_stored)

    columns = ", ".join(FEATURE_COLUMNS)
    written = 0
    with connection.cursor() as cursor:
        if len(new):
            with cursor.cursor.copy(
                f"COPY ml_features ({columns}) FROM STDIN ({_COPY_OPTIONS})"
            ) as copy:
                copy.write(_to_csv(new))
            written += len(new)
        if len(existing):
            cursor.execute(
                "CREATE TEMP TABLE IF NOT EXISTS feature_batch "
                "(LIKE ml_features INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
            )
            with cursor.cursor.copy(
                f"COPY feature_batch ({columns}) FROM STDIN ({_COPY_OPTIONS})"
            ) as copy:
                copy.write(_to_csv(existing))
            cursor.execute(_UPSERT_SQL)
            written += cursor.rowcount
            cursor.execute("TRUNCATE feature_batch")
    return written


def _to_csv(table):
    """Render features as CSV that PostgreSQL's COPY reads into ml_features."""
    cents = pl.col("amount")
    abs_cents = pl.col("abs_amount")
    tokens = pl.col("tokens").list.eval(
        pl.element().str.replace_all(r'(["\\])', r"\$1")
    )
    out = table.select(
        pl.col("txn_id"),
        pl.col("account"),
        pl.col("ts_month"),
        pl.col("merchant"),
        pl.concat_str([pl.lit('{"'), tokens.list.join('","'), pl.lit('"}')])
        .str.replace(r'^\{""\}$', "{}")
        .alias("tokens"),
        _decimal(cents).alias("amount"),
        _decimal(abs_cents).alias("abs_amount"),
        pl.col("log_amount"),
        *(
            pl.col(name)
            for name in FEATURE_COLUMNS[FEATURE_COLUMNS.index("is_credit") :]
        ),
    )
    return out.write_csv(include_header=False, float_precision=None).encode()


def _decimal(cents):
    """Integer cents as a decimal string: -450 -> "-4.50"."""
    magnitude = cents.abs()
    return pl.concat_str(
        [
            pl.when(cents < 0).then(pl.lit("-")).otherwise(pl.lit("")),
            (magnitude // 100).cast(pl.Utf8),
            pl.lit("."),
            (magnitude % 100).cast(pl.Utf8).str.zfill(2),
        ]
    )


def _dated_between(since, until):
    """SQL conditions and parameters for ``since <= t.posted_on <= until``."""
    conditions, params = [], []
    if since is not None:
        conditions.append("t.posted_on >= %s")
        params.append(since)
    if until is not None:
        conditions.append("t.posted_on <= %s")
        params.append(until)
    return conditions, params


def _delete_soft_deleted(since, until, partitions):
    conditions, params = _dated_between(since, until)
    conditions += ["t.deleted_at IS NOT NULL", f"{_PARTITION_SQL} = ANY(%s)"]
    params.append(partitions)
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM ml_features f USING transactions t "
            "WHERE t.id = f.txn_id AND " + " AND ".join(conditions),
            params,
        )
        return cursor.rowcount


def _mark_current(txn_ids):
    """Stamp rows of edited transactions whose features did not change.

    Without it an edit that leaves the features as they were would look
    pending forever, since the upsert skips unchanged rows.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE ml_features f SET computed_at = statement_timestamp() "
            "FROM transactions t "
            "WHERE t.id = f.txn_id AND f.txn_id = ANY(%s) "
            "AND t.updated_at > f.computed_at",
            [txn_ids],
        )


def _delete_features_of_deleted(txn_ids):
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM ml_features f USING transactions t "
            "WHERE t.id = f.txn_id AND t.deleted_at IS NOT NULL "
            "AND t.id = ANY(%s)",
            [txn_ids],
        )
        return cursor.rowcount
