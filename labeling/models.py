"""Transactions, the category vocabulary, golden labels and their history.

The rules that protect labels live in the database (see the
``0002_label_rules`` migration) so that they hold for every writer: the ORM,
the admin, bulk loads, the API and raw SQL alike.
"""

from django.conf import settings
from django.db import models
from django.db.models.functions import Now


class LabelSource(models.TextChoices):
    """Where a label came from, highest authority first."""

    HUMAN = "human", "Human"
    RULE = "rule", "Rule"
    IMPORT = "import", "Import"

    @property
    def rank(self):
        return SOURCE_RANK[self]

    @property
    def weight(self):
        return TRAINING_WEIGHTS[self]


# A higher rank may overwrite a lower or equal one, never the reverse. The
# same ranks are written into the database's ``label_source_rank`` function.
SOURCE_RANK = {LabelSource.HUMAN: 3, LabelSource.RULE: 2, LabelSource.IMPORT: 1}

# Sample weight of a label in training, by source.
TRAINING_WEIGHTS = {
    LabelSource.HUMAN: 3.0,
    LabelSource.RULE: 1.0,
    LabelSource.IMPORT: 0.5,
}


class Category(models.Model):
    name = models.CharField(max_length=64, unique=True)
    parent = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="children",
    )
    is_active = models.BooleanField(default=True, db_default=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "categories"
        verbose_name_plural = "categories"
        ordering = ["name"]

    def __str__(self):
        return self.name


class LiveTransactionManager(models.Manager):
    """Hide soft-deleted transactions."""

    def get_queryset(self):
        return super().get_queryset().filter(deleted_at__isnull=True)


class Transaction(models.Model):
    account = models.CharField(max_length=64)
    external_id = models.CharField(
        max_length=64,
        null=True,
        blank=True,
        help_text="The bank's own id; re-importing the same id is a no-op.",
    )
    posted_on = models.DateField()
    description = models.TextField()
    amount = models.DecimalField(
        max_digits=12, decimal_places=2, help_text="Negative is money out."
    )
    currency = models.CharField(max_length=3, default="USD", db_default="USD")
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)
    deleted_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = LiveTransactionManager()
    all_objects = models.Manager()  # noqa: DJ012 (ruff misreads it as a field)

    class Meta:
        db_table = "transactions"
        base_manager_name = "all_objects"
        ordering = ["-posted_on", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["account", "external_id"],
                condition=models.Q(external_id__isnull=False),
                name="transactions_account_external_id_uniq",
            ),
        ]
        indexes = [
            models.Index(fields=["posted_on", "id"], name="transactions_posted_idx"),
            models.Index(fields=["account", "posted_on"], name="transactions_acct_idx"),
            # Soft-deleted rows are few; builders look them up often.
            models.Index(
                fields=["id"],
                condition=models.Q(deleted_at__isnull=False),
                name="transactions_deleted_idx",
            ),
        ]

    def __str__(self):
        return f"{self.posted_on} {self.description} {self.amount}"


class TransactionLabel(models.Model):
    """The one golden label of a transaction.

    Deleting the transaction deletes the label through ``ON DELETE CASCADE``
    in the schema; the label's history stays.
    """

    txn = models.OneToOneField(
        Transaction,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_column="txn_id",
        related_name="label",
    )
    label = models.ForeignKey(
        Category,
        to_field="name",
        on_delete=models.PROTECT,
        db_column="label",
        related_name="labels",
    )
    source = models.CharField(max_length=8, choices=LabelSource.choices)
    labeled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    rule_id = models.BigIntegerField(
        null=True, blank=True, help_text="The rule that wrote a rule label."
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    updated_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "transaction_labels"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(source__in=LabelSource.values),
                name="transaction_labels_source_valid",
            ),
        ]
        indexes = [
            models.Index(fields=["label"], name="transaction_labels_label_idx"),
            models.Index(fields=["source"], name="transaction_labels_source_idx"),
        ]

    def __str__(self):
        return f"{self.txn_id}: {self.label_id} ({self.source})"

    @property
    def weight(self):
        return TRAINING_WEIGHTS[LabelSource(self.source)]


class LabelHistory(models.Model):
    """Append-only record of every label change, written by a trigger.

    ``txn_id`` is a plain column, not a foreign key, so the record outlives
    the transaction.
    """

    class Operation(models.TextChoices):
        INSERT = "insert"
        UPDATE = "update"
        DELETE = "delete"

    txn_id = models.BigIntegerField(db_index=True)
    operation = models.CharField(max_length=6, choices=Operation.choices)
    old_label = models.CharField(max_length=64, null=True)
    new_label = models.CharField(max_length=64, null=True)
    old_source = models.CharField(max_length=8, null=True)
    new_source = models.CharField(max_length=8, null=True)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    rule_id = models.BigIntegerField(null=True)
    changed_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "transaction_label_history"
        verbose_name_plural = "label history"
        ordering = ["-changed_at", "-id"]
        indexes = [
            # Labels per hour in the queue: one person's recent changes.
            models.Index(
                fields=["actor", "changed_at"], name="label_history_actor_idx"
            ),
        ]

    def __str__(self):
        return (
            f"{self.txn_id}: {self.old_label} ({self.old_source}) -> "
            f"{self.new_label} ({self.new_source})"
        )
