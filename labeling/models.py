"""Transactions, the category vocabulary, golden labels and their history.

The rules that protect labels live in the database (see the
``0002_label_rules`` migration) so that they hold for every writer: the ORM,
the admin, bulk loads, the API and raw SQL alike.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models.functions import Now
from django.utils import timezone

from labeling import rules


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
    # A plain id, like the history's: labels outlive a deleted rule.
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


class Rule(models.Model):
    """A heuristic that labels the transactions it matches.

    Rules write ``rule`` labels through the same precedence as everyone else:
    never over a human label, over an import label only when
    ``may_override_import`` says so. When several enabled rules match one
    transaction with different categories, the highest ``priority`` wins
    (the newer rule on a tie). What a rule matches is defined in
    ``labeling.rules.Conditions``; ``labeling.rule_runs`` applies it.
    """

    class Field(models.TextChoices):
        DESCRIPTION = rules.DESCRIPTION, "description"
        MERCHANT = rules.MERCHANT, "merchant"

    class Operator(models.TextChoices):
        CONTAINS = rules.CONTAINS, "contains"
        STARTS_WITH = rules.STARTS_WITH, "starts with"
        EQUALS = rules.EQUALS, "is"
        REGEX = rules.REGEX, "matches the regular expression"

    class Sign(models.TextChoices):
        ANY = rules.ANY, "in or out"
        OUT = rules.OUT, "money out"
        IN = rules.IN, "money in"

    name = models.CharField(max_length=100, unique=True)
    field = models.CharField(
        max_length=16, choices=Field.choices, default=Field.DESCRIPTION
    )
    operator = models.CharField(
        max_length=16, choices=Operator.choices, default=Operator.CONTAINS
    )
    pattern = models.CharField(
        max_length=rules.MAX_PATTERN_LENGTH,
        blank=True,
        help_text="Text to look for, any case. Regular expressions are Python "
        "re syntax; nested quantifiers such as (a+)+ are refused.",
    )
    amount_min = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Smallest absolute amount.",
    )
    amount_max = models.DecimalField(
        max_digits=12,
        decimal_places=2,
        null=True,
        blank=True,
        help_text="Largest absolute amount.",
    )
    sign = models.CharField(max_length=3, choices=Sign.choices, default=Sign.ANY)
    account = models.CharField(
        max_length=64, blank=True, help_text="Only this account (any case)."
    )
    day_from = models.PositiveSmallIntegerField(
        null=True, blank=True, help_text="First day of the month, 1-31."
    )
    day_to = models.PositiveSmallIntegerField(
        null=True,
        blank=True,
        help_text="Last day of the month; below the first day, the window "
        "wraps around the month end.",
    )
    category = models.ForeignKey(
        Category,
        to_field="name",
        on_delete=models.PROTECT,
        db_column="category",
        related_name="rules",
    )
    priority = models.IntegerField(
        default=100, help_text="Among matching rules, the highest priority wins."
    )
    enabled = models.BooleanField(default=True)
    may_override_import = models.BooleanField(
        default=False,
        help_text="Replace import labels too (human labels are never replaced).",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        editable=False,
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    conditions_changed_at = models.DateTimeField(
        auto_now_add=True,
        help_text="When the conditions last changed; the rule's figures are "
        "measured from its first run after that.",
    )

    CONDITION_FIELDS = (
        "field",
        "operator",
        "pattern",
        "amount_min",
        "amount_max",
        "sign",
        "account",
        "day_from",
        "day_to",
    )

    class Meta:
        db_table = "label_rules"
        ordering = ["-priority", "name"]
        permissions = [("apply_rule", "Can dry-run and apply rules")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(day_from__isnull=True, day_to__isnull=True)
                | models.Q(day_from__range=(1, 31), day_to__range=(1, 31)),
                name="label_rules_day_window_valid",
            ),
        ]

    def __str__(self):
        return self.name

    def save(self, *args, **kwargs):
        # Matches measured under old conditions say nothing about new ones.
        changed = False
        if self.pk is not None:
            stored = (
                Rule.objects.filter(pk=self.pk)
                .values_list(*self.CONDITION_FIELDS)
                .first()
            )
            current = tuple(getattr(self, name) for name in self.CONDITION_FIELDS)
            changed = stored is not None and stored != current
        with transaction.atomic():
            if changed:
                self.conditions_changed_at = timezone.now()
                RuleMatch.objects.filter(rule_id=self.pk).delete()
                fields = kwargs.get("update_fields")
                if fields is not None:
                    kwargs["update_fields"] = {*fields, "conditions_changed_at"}
            super().save(*args, **kwargs)

    def conditions(self):
        return rules.Conditions(
            **{name: getattr(self, name) for name in self.CONDITION_FIELDS}
        )

    def describe(self):
        """The conditions in words, e.g. 'description contains "credit"'."""
        parts = []
        if self.pattern:
            parts.append(
                f"{self.get_field_display()} {self.get_operator_display()} "
                f'"{self.pattern}"'
            )
        if self.sign != self.Sign.ANY:
            parts.append(self.get_sign_display())
        if self.amount_min is not None or self.amount_max is not None:
            low = self.amount_min if self.amount_min is not None else "0"
            high = self.amount_max if self.amount_max is not None else "∞"
            parts.append(f"amount {low} to {high}")
        if self.account:
            parts.append(f"account {self.account}")
        if self.day_from is not None:
            parts.append(f"days {self.day_from} to {self.day_to}")
        return ", ".join(parts)

    def clean(self):
        errors = self.conditions().errors()
        if errors:
            raise ValidationError(errors)


class RuleRun(models.Model):
    """One application (or dry run) of one rule, with what it did."""

    class Trigger(models.TextChoices):
        USER = "user", "a user"
        IMPORT = "import", "new transactions"
        COMMAND = "command", "the command line"

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="runs")
    dry_run = models.BooleanField(default=False)
    trigger = models.CharField(max_length=8, choices=Trigger.choices)
    triggered_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    status = models.CharField(
        max_length=9, choices=Status.choices, default=Status.QUEUED
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    examined = models.IntegerField(
        default=0, help_text="Live transactions the run looked at."
    )
    matched = models.IntegerField(default=0, help_text="Transactions it matched.")
    labeled = models.IntegerField(
        default=0, help_text="Labels written (or, in a dry run, that would be)."
    )
    unchanged = models.IntegerField(
        default=0, help_text="Matches that already carried this rule's label."
    )
    skipped_higher_source = models.IntegerField(
        default=0, help_text="Matches kept because a human labeled them."
    )
    skipped_import = models.IntegerField(
        default=0,
        help_text="Matches kept because they have an import label and the rule "
        "may not replace those.",
    )
    conflicts = models.IntegerField(
        default=0,
        help_text="Matches that another enabled rule would give a different "
        "category; the highest priority wins.",
    )
    overruled = models.IntegerField(
        default=0, help_text="Conflicts this rule lost to a higher priority."
    )
    sample = models.JSONField(
        default=list,
        blank=True,
        help_text="Some of the changes: txn, description, current label and "
        "source, new label.",
    )
    error = models.TextField(blank=True)

    class Meta:
        db_table = "label_rule_runs"
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(
                fields=["rule", "finished_at"], name="label_rule_runs_rule_idx"
            )
        ]

    def __str__(self):
        kind = "dry run" if self.dry_run else "run"
        return f"{self.rule} {kind} {self.pk}"

    @property
    def duration(self):
        if self.started_at and self.finished_at:
            return self.finished_at - self.started_at
        return None


class RuleMatch(models.Model):
    """A transaction a rule matched at its latest run: the basis of its figures.

    Rows are replaced at every run (dry runs too: measuring writes no label),
    and dropped when the rule's conditions change. Hard-deleting the
    transaction removes them in the schema.
    """

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="matches")
    txn = models.ForeignKey(
        Transaction,
        on_delete=models.DO_NOTHING,
        db_column="txn_id",
        related_name="rule_matches",
    )

    class Meta:
        db_table = "label_rule_matches"
        constraints = [
            models.UniqueConstraint(
                fields=["rule", "txn"], name="label_rule_matches_uniq"
            )
        ]

    def __str__(self):
        return f"rule {self.rule_id} matched {self.txn_id}"
