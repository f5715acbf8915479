"""REST resources of the ML core: features, jobs and training runs.

Starting work goes through ``mlcore.tasks`` like the admin's buttons do, so
the API gets the same jobs, the same exclusivity and the same progress.
"""

import logging

import django_filters
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
)
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from finance_project.api import (
    ConflictSerializer,
    JobThrottle,
    KeysetPagination,
    ModelPermissions,
    requires,
)
from mlcore import dbt, tasks
from mlcore.features.build import DEFAULT_BATCH_SIZE
from mlcore.features.compute import FEATURE_COLUMNS
from mlcore.jobs import JobConflict
from mlcore.models import FeatureVector, Job, JobStatus, TrainingRun

logger = logging.getLogger(__name__)

# Smallest and largest chunk a feature build accepts: below, the per-chunk
# overhead dominates; above, a worker's memory would not hold the chunk.
MIN_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 1_000_000

# dbt's selector syntax: names, tags, paths, graph and set operators.
DBT_SELECT_PATTERN = r"^[A-Za-z0-9_:.+*@/, -]{1,200}$"


# -- Serializers -------------------------------------------------------------


class FeatureVectorSerializer(serializers.ModelSerializer):
    txn = serializers.IntegerField(source="txn_id", read_only=True)

    class Meta:
        model = FeatureVector
        # The stored columns as the feature code defines them, then when.
        fields = ["txn", *FEATURE_COLUMNS[1:], "computed_at"]
        read_only_fields = fields


class JobSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="job-detail")
    progress_percent = serializers.FloatField(read_only=True, allow_null=True)
    created_by = serializers.IntegerField(
        source="created_by_id", read_only=True, allow_null=True
    )

    class Meta:
        model = Job
        fields = [
            "id",
            "url",
            "kind",
            "status",
            "progress_done",
            "progress_total",
            "progress_percent",
            "params",
            "result",
            "error",
            "log_tail",
            "created_by",
            "created_at",
            "started_at",
            "finished_at",
        ]
        read_only_fields = fields


class FeatureBuildInputSerializer(serializers.Serializer):
    since = serializers.DateField(
        required=False, allow_null=True, help_text="First posting date (inclusive)."
    )
    until = serializers.DateField(
        required=False, allow_null=True, help_text="Last posting date (inclusive)."
    )
    batch_size = serializers.IntegerField(
        required=False,
        allow_null=True,
        min_value=MIN_BATCH_SIZE,
        max_value=MAX_BATCH_SIZE,
        help_text=f"Transactions per chunk (default {DEFAULT_BATCH_SIZE}).",
    )

    def validate(self, attrs):
        since, until = attrs.get("since"), attrs.get("until")
        if since and until and since > until:
            raise serializers.ValidationError({"until": ["Before `since`."]})
        return attrs


class DbtRunInputSerializer(serializers.Serializer):
    select = serializers.RegexField(
        DBT_SELECT_PATTERN,
        required=False,
        default=dbt.DEFAULT_SELECT,
        help_text="dbt node selection (default `tag:ml`).",
    )
    full_refresh = serializers.BooleanField(required=False, default=False)


class TrainingRunSerializer(serializers.ModelSerializer):
    created_by = serializers.IntegerField(
        source="created_by_id", read_only=True, allow_null=True
    )
    job = serializers.IntegerField(source="job_id", read_only=True, allow_null=True)

    class Meta:
        model = TrainingRun
        fields = [
            "id",
            "status",
            "job",
            "started_at",
            "finished_at",
            "duration_seconds",
            "params",
            "train_start",
            "train_end",
            "validation_start",
            "validation_end",
            "label_counts",
            "row_counts",
            "metrics",
            "code_version",
            "artifact_path",
            "artifact_sha256",
            "error",
            "created_by",
            "created_at",
        ]
        read_only_fields = fields


# -- Filters -----------------------------------------------------------------


class FeatureFilter(django_filters.FilterSet):
    month_from = django_filters.DateFilter(
        field_name="ts_month",
        lookup_expr="gte",
        label="ts_month on or after (first day of a month).",
    )
    month_to = django_filters.DateFilter(
        field_name="ts_month", lookup_expr="lte", label="ts_month on or before."
    )
    account = django_filters.CharFilter()
    merchant = django_filters.CharFilter()

    class Meta:
        model = FeatureVector
        fields = []


class JobFilter(django_filters.FilterSet):
    kind = django_filters.ChoiceFilter(choices=Job.Kind.choices)
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)

    class Meta:
        model = Job
        fields = []


# -- Views -------------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List feature vectors of live transactions"),
    retrieve=extend_schema(summary="Features of one transaction"),
)
class FeatureViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = FeatureVector.objects.filter(txn__deleted_at__isnull=True)
    serializer_class = FeatureVectorSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-ts_month", "-txn_id")
    filterset_class = FeatureFilter
    lookup_url_kwarg = "txn_id"


def start_job(request, starter, **params):
    """Start a job; a 202 pointing at it, or a 409 pointing at the one in
    the way."""
    try:
        job = starter(**params, user=request.user)
    except JobConflict as exc:
        url = request.build_absolute_uri(reverse("job-detail", args=[exc.job.pk]))
        return Response(
            {"detail": str(exc), "url": url},
            status=status.HTTP_409_CONFLICT,
            headers={"Location": url},
        )
    logger.info("Job %s started through the API by %s", job.pk, request.user)
    body = JobSerializer(job, context={"request": request}).data
    return Response(
        body, status=status.HTTP_202_ACCEPTED, headers={"Location": body["url"]}
    )


_STARTED = OpenApiResponse(
    JobSerializer,
    description="Queued; `Location` and `url` point at the job to follow.",
)
_CONFLICT = OpenApiResponse(
    ConflictSerializer,
    description="A job of this kind is queued or running; `url` points at it.",
)


@extend_schema_view(
    list=extend_schema(summary="List jobs, newest first"),
    retrieve=extend_schema(summary="A job with its progress"),
)
class JobViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Job.objects.all()
    serializer_class = JobSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)
    filterset_class = JobFilter

    def get_permissions(self):
        perms = {
            "feature_builds": "mlcore.run_feature_build",
            "dbt_runs": "mlcore.run_dbt",
        }
        if self.action in perms:
            return [requires(perms[self.action])()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action in ("feature_builds", "dbt_runs"):
            return [JobThrottle()]
        return super().get_throttles()

    @extend_schema(
        summary="Start a feature build",
        description="Builds the features of transactions posted in "
        "[`since`, `until`] (open ends: everything) in parallel chunks. One "
        "build at a time. Needs `mlcore.run_feature_build`.",
        request=FeatureBuildInputSerializer,
        responses={202: _STARTED, 409: _CONFLICT},
        filters=False,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="feature-builds",
        filterset_class=None,
        pagination_class=None,
    )
    def feature_builds(self, request):
        serializer = FeatureBuildInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return start_job(
            request, tasks.start_feature_build, **serializer.validated_data
        )

    @extend_schema(
        summary="Start a dbt run",
        description="`dbt build` of `select` (default `tag:ml`). One run at a "
        "time. Needs `mlcore.run_dbt`.",
        request=DbtRunInputSerializer,
        responses={202: _STARTED, 409: _CONFLICT},
        filters=False,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="dbt-runs",
        filterset_class=None,
        pagination_class=None,
    )
    def dbt_runs(self, request):
        serializer = DbtRunInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return start_job(request, tasks.start_dbt_run, **serializer.validated_data)


@extend_schema_view(
    list=extend_schema(summary="List training runs, newest first"),
    retrieve=extend_schema(summary="One training run"),
)
class TrainingRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = TrainingRun.objects.all()
    serializer_class = TrainingRunSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)


def register(router):
    router.register("features", FeatureViewSet, basename="feature")
    router.register("jobs", JobViewSet, basename="job")
    router.register("training-runs", TrainingRunViewSet, basename="training-run")
