"""Feature vectors, training runs and background jobs."""

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now

from labeling.models import Transaction


class FeatureVector(models.Model):
    """Point-in-time features of one transaction.

    Every value depends only on data dated at or before the transaction.
    Deleting the transaction deletes the row through ``ON DELETE CASCADE``.
    """

    txn = models.OneToOneField(
        Transaction,
        primary_key=True,
        on_delete=models.DO_NOTHING,
        db_column="txn_id",
        related_name="features",
    )
    account = models.CharField(
        max_length=64, help_text="The transaction's account; history is per account."
    )
    ts_month = models.DateField(help_text="First day of the posting month.")
    merchant = models.CharField(max_length=128, blank=True)
    tokens = ArrayField(models.TextField(), default=list)
    amount = models.DecimalField(max_digits=12, decimal_places=2)
    abs_amount = models.DecimalField(max_digits=12, decimal_places=2)
    log_amount = models.FloatField()
    is_credit = models.BooleanField()
    is_round_amount = models.BooleanField()
    dow = models.SmallIntegerField(help_text="Day of week, Monday = 0.")
    is_weekend = models.BooleanField()
    day_of_month = models.SmallIntegerField()
    month = models.SmallIntegerField()
    is_subscription = models.BooleanField()
    days_since_prev_merchant = models.IntegerField(null=True)
    merchant_prior_count = models.IntegerField()
    amount_deviation = models.FloatField(
        null=True,
        help_text="Deviation from the merchant's earlier amounts, in robust units.",
    )
    feature_version = models.IntegerField()
    computed_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_features"
        indexes = [
            models.Index(fields=["ts_month"], name="ml_features_ts_month_idx"),
            models.Index(
                fields=["account", "merchant"], name="ml_features_acct_merchant_idx"
            ),
            # Serving reads a merchant's most recent labeled transactions,
            # newest first: (ts_month, day_of_month, txn_id) is their order.
            models.Index(
                fields=["merchant", "ts_month", "day_of_month", "txn"],
                name="ml_features_merchant_idx",
            ),
        ]

    def __str__(self):
        return f"features of {self.txn_id}"


class JobStatus(models.TextChoices):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Job(models.Model):
    """A unit of background work whose progress the admin and API show."""

    class Kind(models.TextChoices):
        GENERATE_DATA = "generate_data", "Generate demo data"
        FEATURE_BUILD = "feature_build", "Feature build"
        DBT_RUN = "dbt_run", "dbt run"
        TRAINING = "training", "Training"

    kind = models.CharField(max_length=32, choices=Kind.choices)
    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    progress_done = models.BigIntegerField(default=0)
    progress_total = models.BigIntegerField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    log_tail = models.TextField(blank=True, default="")
    error = models.TextField(blank=True, default="")
    celery_task_id = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "jobs"
        ordering = ["-created_at", "-id"]
        permissions = [
            ("run_feature_build", "Can start feature builds"),
            ("run_dbt", "Can start dbt runs"),
            ("run_training", "Can start model training"),
        ]
        indexes = [
            models.Index(fields=["kind", "status"], name="jobs_kind_status_idx"),
        ]

    def __str__(self):
        return f"{self.get_kind_display()} #{self.pk} ({self.status})"

    @property
    def progress_percent(self):
        if not self.progress_total:
            return None
        return min(100.0, 100.0 * self.progress_done / self.progress_total)


class TrainingRun(models.Model):
    """Audit log of one training attempt, successful or not."""

    status = models.CharField(
        max_length=16, choices=JobStatus.choices, default=JobStatus.QUEUED
    )
    job = models.ForeignKey(
        Job, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    duration_seconds = models.FloatField(null=True, blank=True)
    params = models.JSONField(default=dict, blank=True)
    train_start = models.DateField(null=True, blank=True)
    train_end = models.DateField(null=True, blank=True)
    validation_start = models.DateField(null=True, blank=True)
    validation_end = models.DateField(null=True, blank=True)
    label_counts = models.JSONField(
        default=dict, blank=True, help_text="Training labels by source."
    )
    row_counts = models.JSONField(default=dict, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    code_version = models.CharField(max_length=64, blank=True, default="")
    artifact_path = models.CharField(max_length=512, blank=True, default="")
    artifact_sha256 = models.CharField(max_length=64, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "ml_training_runs"
        ordering = ["-created_at", "-id"]

    def __str__(self):
        return f"training run #{self.pk} ({self.status})"


class ModelVersion(models.Model):
    """A trained model stored as an artifact, servable by its version number.

    The version is the primary key: it only grows, and serving reports it
    with every suggestion.
    """

    training_run = models.OneToOneField(
        TrainingRun, on_delete=models.PROTECT, related_name="model_version"
    )
    artifact_path = models.CharField(
        max_length=512, help_text="Path of the joblib file, relative to storage."
    )
    artifact_sha256 = models.CharField(max_length=64)
    classes = models.JSONField(default=list, help_text="Categories it can suggest.")
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "ml_model_versions"
        ordering = ["-id"]
        permissions = [("promote_modelversion", "Can promote and roll back models")]

    def __str__(self):
        return f"model v{self.pk}"

    @property
    def metrics(self):
        return self.training_run.metrics


class Alias(models.TextChoices):
    CHAMPION = "champion"
    CHALLENGER = "challenger"


class ModelAlias(models.Model):
    """Which model version an alias points at now."""

    alias = models.CharField(max_length=16, choices=Alias.choices, primary_key=True)
    model_version = models.ForeignKey(
        ModelVersion, on_delete=models.PROTECT, related_name="aliases"
    )
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    updated_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_model_aliases"
        ordering = ["alias"]

    def __str__(self):
        return f"{self.alias} → v{self.model_version_id}"


class ModelAliasChange(models.Model):
    """Append-only log of every alias change: who moved what, and when."""

    class Action(models.TextChoices):
        PROMOTE = "promote"
        ROLLBACK = "rollback"
        REMOVE = "remove"

    alias = models.CharField(max_length=16, choices=Alias.choices)
    action = models.CharField(max_length=16, choices=Action.choices)
    previous_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
    )
    model_version = models.ForeignKey(
        ModelVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="The version the alias points at after the change; empty "
        "when the alias was removed.",
    )
    reason = models.CharField(max_length=255, blank=True, default="")
    changed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    changed_at = models.DateTimeField(db_default=Now())

    class Meta:
        db_table = "ml_model_alias_changes"
        ordering = ["-changed_at", "-id"]

    def __str__(self):
        return f"{self.action} {self.alias}"


class Suggestion(models.Model):
    """A category suggestion served for a transaction, and what became of it.

    ``outcome`` is filled in by the database when a person labels the
    transaction: ``accepted`` if they chose the suggested category,
    ``overridden`` otherwise (see the ``0004`` migration).
    """

    class Arm(models.TextChoices):
        CHAMPION = "champion"
        CHALLENGER = "challenger"

    class Outcome(models.TextChoices):
        ACCEPTED = "accepted"
        OVERRIDDEN = "overridden"

    # Both keys lead an index below; a single-column index of their own
    # would only slow down the writes of every suggestion.
    txn = models.ForeignKey(
        Transaction,
        on_delete=models.DO_NOTHING,
        db_column="txn_id",
        db_index=False,
        related_name="suggestions",
    )
    model_version = models.ForeignKey(
        ModelVersion,
        on_delete=models.PROTECT,
        db_index=False,
        related_name="suggestions",
    )
    arm = models.CharField(max_length=16, choices=Arm.choices)
    label = models.CharField(max_length=64, help_text="The top category.")
    confidence = models.FloatField(help_text="Probability of the top category.")
    top_k = models.JSONField(
        default=list, help_text='[{"category": ..., "probability": ...}, ...]'
    )
    outcome = models.CharField(
        max_length=16, choices=Outcome.choices, null=True, blank=True
    )
    outcome_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(db_default=Now(), editable=False)

    class Meta:
        db_table = "ml_suggestions"
        ordering = ["-id"]
        indexes = [
            models.Index(fields=["txn", "-id"], name="ml_suggestions_txn_idx"),
            models.Index(
                fields=["model_version", "arm"], name="ml_suggestions_version_idx"
            ),
        ]

    def __str__(self):
        return f"{self.label} ({self.confidence:.0%}) for {self.txn_id}"
