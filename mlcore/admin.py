"""Read-only admin for features, jobs and training runs."""

from django.contrib import admin

from mlcore.models import FeatureVector, Job, TrainingRun


class ReadOnlyAdmin(admin.ModelAdmin):
    """Rows written by pipelines: people look, they do not edit."""

    show_full_result_count = False

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(FeatureVector)
class FeatureVectorAdmin(ReadOnlyAdmin):
    list_display = [
        "txn_id",
        "ts_month",
        "merchant",
        "amount",
        "dow",
        "is_subscription",
        "feature_version",
    ]
    list_filter = ["is_subscription", "feature_version", "ts_month"]
    search_fields = ["merchant", "=txn__id"]


@admin.register(Job)
class JobAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "kind",
        "status",
        "progress",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]

    @admin.display(description="progress")
    def progress(self, obj):
        percent = obj.progress_percent
        if percent is None:
            return f"{obj.progress_done:,}"
        return f"{obj.progress_done:,} / {obj.progress_total:,} ({percent:.0f}%)"


@admin.register(TrainingRun)
class TrainingRunAdmin(ReadOnlyAdmin):
    list_display = [
        "id",
        "status",
        "created_at",
        "duration_seconds",
        "validation_start",
        "code_version",
        "created_by",
    ]
    list_filter = ["status"]
    list_select_related = ["created_by"]
