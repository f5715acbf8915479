"""Label precedence, history and cascades hold for every kind of writer."""

from datetime import date
from decimal import Decimal

import pytest
from django.contrib.auth import get_user_model
from django.db import IntegrityError, ProgrammingError, connection, transaction

from labeling.labels import (
    LabelPrecedenceError,
    bulk_set_labels,
    clear_label,
    set_label,
)
from labeling.models import (
    LabelHistory,
    LabelSource,
    Transaction,
    TransactionLabel,
)
from mlcore.models import FeatureVector

pytestmark = pytest.mark.django_db


def sql(statement, params=()):
    with connection.cursor() as cursor:
        cursor.execute(statement, params)
        return cursor.fetchall() if cursor.description else None


def history_of(txn):
    return list(
        LabelHistory.objects.filter(txn_id=txn.pk)
        .order_by("id")
        .values_list("operation", "old_label", "new_label", "old_source", "new_source")
    )


@pytest.fixture
def alice():
    return get_user_model().objects.create_user("alice")


def test_raw_sql_insert_gets_defaults_and_history(make_txn):
    txn = make_txn()

    sql(
        "INSERT INTO transaction_labels (txn_id, label, source) "
        "VALUES (%s, 'Groceries', 'human')",
        [txn.pk],
    )

    label = TransactionLabel.objects.get(txn=txn)
    assert label.created_at is not None and label.updated_at is not None
    assert history_of(txn) == [("insert", None, "Groceries", None, "human")]


def test_higher_source_overwrites_lower_and_is_logged(make_txn, alice):
    txn = make_txn()
    set_label(txn.pk, "Shopping", LabelSource.IMPORT)
    set_label(txn.pk, "Household", LabelSource.RULE, rule_id=7)
    set_label(txn.pk, "Groceries", LabelSource.HUMAN, actor=alice)

    label = TransactionLabel.objects.get(txn=txn)
    assert (label.label_id, label.source, label.labeled_by) == (
        "Groceries",
        "human",
        alice,
    )
    assert label.rule_id is None
    assert history_of(txn) == [
        ("insert", None, "Shopping", None, "import"),
        ("update", "Shopping", "Household", "import", "rule"),
        ("update", "Household", "Groceries", "rule", "human"),
    ]
    last = LabelHistory.objects.filter(txn_id=txn.pk).latest("id")
    assert last.actor == alice


def test_same_source_may_correct_a_label(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Shopping", LabelSource.HUMAN)
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    assert TransactionLabel.objects.get(txn=txn).label_id == "Groceries"


def test_lower_source_is_refused_with_a_clear_error(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    with pytest.raises(LabelPrecedenceError) as excinfo:
        set_label(txn.pk, "Shopping", LabelSource.RULE)

    assert "has a human label 'Groceries'" in str(excinfo.value)
    assert "rule label cannot overwrite it" in str(excinfo.value)
    assert TransactionLabel.objects.get(txn=txn).label_id == "Groceries"
    assert len(history_of(txn)) == 1


def test_raw_sql_update_to_lower_source_is_refused(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    refused = pytest.raises(IntegrityError, match="a import label cannot overwrite")
    with refused, transaction.atomic():
        sql(
            "UPDATE transaction_labels SET label = 'Shopping', source = 'import' "
            "WHERE txn_id = %s",
            [txn.pk],
        )

    assert TransactionLabel.objects.get(txn=txn).source == "human"


def test_raw_upsert_to_lower_source_is_refused(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.RULE)

    with pytest.raises(IntegrityError, match="cannot overwrite"), transaction.atomic():
        sql(
            "INSERT INTO transaction_labels (txn_id, label, source) "
            "VALUES (%s, 'Shopping', 'import') ON CONFLICT (txn_id) "
            "DO UPDATE SET label = EXCLUDED.label, source = EXCLUDED.source",
            [txn.pk],
        )


def test_raw_insert_over_an_existing_label_is_refused(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.IMPORT)

    with pytest.raises(IntegrityError), transaction.atomic():
        sql(
            "INSERT INTO transaction_labels (txn_id, label, source) "
            "VALUES (%s, 'Shopping', 'human')",
            [txn.pk],
        )


def test_orm_queryset_update_to_lower_source_is_refused(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    with pytest.raises(IntegrityError), transaction.atomic():
        TransactionLabel.objects.filter(txn=txn).update(source=LabelSource.RULE)


def test_orm_bulk_create_is_logged(make_txn):
    txns = [make_txn() for _ in range(3)]

    TransactionLabel.objects.bulk_create(
        TransactionLabel(txn=t, label_id="Groceries", source="import") for t in txns
    )

    assert (
        LabelHistory.objects.filter(
            txn_id__in=[t.pk for t in txns], operation="insert"
        ).count()
        == 3
    )


def test_bulk_write_skips_and_counts_higher_sources(make_txn):
    human, rule, imported, unlabeled = (make_txn() for _ in range(4))
    set_label(human.pk, "Groceries", LabelSource.HUMAN)
    set_label(rule.pk, "Groceries", LabelSource.RULE)
    set_label(imported.pk, "Groceries", LabelSource.IMPORT)

    result = bulk_set_labels(
        {t.pk: "Household" for t in (human, rule, imported, unlabeled)},
        LabelSource.RULE,
        rule_id=3,
    )

    assert (result.written, result.skipped) == (3, 1)
    labels = dict(TransactionLabel.objects.values_list("txn_id", "label"))
    assert labels[human.pk] == "Groceries"
    assert labels[rule.pk] == labels[imported.pk] == labels[unlabeled.pk] == "Household"
    assert TransactionLabel.objects.get(txn=unlabeled).rule_id == 3


def test_unchanged_write_adds_no_history(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    assert len(history_of(txn)) == 1


def test_clear_label_records_the_actor(make_txn, alice):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN, actor=alice)

    assert clear_label(txn.pk, actor=alice) is True

    assert not TransactionLabel.objects.filter(txn=txn).exists()
    deleted = LabelHistory.objects.get(txn_id=txn.pk, operation="delete")
    assert (deleted.old_label, deleted.old_source, deleted.actor) == (
        "Groceries",
        "human",
        alice,
    )


def test_unknown_category_is_refused(make_txn):
    txn = make_txn()

    with pytest.raises(IntegrityError), transaction.atomic():
        set_label(txn.pk, "Not A Category", LabelSource.HUMAN)


def test_invalid_source_is_refused(make_txn):
    txn = make_txn()

    with pytest.raises(IntegrityError), transaction.atomic():
        sql(
            "INSERT INTO transaction_labels (txn_id, label, source) "
            "VALUES (%s, 'Groceries', 'guess')",
            [txn.pk],
        )


def make_features(txn):
    return FeatureVector.objects.create(
        txn=txn,
        account=txn.account,
        ts_month=txn.posted_on.replace(day=1),
        merchant="blue bottle coffee",
        tokens=["blue", "bottle", "coffee"],
        amount=txn.amount,
        abs_amount=abs(txn.amount),
        log_amount=1.7,
        is_credit=False,
        is_round_amount=False,
        dow=txn.posted_on.weekday(),
        is_weekend=False,
        day_of_month=txn.posted_on.day,
        month=txn.posted_on.month,
        is_subscription=False,
        merchant_prior_count=0,
        feature_version=1,
    )


@pytest.mark.parametrize("how", ["orm", "raw_sql"])
def test_hard_delete_cascades_in_the_schema_and_keeps_history(make_txn, how):
    txn = make_txn()
    make_features(txn)
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    if how == "orm":
        Transaction.all_objects.filter(pk=txn.pk).delete()
    else:
        sql("DELETE FROM transactions WHERE id = %s", [txn.pk])

    assert not FeatureVector.objects.filter(txn_id=txn.pk).exists()
    assert not TransactionLabel.objects.filter(txn_id=txn.pk).exists()
    assert [op for op, *_ in history_of(txn)] == ["insert", "delete"]


def test_schema_declares_the_cascades():
    rules = dict(
        sql(
            "SELECT conrelid::regclass::text || '.' || a.attname, confdeltype "
            "FROM pg_constraint c JOIN pg_attribute a "
            "ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
            "WHERE c.contype = 'f' AND c.confrelid = 'transactions'::regclass"
        )
    )
    assert {
        "transaction_labels.txn_id": "c",
        "ml_features.txn_id": "c",
        "label_rule_matches.txn_id": "c",
    }.items() <= rules.items()


def test_history_is_append_only(make_txn):
    txn = make_txn()
    set_label(txn.pk, "Groceries", LabelSource.HUMAN)

    for statement in (
        "UPDATE transaction_label_history SET new_label = 'Shopping'",
        "DELETE FROM transaction_label_history",
    ):
        with pytest.raises(ProgrammingError, match="append-only"), transaction.atomic():
            sql(statement)

    assert len(history_of(txn)) == 1


def test_soft_deleted_transactions_are_hidden_by_default(make_txn):
    live = make_txn()
    gone = make_txn()
    Transaction.objects.filter(pk=gone.pk).update(deleted_at="2025-04-01T00:00Z")

    assert list(Transaction.objects.all()) == [live]
    assert Transaction.all_objects.count() == 2
    assert sql("SELECT COUNT(*) FROM transactions WHERE deleted_at IS NULL") == [(1,)]


def test_external_id_is_unique_per_account_when_present(make_txn):
    make_txn(account="A", external_id="1")
    make_txn(account="B", external_id="1")
    make_txn(account="A", external_id=None)
    make_txn(account="A", external_id=None)

    with pytest.raises(IntegrityError), transaction.atomic():
        make_txn(account="A", external_id="1")


def test_updated_at_follows_raw_updates(make_txn):
    txn = make_txn()

    sql(
        "UPDATE transactions SET description = 'x', updated_at = '2000-01-01' "
        "WHERE id = %s",
        [txn.pk],
    )

    (updated_at,) = sql("SELECT updated_at FROM transactions WHERE id = %s", [txn.pk])[
        0
    ]
    assert updated_at.year > 2000


def test_quick_start_queries_run_as_written(make_txn):
    make_features(make_txn(posted_on=date(2025, 3, 15), amount=Decimal("-9.99")))

    assert sql("SELECT COUNT(*) FROM transactions WHERE deleted_at IS NULL") == [(1,)]
    rows = sql(
        "SELECT txn_id, merchant, dow, is_weekend, is_subscription "
        "FROM ml_features LIMIT 5"
    )
    assert rows[0][1:] == ("blue bottle coffee", 5, False, False)
    total, merchants, tokens, avg_tokens = sql(
        "SELECT COUNT(*) AS total, COUNT(merchant), COUNT(tokens), "
        "AVG(array_length(tokens, 1)) FROM ml_features"
    )[0]
    assert (total, merchants, tokens, float(avg_tokens)) == (1, 1, 1, 3.0)


def test_training_weights_by_source():
    assert {s.value: s.weight for s in LabelSource} == {
        "human": 3.0,
        "rule": 1.0,
        "import": 0.5,
    }
