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
