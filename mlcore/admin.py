"""Read-only admin for features, jobs and training runs."""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html

from mlcore import tasks
from mlcore.jobs import JobConflict
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
        "duration",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    list_filter = ["kind", "status"]
    list_select_related = ["created_by"]
    readonly_fields = [
        "kind",
        "status",
        "progress",
        "duration",
        "params",
        "result",
        "log",
        "error",
        "celery_task_id",
        "created_by",
        "created_at",
        "started_at",
        "finished_at",
    ]
    exclude = ["log_tail", "progress_done", "progress_total"]
    change_list_template = "admin/mlcore/job/change_list.html"
    change_form_template = "admin/mlcore/job/change_form.html"

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path("start/<str:kind>/", view(self.start_view), name="mlcore_job_start"),
            path("progress/", view(self.progress_view), name="mlcore_job_progress"),
            *super().get_urls(),
        ]

    def progress_view(self, request):
        """Status and progress of the jobs in ``?ids=1,2``, for live updates."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        try:
            ids = [int(i) for i in request.GET.get("ids", "").split(",") if i]
        except ValueError:
            return JsonResponse({"error": "ids must be job numbers"}, status=400)
        jobs = Job.objects.filter(pk__in=ids[:MAX_POLLED_JOBS])
        return JsonResponse(
            {
                str(job.pk): {
                    "status": job.status,
                    "progress": str(self.progress(job)),
                    "duration": self.duration(job),
                    "log_tail": job.log_tail,
                    "error": job.error,
                }
                for job in jobs
            }
        )

    def changelist_view(self, request, extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "startable": [
                (kind, label)
                for kind, (label, permission, _) in JOB_STARTERS.items()
                if request.user.has_perm(permission)
            ],
        }
        return super().changelist_view(request, extra_context)

    def start_view(self, request, kind):
        """Queue a job from the admin; the worker picks it up after commit."""
        if request.method != "POST" or kind not in JOB_STARTERS:
            raise Http404("No such job to start.")
        _, permission, start = JOB_STARTERS[kind]
        if not request.user.has_perm(permission):
            raise PermissionDenied

        try:
            job = start(user=request.user)
        except JobConflict as conflict:
            self.message_user(
                request,
                format_html(
                    'Not started: <a href="{}">{}</a> is still {}.',
                    _job_url(conflict.job),
                    conflict.job,
                    conflict.job.status,
                ),
                messages.WARNING,
            )
        else:
            self.message_user(
                request,
                format_html('Queued <a href="{}">{}</a>.', _job_url(job), job),
                messages.SUCCESS,
            )
        return redirect("admin:mlcore_job_changelist")

    @admin.display(description="progress")
    def progress(self, obj):
        percent = obj.progress_percent
        if percent is None:
            text = format_html("{}", f"{obj.progress_done:,}")
        else:
            text = format_html(
                '<progress value="{}" max="100"></progress> {} / {} ({}%)',
                f"{percent:.0f}",
                f"{obj.progress_done:,}",
                f"{obj.progress_total:,}",
                f"{percent:.0f}",
            )
        # The span lets job_progress.js update the cell while the job runs.
        return format_html(
            '<span class="job-progress" data-job-id="{}" data-status="{}">{}</span>',
            obj.pk,
            obj.status,
            text,
        )

    @admin.display(description="duration")
    def duration(self, obj):
        if obj.started_at is None:
            return "—"
        end = obj.finished_at or timezone.now()
        return f"{(end - obj.started_at).total_seconds():.1f}s"

    @admin.display(description="log")
    def log(self, obj):
        return format_html("<pre>{}</pre>", obj.log_tail) if obj.log_tail else "—"


# A page polls at most this many jobs at once (the changelist shows 100).
MAX_POLLED_JOBS = 100


def _job_url(job):
    return reverse("admin:mlcore_job_change", args=[job.pk])


# Jobs people may start from the admin: label, permission, starter.
JOB_STARTERS = {
    Job.Kind.FEATURE_BUILD: (
        "Build features",
        "mlcore.run_feature_build",
        tasks.start_feature_build,
    ),
    Job.Kind.DBT_RUN: ("Run dbt", "mlcore.run_dbt", tasks.start_dbt_run),
}


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
