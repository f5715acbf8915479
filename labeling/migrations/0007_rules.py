"""Labeling rules, their runs and their matches.

``transaction_labels.rule_id`` stays a plain column, like the history's: a
label outlives the rule that wrote it. The schema's delete and rename
actions come in ``0009_rule_cascades``, once the foreign keys made here
exist.
"""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0006_label_history_actor_index"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Rule",
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
                ("name", models.CharField(max_length=100, unique=True)),
                (
                    "field",
                    models.CharField(
                        choices=[
                            ("description", "description"),
                            ("merchant", "merchant"),
                        ],
                        default="description",
                        max_length=16,
                    ),
                ),
                (
                    "operator",
                    models.CharField(
                        choices=[
                            ("contains", "contains"),
                            ("starts_with", "starts with"),
                            ("equals", "is"),
                            ("regex", "matches the regular expression"),
                        ],
                        default="contains",
                        max_length=16,
                    ),
                ),
                (
                    "pattern",
                    models.CharField(
                        blank=True,
                        help_text="Text to look for, any case. Regular expressions are Python re syntax; nested quantifiers such as (a+)+ are refused.",
                        max_length=500,
                    ),
                ),
                (
                    "amount_min",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        help_text="Smallest absolute amount.",
                        max_digits=12,
                        null=True,
                    ),
                ),
                (
                    "amount_max",
                    models.DecimalField(
                        blank=True,
                        decimal_places=2,
                        help_text="Largest absolute amount.",
                        max_digits=12,
                        null=True,
                    ),
                ),
                (
                    "sign",
                    models.CharField(
                        choices=[
                            ("any", "in or out"),
                            ("out", "money out"),
                            ("in", "money in"),
                        ],
                        default="any",
                        max_length=3,
                    ),
                ),
                (
                    "account",
                    models.CharField(
                        blank=True,
                        help_text="Only this account (any case).",
                        max_length=64,
                    ),
                ),
                (
                    "day_from",
                    models.PositiveSmallIntegerField(
                        blank=True, help_text="First day of the month, 1-31.", null=True
                    ),
                ),
                (
                    "day_to",
                    models.PositiveSmallIntegerField(
                        blank=True,
                        help_text="Last day of the month; below the first day, the window wraps around the month end.",
                        null=True,
                    ),
                ),
                (
                    "priority",
                    models.IntegerField(
                        default=100,
                        help_text="Among matching rules, the highest priority wins.",
                    ),
                ),
                ("enabled", models.BooleanField(default=True)),
                (
                    "may_override_import",
                    models.BooleanField(
                        default=False,
                        help_text="Replace import labels too (human labels are never replaced).",
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("updated_at", models.DateTimeField(auto_now=True)),
                (
                    "conditions_changed_at",
                    models.DateTimeField(
                        auto_now_add=True,
                        help_text="When the conditions last changed; the rule's figures are measured from its first run after that.",
                    ),
                ),
                (
                    "category",
                    models.ForeignKey(
                        db_column="category",
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="rules",
                        to="labeling.category",
                        to_field="name",
                    ),
                ),
                (
                    "created_by",
                    models.ForeignKey(
                        blank=True,
                        editable=False,
                        null=True,
                        on_delete=django.db.models.deletion.SET_NULL,
                        related_name="+",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "db_table": "label_rules",
                "ordering": ["-priority", "name"],
                "permissions": [("apply_rule", "Can dry-run and apply rules")],
            },
        ),
        migrations.CreateModel(
            name="RuleMatch",
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
                    "rule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="matches",
                        to="labeling.rule",
                    ),
                ),
                (
                    "txn",
                    models.ForeignKey(
                        db_column="txn_id",
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="rule_matches",
                        to="labeling.transaction",
                    ),
                ),
            ],
            options={
                "db_table": "label_rule_matches",
            },
        ),
        migrations.CreateModel(
            name="RuleRun",
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
                ("dry_run", models.BooleanField(default=False)),
                (
                    "trigger",
                    models.CharField(
                        choices=[
                            ("user", "a user"),
                            ("import", "new transactions"),
                            ("command", "the command line"),
                        ],
                        max_length=8,
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
                        max_length=9,
                    ),
                ),
                ("created_at", models.DateTimeField(auto_now_add=True)),
                ("started_at", models.DateTimeField(blank=True, null=True)),
                ("finished_at", models.DateTimeField(blank=True, null=True)),
                (
                    "examined",
                    models.IntegerField(
                        default=0, help_text="Live transactions the run looked at."
                    ),
                ),
                (
                    "matched",
                    models.IntegerField(
                        default=0, help_text="Transactions it matched."
                    ),
                ),
                (
                    "labeled",
                    models.IntegerField(
                        default=0,
                        help_text="Labels written (or, in a dry run, that would be).",
                    ),
                ),
                (
                    "unchanged",
                    models.IntegerField(
                        default=0,
                        help_text="Matches that already carried this rule's label.",
                    ),
                ),
                (
                    "skipped_higher_source",
                    models.IntegerField(
                        default=0,
                        help_text="Matches kept because a human labeled them.",
                    ),
                ),
                (
                    "skipped_import",
                    models.IntegerField(
                        default=0,
                        help_text="Matches kept because they have an import label and the rule may not replace those.",
                    ),
                ),
                (
                    "conflicts",
                    models.IntegerField(
                        default=0,
                        help_text="Matches that another enabled rule would give a different category; the highest priority wins.",
                    ),
                ),
                (
                    "overruled",
                    models.IntegerField(
                        default=0,
                        help_text="Conflicts this rule lost to a higher priority.",
                    ),
                ),
                (
                    "sample",
                    models.JSONField(
                        blank=True,
                        default=list,
                        help_text="Some of the changes: txn, description, current label and source, new label.",
                    ),
                ),
                ("error", models.TextField(blank=True)),
                (
                    "rule",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="runs",
                        to="labeling.rule",
                    ),
                ),
                (
                    "triggered_by",
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
                "db_table": "label_rule_runs",
                "ordering": ["-created_at", "-id"],
            },
        ),
        migrations.AddConstraint(
            model_name="rule",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("day_from__isnull", True), ("day_to__isnull", True)),
                    models.Q(("day_from__range", (1, 31)), ("day_to__range", (1, 31))),
                    _connector="OR",
                ),
                name="label_rules_day_window_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="rulematch",
            constraint=models.UniqueConstraint(
                fields=("rule", "txn"), name="label_rule_matches_uniq"
            ),
        ),
        migrations.AddIndex(
            model_name="rulerun",
            index=models.Index(
                fields=["rule", "finished_at"], name="label_rule_runs_rule_idx"
            ),
        ),
    ]
