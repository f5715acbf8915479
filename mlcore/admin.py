"""Read-only admin for features, jobs, training runs, the model registry
and suggestions.

Nothing here edits rows directly: jobs start through ``mlcore.tasks`` and
alias changes go through ``mlcore.registry``, which logs who made them.
"""

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join

from mlcore import experiment, registry, tasks
from mlcore.jobs import JobConflict
from mlcore.models import (
    Alias,
    FeatureVector,
    Job,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Suggestion,
    TrainingRun,
)

PROMOTE_PERMISSION = "mlcore.promote_modelversion"


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
    Job.Kind.TRAINING: ("Train model", "mlcore.run_training", tasks.start_training),
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


# -- Model registry ----------------------------------------------------------


class RegistryAdmin(ReadOnlyAdmin):
    """Registry rows change only through ``mlcore.registry``, never by hand."""

    def has_delete_permission(self, request, obj=None):
        return False

    def confirm(self, request, title, question, button, obj=None):
        """The page that asks before an alias change, with a reason field."""
        context = {
            **self.admin_site.each_context(request),
            "title": title,
            "question": question,
            "button": button,
            "opts": self.model._meta,
            "object": obj,
        }
        return TemplateResponse(request, "admin/mlcore/registry_confirm.html", context)


def _reason(request):
    return request.POST.get("reason", "").strip()[:REASON_MAX_LENGTH]


REASON_MAX_LENGTH = ModelAliasChange._meta.get_field("reason").max_length


@admin.register(ModelVersion)
class ModelVersionAdmin(RegistryAdmin):
    list_display = [
        "__str__",
        "created_at",
        "aliases_held",
        "accuracy",
        "macro_f1",
        "calibration_error",
        "coverage_95",
        "training_run_link",
    ]
    list_select_related = ["training_run"]
    readonly_fields = [
        "training_run_link",
        "created_at",
        "aliases_held",
        "accuracy",
        "macro_f1",
        "calibration_error",
        "coverage_95",
        "threshold_table",
        "classes",
        "artifact_path",
        "artifact_sha256",
    ]
    fields = readonly_fields
    change_form_template = "admin/mlcore/modelversion/change_form.html"

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("aliases")

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<int:pk>/promote/<str:alias>/",
                view(self.promote_view),
                name="mlcore_modelversion_promote",
            ),
            *super().get_urls(),
        ]

    def change_view(self, request, object_id, form_url="", extra_context=None):
        extra_context = {
            **(extra_context or {}),
            "can_promote": request.user.has_perm(PROMOTE_PERMISSION),
        }
        return super().change_view(request, object_id, form_url, extra_context)

    def promote_view(self, request, pk, alias):
        """Point ``alias`` at the version, after a confirmation page."""
        if not request.user.has_perm(PROMOTE_PERMISSION):
            raise PermissionDenied
        if alias not in Alias.values:
            raise Http404("No such alias.")
        version = get_object_or_404(ModelVersion, pk=pk)
        if request.method != "POST":
            current = ModelAlias.objects.filter(alias=alias).first()
            now = f"It points at v{current.model_version_id} now." if current else ""
            return self.confirm(
                request,
                f"Make {version} the {alias}",
                f"Point {alias} at {version}? {now}",
                f"Make it the {alias}",
                version,
            )

        registry.promote(version, alias, request.user, _reason(request))
        self.message_user(request, f"{version} is now the {alias}.", messages.SUCCESS)
        return redirect("admin:mlcore_modelversion_change", version.pk)

    @admin.display(description="aliases")
    def aliases_held(self, obj):
        return ", ".join(sorted(a.alias for a in obj.aliases.all())) or "—"

    @admin.display(description="accuracy")
    def accuracy(self, obj):
        return _percent(obj.metrics.get("accuracy"))

    @admin.display(description="macro-F1")
    def macro_f1(self, obj):
        return _figure(obj.metrics.get("macro_f1"))

    @admin.display(description="calibration error")
    def calibration_error(self, obj):
        return _figure(obj.metrics.get("calibration_error"))

    @admin.display(description="coverage at 95% precision")
    def coverage_95(self, obj):
        at = obj.metrics.get("coverage_at_precision", {}).get("0.95") or {}
        if at.get("coverage") is None:
            return "—"
        if at.get("threshold") is None:
            return _percent(at["coverage"])
        return f"{_percent(at['coverage'])} (confidence ≥ {at['threshold']:.2f})"

    @admin.display(description="training run")
    def training_run_link(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:mlcore_trainingrun_change", args=[obj.training_run_id]),
            obj.training_run,
        )

    @admin.display(description="thresholds")
    def threshold_table(self, obj):
        rows = obj.metrics.get("thresholds") or []
        if not rows:
            return "—"
        body = format_html_join(
            "",
            "<tr><td>≥ {}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            (
                (
                    f"{row['threshold']:.2f}",
                    _percent(row["coverage"]),
                    _percent(row["precision"]),
                    f"{row['count']:,}",
                )
                for row in rows
            ),
        )
        return format_html(
            "<table><tr><th>confidence</th><th>coverage</th><th>precision</th>"
            "<th>count</th></tr>{}</table>",
            body,
        )


@admin.register(ModelAlias)
class ModelAliasAdmin(RegistryAdmin):
    list_display = ["alias", "model_version", "updated_by", "updated_at"]
    list_select_related = ["model_version", "updated_by"]

    def get_list_display(self, request):
        if request.user.has_perm(PROMOTE_PERMISSION):
            return [*self.list_display, "changes"]
        return self.list_display

    def get_urls(self):
        view = self.admin_site.admin_view
        return [
            path(
                "<str:alias>/rollback/",
                view(self.rollback_view),
                name="mlcore_modelalias_rollback",
            ),
            path(
                "<str:alias>/remove/",
                view(self.remove_view),
                name="mlcore_modelalias_remove",
            ),
            *super().get_urls(),
        ]

    @admin.display(description="")
    def changes(self, obj):
        return format_html(
            '<a class="button" href="{}">Roll back</a> '
            '<a class="button" href="{}">Remove</a>',
            reverse("admin:mlcore_modelalias_rollback", args=[obj.alias]),
            reverse("admin:mlcore_modelalias_remove", args=[obj.alias]),
        )

    def rollback_view(self, request, alias):
        current = self._current(request, alias)
        if request.method != "POST":
            return self.confirm(
                request,
                f"Roll back {alias}",
                f"Point {alias} back at the version it had before "
                f"v{current.model_version_id}?",
                "Roll back",
                current,
            )

        try:
            version = registry.rollback(alias, request.user, _reason(request))
        except registry.RegistryError as exc:
            self.message_user(request, f"Not rolled back: {exc}.", messages.ERROR)
        else:
            self.message_user(
                request, f"{alias} is back at {version}.", messages.SUCCESS
            )
        return redirect("admin:mlcore_modelalias_changelist")

    def remove_view(self, request, alias):
        current = self._current(request, alias)
        if request.method != "POST":
            consequence = (
                "Suggestions stop until another model is made champion."
                if alias == Alias.CHAMPION
                else "The A/B test ends: the champion answers everything."
            )
            return self.confirm(
                request,
                f"Remove {alias}",
                f"Remove {alias} (now v{current.model_version_id})? {consequence}",
                "Remove",
                current,
            )

        try:
            registry.remove(alias, request.user, _reason(request))
        except registry.RegistryError as exc:
            self.message_user(request, f"Not removed: {exc}.", messages.ERROR)
        else:
            self.message_user(request, f"Removed {alias}.", messages.SUCCESS)
        return redirect("admin:mlcore_modelalias_changelist")

    def _current(self, request, alias):
        if not request.user.has_perm(PROMOTE_PERMISSION):
            raise PermissionDenied
        return get_object_or_404(ModelAlias, alias=alias)


@admin.register(ModelAliasChange)
class ModelAliasChangeAdmin(RegistryAdmin):
    list_display = [
        "changed_at",
        "alias",
        "action",
        "previous_version",
        "model_version",
        "changed_by",
        "reason",
    ]
    list_filter = ["alias", "action"]
    list_select_related = ["previous_version", "model_version", "changed_by"]


# -- Suggestions -------------------------------------------------------------


@admin.register(Suggestion)
class SuggestionAdmin(RegistryAdmin):
    list_display = [
        "id",
        "transaction",
        "label",
        "confidence_percent",
        "arm",
        "model_version",
        "outcome",
        "created_at",
    ]
    list_filter = ["arm", "outcome", "model_version"]
    list_select_related = ["txn", "model_version"]
    search_fields = ["=txn__id"]
    # A list that grows with every suggestion served: no exact counts.
    show_full_result_count = False
    change_list_template = "admin/mlcore/suggestion/change_list.html"

    def changelist_view(self, request, extra_context=None):
        extra_context = {**(extra_context or {}), "arms": experiment.arm_report()}
        return super().changelist_view(request, extra_context)

    @admin.display(description="transaction", ordering="txn_id")
    def transaction(self, obj):
        return format_html(
            '<a href="{}">{}</a>',
            reverse("admin:labeling_transaction_change", args=[obj.txn_id]),
            obj.txn.description,
        )

    @admin.display(description="confidence", ordering="confidence")
    def confidence_percent(self, obj):
        return _percent(obj.confidence)


def _percent(value):
    return "—" if value is None else f"{value:.0%}"


def _figure(value):
    return "—" if value is None else f"{value:.3f}"
