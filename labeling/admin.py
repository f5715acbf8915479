"""Admin for transactions, categories, labels, label history and rules."""

from datetime import datetime, timedelta

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.paginator import Paginator
from django.db.models import Max, Min, OuterRef, Subquery
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join

from labeling import labels, rule_runs
from labeling.import_views import TransactionImportExport
from labeling.labels import bulk_set_labels
from labeling.models import (
    Category,
    LabelHistory,
    LabelSource,
    Rule,
    RuleRun,
    Transaction,
    TransactionLabel,
)
from labeling.tasks import start_rule_runs
from mlcore import serving
from mlcore.models import FeatureVector, Suggestion
from mlcore.tasks import start_selected_feature_build


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    list_display = ["name", "parent", "is_active"]
    list_filter = ["is_active", ("parent", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name"]


class LabelStatusFilter(admin.SimpleListFilter):
    title = "label status"
    parameter_name = "labeled"

    def lookups(self, request, model_admin):
        return [("yes", "Labeled"), ("no", "Unlabeled")]

    def queryset(self, request, queryset):
        if self.value() == "yes":
            return queryset.filter(label__isnull=False)
        if self.value() == "no":
            return queryset.filter(label__isnull=True)
        return queryset


class CategoryFilter(admin.SimpleListFilter):
    """Filter by label; the choices are the vocabulary, not a scan of labels."""

    title = "category"
    parameter_name = "category"

    def lookups(self, request, model_admin):
        names = Category.objects.filter(is_active=True).values_list("name", flat=True)
        return [(name, name) for name in names]

    def queryset(self, request, queryset):
        if self.value():
            return queryset.filter(label__label=self.value())
        return queryset


class MonthFilter(admin.SimpleListFilter):
    """Filter by posting month, newest first, from the indexed date range."""

    title = "month"
    parameter_name = "month"

    def lookups(self, request, model_admin):
        bounds = Transaction.objects.aggregate(
            first=Min("posted_on"), last=Max("posted_on")
        )
        if bounds["first"] is None:
            return []
        months = []
        month = bounds["last"].replace(day=1)
        while month >= bounds["first"].replace(day=1):
            months.append((month.strftime("%Y-%m"), month.strftime("%B %Y")))
            month = (month - timedelta(days=1)).replace(day=1)
        return months

    def queryset(self, request, queryset):
        if not self.value():
            return queryset
        try:
            start = datetime.strptime(self.value(), "%Y-%m").date()
        except ValueError:
            return queryset.none()
        end = (start + timedelta(days=32)).replace(day=1)
        return queryset.filter(posted_on__gte=start, posted_on__lt=end)


class ConfidenceFilter(admin.SimpleListFilter):
    """Filter by the confidence of the latest stored suggestion."""

    title = "suggestion confidence"
    parameter_name = "confidence"

    def lookups(self, request, model_admin):
        return [
            ("high", "≥ 95%"),
            ("medium", "80% to 95%"),
            ("low", "< 80%"),
            ("none", "No suggestion"),
        ]

    def queryset(self, request, queryset):
        # ``suggested_confidence`` is annotated by TransactionAdmin.get_queryset.
        if self.value() == "high":
            return queryset.filter(suggested_confidence__gte=0.95)
        if self.value() == "medium":
            return queryset.filter(
                suggested_confidence__gte=0.80, suggested_confidence__lt=0.95
            )
        if self.value() == "low":
            return queryset.filter(suggested_confidence__lt=0.80)
        if self.value() == "none":
            return queryset.filter(suggested_confidence__isnull=True)
        return queryset


class CappedCountPaginator(Paginator):
    """Count at most ``COUNT_CAP`` rows: exact counts of a million rows on
    every page cost more than the page itself, and nobody pages that far."""

    @cached_property
    def count(self):
        return self.object_list[:COUNT_CAP].count()


class CategoryChoiceForm(forms.Form):
    category = forms.ModelChoiceField(
        queryset=Category.objects.filter(is_active=True),
        to_field_name="name",
        help_text="Written as a human label; the label history keeps what it replaces.",
    )


@admin.register(Transaction)
class TransactionAdmin(admin.ModelAdmin):
    list_display = [
        "posted_on",
        "description",
        "merchant",
        "signed_amount",
        "account",
        "label_badge",
        "suggestion",
    ]
    list_filter = [
        LabelStatusFilter,
        "label__source",
        CategoryFilter,
        MonthFilter,
        "features__is_subscription",
        "account",
        ConfidenceFilter,
    ]
    search_fields = ["description", "features__merchant"]
    list_select_related = ["label", "features"]
    list_per_page = 50
    paginator = CappedCountPaginator
    # Facet counts run one count per filter choice over the whole table.
    show_facets = admin.ShowFacets.NEVER
    actions = [
        "set_category",
        "clear_label",
        "accept_suggestion",
        "suggest_categories",
        "build_features",
    ]
    readonly_fields = [
        "created_at",
        "updated_at",
        "deleted_at",
        "current_label",
        "feature_table",
        "label_history",
        "same_merchant",
    ]
    fieldsets = [
        (
            None,
            {"fields": ["account", "external_id", "posted_on", "description"]},
        ),
        (None, {"fields": ["amount", "currency"]}),
        ("Label", {"fields": ["current_label", "label_history"]}),
        ("Features", {"fields": ["feature_table"]}),
        ("Same merchant", {"fields": ["same_merchant"]}),
        (None, {"fields": ["created_at", "updated_at", "deleted_at"]}),
    ]
    # Counting a million rows on every page costs more than the page itself.
    show_full_result_count = False
    # Adds the Import and Export CSV buttons (labeling/import_views.py).
    change_list_template = "admin/labeling/transaction/change_list.html"

    def get_urls(self):
        return TransactionImportExport(self).urls() + super().get_urls()

    def get_queryset(self, request):
        # The latest suggestion of each row, by the (txn_id, id) index: two
        # lookups per shown row rather than a query per row.
        latest = Suggestion.objects.filter(txn=OuterRef("pk")).order_by("-id")
        return (
            super()
            .get_queryset(request)
            .annotate(
                suggested_label=Subquery(latest.values("label")[:1]),
                suggested_confidence=Subquery(latest.values("confidence")[:1]),
            )
        )

    def has_delete_permission(self, request, obj=None):
        # Transactions are soft-deleted by the import and API; a hard delete
        # from a changelist would also drop their labels and features.
        return request.user.is_superuser

    @admin.display(description="merchant", ordering="features__merchant")
    def merchant(self, obj):
        features = getattr(obj, "features", None)
        return features.merchant if features else "—"

    @admin.display(description="amount", ordering="amount")
    def signed_amount(self, obj):
        css = "amount-in" if obj.amount > 0 else "amount-out"
        color = "#1a7f37" if obj.amount > 0 else "#b42318"
        return format_html(
            '<span class="{}" style="color:{};font-variant-numeric:tabular-nums">'
            "{}</span>",
            css,
            color,
            f"{obj.amount:+,.2f}",
        )

    @admin.display(description="label", ordering="label__label")
    def label_badge(self, obj):
        label = getattr(obj, "label", None)
        if label is None:
            return "—"
        return format_html(
            '{} <span class="label-source label-source-{}" style="{}">{}</span>',
            label.label_id,
            label.source,
            _BADGE_STYLE[label.source],
            label.source,
        )

    @admin.display(description="suggestion", ordering="suggested_confidence")
    def suggestion(self, obj):
        label = getattr(obj, "suggested_label", None)
        if label is None:
            return "—"
        return f"{label} {obj.suggested_confidence:.0%}"

    @admin.display(description="label")
    def current_label(self, obj):
        label = TransactionLabel.objects.filter(txn=obj).select_related("labeled_by")
        label = label.first()
        if label is None:
            return "Unlabeled"
        who = label.labeled_by or (f"rule {label.rule_id}" if label.rule_id else "")
        return format_html(
            "{} ({}) {} — {}", label.label_id, label.source, who, label.updated_at
        )

    @admin.display(description="features")
    def feature_table(self, obj):
        features = FeatureVector.objects.filter(txn=obj).values().first()
        if features is None:
            return "Not built yet."
        rows = format_html_join(
            "", "<tr><th>{}</th><td>{}</td></tr>", sorted(features.items())
        )
        return format_html("<table>{}</table>", rows)

    @admin.display(description="history")
    def label_history(self, obj):
        entries = LabelHistory.objects.filter(txn_id=obj.pk).select_related("actor")
        rows = format_html_join(
            "",
            "<tr><td>{}</td><td>{}</td><td>{} ({}) → {} ({})</td><td>{}</td></tr>",
            (
                (
                    entry.changed_at,
                    entry.operation,
                    entry.old_label or "—",
                    entry.old_source or "—",
                    entry.new_label or "—",
                    entry.new_source or "—",
                    entry.actor or (f"rule {entry.rule_id}" if entry.rule_id else ""),
                )
                for entry in entries[:HISTORY_ROWS]
            ),
        )
        return format_html("<table>{}</table>", rows) if rows else "No changes."

    @admin.display(description="other transactions of this merchant")
    def same_merchant(self, obj):
        features = FeatureVector.objects.filter(txn=obj).first()
        if features is None:
            return "—"
        others = (
            Transaction.objects.filter(
                features__account=features.account,
                features__merchant=features.merchant,
            )
            .exclude(pk=obj.pk)
            .select_related("label")
            .order_by("-posted_on", "-id")[:SAME_MERCHANT_ROWS]
        )
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
            (
                (
                    reverse("admin:labeling_transaction_change", args=[other.pk]),
                    other.posted_on,
                    other.description,
                    other.amount,
                    self.label_badge(other),
                )
                for other in others
            ),
        )
        return format_html("<table>{}</table>", rows) if rows else "None."

    @admin.action(description="Set category…", permissions=["label"])
    def set_category(self, request, queryset):
        if "apply" in request.POST:
            form = CategoryChoiceForm(request.POST)
            if form.is_valid():
                category = form.cleaned_data["category"].name
                ids = list(queryset.values_list("pk", flat=True))
                unchanged = TransactionLabel.objects.filter(
                    txn_id__in=ids, label=category, source=LabelSource.HUMAN
                ).count()
                result = bulk_set_labels(
                    dict.fromkeys(ids, category), LabelSource.HUMAN, actor=request.user
                )
                self.message_user(
                    request,
                    f"Set {category} on {result.written - unchanged} transactions; "
                    f"{unchanged} already had it"
                    + (
                        f"; {result.skipped} kept a label that outranks it."
                        if result.skipped
                        else "."
                    ),
                    messages.SUCCESS,
                )
                return None
        else:
            form = CategoryChoiceForm()
        context = {
            **self.admin_site.each_context(request),
            "title": "Set category",
            "opts": self.model._meta,
            "form": form,
            "queryset": queryset,
            "count": queryset.count(),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(
            request, "admin/labeling/transaction/set_category.html", context
        )

    @admin.action(description="Clear label", permissions=["label"])
    def clear_label(self, request, queryset):
        cleared = sum(
            labels.clear_label(pk, actor=request.user)
            for pk in queryset.values_list("pk", flat=True)
        )
        self.message_user(
            request,
            f"Cleared {cleared} labels; the history keeps them.",
            messages.SUCCESS,
        )

    @admin.action(description="Accept suggestion", permissions=["label"])
    def accept_suggestion(self, request, queryset):
        """Label each selected transaction with its latest suggestion (human)."""
        ids = list(queryset.values_list("pk", flat=True))
        latest = dict(
            Suggestion.objects.filter(txn_id__in=ids)
            .order_by("txn_id", "-id")
            .distinct("txn_id")
            .values_list("txn_id", "label")
        )
        active = set(
            Category.objects.filter(
                name__in=set(latest.values()), is_active=True
            ).values_list("name", flat=True)
        )
        chosen = {txn_id: c for txn_id, c in latest.items() if c in active}

        # The database records each suggestion's outcome as the labels land.
        written = 0
        if chosen:
            written = bulk_set_labels(
                chosen, LabelSource.HUMAN, actor=request.user
            ).written
        notes = []
        if len(ids) > len(latest):
            notes.append(f"{len(ids) - len(latest)} had no suggestion")
        if len(latest) > len(chosen):
            notes.append(f"{len(latest) - len(chosen)} suggested a retired category")
        self.message_user(
            request,
            f"Accepted the suggestion for {written} transactions"
            + (f"; {', '.join(notes)}." if notes else "."),
            messages.SUCCESS if written else messages.WARNING,
        )

    @admin.action(description="Suggest categories", permissions=["label"])
    def suggest_categories(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True)[: MAX_SUGGEST + 1])
        if len(ids) > MAX_SUGGEST:
            self.message_user(
                request,
                f"Select at most {MAX_SUGGEST:,} transactions to suggest for.",
                messages.ERROR,
            )
            return
        try:
            answers = serving.suggest_transactions(ids)
        except serving.NoModel as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return
        self.message_user(
            request,
            f"Suggested categories for {len(answers)} transactions.",
            messages.SUCCESS,
        )

    @admin.action(description="Build features for selected", permissions=["build"])
    def build_features(self, request, queryset):
        ids = list(queryset.values_list("pk", flat=True))
        job = start_selected_feature_build(ids, user=request.user)
        self.message_user(
            request,
            format_html(
                'Queued <a href="{}">{}</a> for {} transactions.',
                reverse("admin:mlcore_job_change", args=[job.pk]),
                job,
                len(ids),
            ),
        )

    def has_label_permission(self, request):
        return request.user.has_perm("labeling.change_transactionlabel")

    def has_build_permission(self, request):
        return request.user.has_perm("mlcore.run_feature_build")


# Colours of the label source badges in the changelist.
_BADGE_STYLE = {
    "human": "background:#1a7f37;color:#fff;padding:0 4px;border-radius:3px",
    "rule": "background:#9a6700;color:#fff;padding:0 4px;border-radius:3px",
    "import": "background:#57606a;color:#fff;padding:0 4px;border-radius:3px",
}

# Rows the changelist counts at most (it then shows that many pages).
COUNT_CAP = 10_000

# Transactions "Suggest categories" takes at once, like the API.
MAX_SUGGEST = 1_000

# Rows shown on a transaction's change page.
HISTORY_ROWS = 50
SAME_MERCHANT_ROWS = 20


@admin.register(LabelHistory)
class LabelHistoryAdmin(admin.ModelAdmin):
    list_display = [
        "changed_at",
        "txn_id",
        "operation",
        "old_label",
        "new_label",
        "old_source",
        "new_source",
        "actor",
        "rule_id",
    ]
    list_filter = ["operation", "new_source"]
    search_fields = ["=txn_id"]
    list_select_related = ["actor"]
    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


# -- Rules -------------------------------------------------------------------


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
    """Rules with their figures; dry-run and apply them from the list."""

    list_display = [
        "name",
        "conditions",
        "category",
        "priority",
        "enabled",
        "may_override_import",
        "coverage_column",
        "precision_column",
        "checked_column",
        "last_run_column",
    ]
    list_filter = ["enabled", "may_override_import", "field", "operator"]
    search_fields = ["name", "pattern"]
    list_select_related = ["category"]
    actions = ["dry_run_then_apply"]
    readonly_fields = [
        "created_by",
        "created_at",
        "updated_at",
        "conditions_changed_at",
        "figures",
        "recent_runs",
    ]
    fieldsets = [
        (None, {"fields": ["name", "category", "priority", "enabled"]}),
        (
            "Conditions",
            {
                "fields": [
                    ("field", "operator", "pattern"),
                    ("sign", "amount_min", "amount_max"),
                    "account",
                    ("day_from", "day_to"),
                ]
            },
        ),
        ("Precedence", {"fields": ["may_override_import"]}),
        ("Figures", {"fields": ["figures", "recent_runs"]}),
        (
            None,
            {
                "fields": [
                    "created_by",
                    "created_at",
                    "updated_at",
                    "conditions_changed_at",
                ]
            },
        ),
    ]

    def get_queryset(self, request):
        return rule_runs.with_figures(super().get_queryset(request))

    def save_model(self, request, obj, form, change):
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)

    def has_delete_permission(self, request, obj=None):
        # Disabling keeps a rule's runs and label ids meaningful.
        return request.user.is_superuser

    def has_apply_permission(self, request):
        return request.user.has_perm("labeling.apply_rule")

    @admin.display(description="conditions")
    def conditions(self, obj):
        return obj.describe()

    @admin.display(description="coverage", ordering="coverage")
    def coverage_column(self, obj):
        return f"{obj.coverage:,}" if rule_runs.measured(obj) else "—"

    @admin.display(description="precision", ordering="agreed")
    def precision_column(self, obj):
        value = rule_runs.precision(obj)
        if not rule_runs.measured(obj) or value is None:
            return "—"
        if rule_runs.below_floor(obj):
            return format_html(
                '<span class="rule-below-floor" style="color:#b42318;'
                'font-weight:bold" title="below the floor of {}">{} ⚠</span>',
                f"{rule_runs.precision_floor():.0%}",
                f"{value:.1%}",
            )
        return f"{value:.1%}"

    @admin.display(description="human-labeled", ordering="checked")
    def checked_column(self, obj):
        return f"{obj.checked:,}" if rule_runs.measured(obj) else "—"

    @admin.display(description="last run", ordering="last_run_at")
    def last_run_column(self, obj):
        return obj.last_run_at or "never"

    @admin.display(description="figures")
    def figures(self, obj):
        if obj.pk is None:
            return "Measured by its first run (a dry run will do)."
        rule = rule_runs.with_figures(Rule.objects.filter(pk=obj.pk)).get()
        if not rule_runs.measured(rule):
            return "Not measured since its conditions changed; dry-run it."
        value = rule_runs.precision(rule)
        return format_html(
            "Matches {} live transactions; {} of them have a human label, "
            "which agrees on {} ({}). Floor: {}.",
            f"{rule.coverage:,}",
            f"{rule.checked:,}",
            f"{rule.agreed:,}",
            "no precision yet" if value is None else f"{value:.1%}",
            f"{rule_runs.precision_floor():.0%}",
        )

    @admin.display(description="recent runs")
    def recent_runs(self, obj):
        if obj.pk is None:
            return "—"
        runs = obj.runs.select_related("triggered_by")[:RECENT_RUNS]
        rows = format_html_join(
            "",
            '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td>'
            "<td>{}</td><td>{}</td></tr>",
            (
                (
                    reverse("admin:labeling_rulerun_change", args=[run.pk]),
                    run.created_at,
                    "dry run" if run.dry_run else "run",
                    run.status,
                    run.matched,
                    run.labeled,
                    run.skipped_higher_source,
                )
                for run in runs
            ),
        )
        if not rows:
            return "Never run."
        return format_html(
            "<table><tr><th>run</th><th>kind</th><th>status</th><th>matched</th>"
            "<th>labeled</th><th>kept human</th></tr>{}</table>",
            rows,
        )

    @admin.action(description="Dry-run, then apply…", permissions=["apply"])
    def dry_run_then_apply(self, request, queryset):
        rules = list(queryset.order_by("pk"))
        if "apply" in request.POST:
            try:
                runs = start_rule_runs(rules, user=request.user)
            except rule_runs.RuleRunError as exc:
                self.message_user(request, str(exc), messages.ERROR)
                return None
            self.message_user(
                request,
                format_html(
                    'Queued {} rule run{}; see <a href="{}">rule runs</a>.',
                    len(runs),
                    "s" if len(runs) != 1 else "",
                    reverse("admin:labeling_rulerun_changelist"),
                ),
                messages.SUCCESS,
            )
            return None

        runs = rule_runs.run_now(
            rules, trigger=RuleRun.Trigger.USER, user=request.user, dry_run=True
        )
        context = {
            **self.admin_site.each_context(request),
            "title": "Dry run",
            "opts": self.model._meta,
            "runs": runs,
            "rules": rules,
            "can_apply": all(rule.enabled for rule in rules),
            "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/labeling/rule/dry_run.html", context)


# Runs listed on a rule's page.
RECENT_RUNS = 10


@admin.register(RuleRun)
class RuleRunAdmin(admin.ModelAdmin):
    """The log of rule runs; written by the runs only."""

    list_display = [
        "created_at",
        "rule",
        "dry_run",
        "trigger",
        "triggered_by",
        "status",
        "matched",
        "labeled",
        "unchanged",
        "skipped_higher_source",
        "skipped_import",
        "conflicts",
        "duration",
    ]
    list_filter = ["status", "dry_run", "trigger", "rule"]
    list_select_related = ["rule", "triggered_by"]
    readonly_fields = ["sample_table"]
    exclude = ["sample"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description="sample of the changes")
    def sample_table(self, obj):
        return _sample_table(obj.sample)


def _sample_table(sample):
    rows = format_html_join(
        "",
        '<tr><td><a href="{}">{}</a></td><td>{}</td><td>{}</td><td>{}</td></tr>',
        (
            (
                reverse("admin:labeling_transaction_change", args=[change["txn"]]),
                change["txn"],
                change["description"],
                f"{change['label']} ({change['source']})"
                if change["label"]
                else "unlabeled",
                change["new_label"],
            )
            for change in sample
        ),
    )
    if not rows:
        return "No changes."
    return format_html(
        "<table><tr><th>transaction</th><th>description</th><th>now</th>"
        "<th>new</th></tr>{}</table>",
        rows,
    )
