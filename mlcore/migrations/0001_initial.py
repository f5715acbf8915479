import django.contrib.postgres.fields
import django.db.models.deletion
import django.db.models.functions.datetime
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("labeling", "0003_default_categories"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="FeatureVector",
            fields=[
                (
                    "txn",
                    models.OneToOneField(
                        db_column="txn_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        primary_key=True,
                        related_name="features",
                        serialize=False,
                        to="labeling.transaction",
                    ),
                ),
                (
                    "account",
                    models.CharField(
                        help_text="The transaction's account; history is per account.",
                        max_length=64,
                    ),
                ),
                (
                    "ts_month",
                    models.DateField(help_text="First day of the posting month."),
                ),
                ("merchant", models.CharField(blank=True, max_length=128)),
                (
                    "tokens",
                    django.contrib.postgres.fields.ArrayField(
                        base_field=models.TextField(), default=list, size=None
                    ),
                ),
                ("amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("abs_amount", models.DecimalField(decimal_places=2, max_digits=12)),
                ("log_amount", models.FloatField()),
                ("is_credit", models.BooleanField()),
                ("is_round_amount", models.BooleanField()),
                ("dow", models.SmallIntegerField(help_text="Day of week, Monday = 0.")),
                ("is_weekend", models.BooleanField()),
                ("day_of_month", models.SmallIntegerField()),
                ("month", models.SmallIntegerField()),
                ("is_subscription", models.BooleanField()),
                ("days_since_prev_merchant", models.IntegerField(null=True)),
                ("merchant_prior_count", models.IntegerField()),
                (
                    "amount_deviation",
                    models.FloatField(
                        help_text="Deviation from the merchant's earlier amounts, in robust units.",
                        null=True,
                    ),
                ),
                ("feature_version", models.IntegerField()),
                (
                    "computed_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now()
                    ),
                ),
            ],
            options={
                "db_table": "ml_features",
                "indexes": [
                    models.Index(fields=["ts_month"], name="ml_features_ts_month_idx"),
                    models.Index(
                        fields=["account", "merchant"],
                        name="ml_features_acct_merchant_idx",
                    ),
                ],
            },
        ),
        migrations.CreateModel(
            name="Job",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "kind",
                    models.CharField(
                        choices=[
                            ("generate_data", "Generate demo data"),
                            ("feature_build", "Feature build"),
                            ("dbt_run", "dbt run"),
                            ("training", "Training"),
                        ],
                        max_length=32,
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("progress_done", models.BigIntegerField(default=0)),
                ("progress_total", models.BigIntegerField(blank=True, null=True)),
                ("params", models.JSONField(blank=True, default=dict)),
                ("result", models.JSONField(blank=True, default=dict)),
                ("log_tail", models.TextField(blank=True, default="")),
                ("error", models.TextField(blank=True, default="")),
                (
                    "celery_task_id",
                    models.CharField(blank=True, default="", max_length=64),
                ),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        editable=False,
                    ),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "jobs",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.CreateModel(
            name="TrainingRun",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True,
                        primary_key=True,
                        serialize=False,
                        verbose_name="ID",
                    ),
                ),
                (
                    "status",
                    models.CharField(
                        choices=[
                            ("queued", "Queued"),
                            ("running", "Running"),
                            ("succeeded", "Succeeded"),
                            ("failed", "Failed"),
                        ],
                        default="queued",
                        max_length=16,
                    ),
                ),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                ("duration_seconds", models.FloatField(blank=True, null=True)),
                ("params", models.JSONField(blank=True, default=dict)),
                ("train_start", models.DateField(blank=True, null=True)),
                ("train_end", models.DateField(blank=True, null=True)),
                ("validation_start", models.DateField(blank=True, null=True)),
                ("validation_end", models.DateField(blank=True, null=True)),
                (
                    "label_counts",
                    models.JSONField(
                        blank=True, default=dict, help_text="Training labels by source."
                    ),
                ),
                ("row_counts", models.JSONField(blank=True, default=dict)),
                ("metrics", models.JSONField(blank=True, default=dict)),
                (
                    "code_version",
                    models.CharField(blank=True, default="", max_length=64),
                ),
                (
                    "artifact_path",
                    models.CharField(blank=True, default="", max_length=512),
                ),
                (
                    "artifact_sha256",
                    models.CharField(blank=True, default="", max_length=64),
                ),
                ("error", models.TextField(blank=True, default="")),
                (
                    "created_at",
                    models.DateTimeField(
                        db_default=django.db.models.functions.datetime.Now(),
                        editable=False,
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "job",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to="mlcore.job",
                    ),
                ),
            ],
            options={
                "db_table": "ml_training_runs",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddIndex(
            model_name="job",
            index=models.Index(fields=["kind", "status"], name="jobs_kind_status_idx"),
        ),
    ]
