"""REST resources of the ML core: features, jobs, training runs, the model
registry and suggestions.

Starting work goes through ``mlcore.tasks`` like the admin's buttons do, so
the API gets the same jobs, the same exclusivity and the same progress.
Alias changes go through ``mlcore.registry``, which logs who made them.
"""

import logging
from datetime import date

import django_filters
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.response import Response

from finance_project.api import (
    ConflictSerializer,
    ErrorSerializer,
    JobThrottle,
    KeysetPagination,
    ModelPermissions,
    WriteThrottle,
    requires,
)
from labeling.models import Transaction
from mlcore import dbt, experiment, registry, serving, tasks
from mlcore.features.build import DEFAULT_BATCH_SIZE
from mlcore.features.compute import FEATURE_COLUMNS
from mlcore.jobs import JobConflict
from mlcore.models import (
    Alias,
    FeatureVector,
    Job,
    JobStatus,
    ModelAlias,
    ModelAliasChange,
    ModelVersion,
    Suggestion,
    TrainingRun,
)

logger = logging.getLogger(__name__)

# Smallest and largest chunk a feature build accepts: below, the per-chunk
# overhead dominates; above, a worker's memory would not hold the chunk.
MIN_BATCH_SIZE = 1_000
MAX_BATCH_SIZE = 1_000_000

# dbt's selector syntax: names, tags, paths, graph and set operators.
DBT_SELECT_PATTERN = r"^[A-Za-z0-9_:.+*@/, -]{1,200}$"

# One request suggests for at most this many transactions: a thousand rows
# score in well under a second, and the answer stays a few hundred KB.
MAX_SUGGEST_ITEMS = 1000
MAX_TOP_K = 10
MAX_ID = 2**63 - 1

PROMOTE_PERMISSION = "mlcore.promote_modelversion"


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


class TrainingInputSerializer(serializers.Serializer):
    cutoff = serializers.RegexField(
        r"^[0-9]{4}-(0[1-9]|1[0-2])$",
        required=False,
        allow_null=True,
        help_text="First validation month, `YYYY-MM`; training uses the months "
        "before it (default: the last full month with labels).",
    )
    promote_if_better = serializers.BooleanField(
        required=False,
        default=True,
        help_text="Make the new model champion if it beats the current one on "
        "the same validation months.",
    )

    def validate_cutoff(self, value):
        if not value:
            return None
        year, month = value.split("-")
        return date(int(year), int(month), 1)


# -- Suggestion serializers --------------------------------------------------


class ArmField(serializers.CharField):
    """The arm that answered, a plain string in the schema.

    An enum would repeat the aliases' choice set under a second component
    name, which drf-spectacular flags.
    """

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "help_text", "`champion` or `challenger`: the alias whose model answered."
        )
        super().__init__(**kwargs)


class ScoredCategorySerializer(serializers.Serializer):
    category = serializers.CharField()
    probability = serializers.FloatField()


class NewTransactionSerializer(serializers.Serializer):
    """A transaction that is not stored, to suggest a category for."""

    date = serializers.DateField(help_text="Posting date.")
    description = serializers.CharField(max_length=1000)
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="Negative is money out."
    )
    account = serializers.CharField(
        max_length=64, help_text="Its history (earlier transactions) informs it."
    )


class SuggestInputSerializer(serializers.Serializer):
    transaction_ids = serializers.ListField(
        child=serializers.IntegerField(min_value=1, max_value=MAX_ID),
        min_length=1,
        max_length=MAX_SUGGEST_ITEMS,
        required=False,
        help_text="Stored transactions; their suggestions are stored too.",
    )
    transactions = serializers.ListField(
        child=NewTransactionSerializer(),
        min_length=1,
        max_length=MAX_SUGGEST_ITEMS,
        required=False,
        help_text="Transactions that are not stored; nothing is stored.",
    )
    top_k = serializers.IntegerField(
        min_value=1,
        max_value=MAX_TOP_K,
        required=False,
        help_text="Categories per transaction, most likely first (default 3).",
    )

    def validate(self, attrs):
        given = [key for key in ("transaction_ids", "transactions") if key in attrs]
        if len(given) != 1:
            raise serializers.ValidationError(
                "Give exactly one of `transaction_ids` and `transactions`."
            )
        return attrs


class SuggestResultSerializer(serializers.Serializer):
    transaction_id = serializers.IntegerField(
        required=False, help_text="For `transaction_ids`: the transaction."
    )
    index = serializers.IntegerField(
        required=False, help_text="For `transactions`: the item's position."
    )
    suggestions = ScoredCategorySerializer(many=True)
    model_version = serializers.IntegerField()
    arm = ArmField()
    suggestion_id = serializers.IntegerField(
        required=False, help_text="The stored suggestion (stored transactions)."
    )


class SuggestionSerializer(serializers.ModelSerializer):
    transaction = serializers.IntegerField(source="txn_id", read_only=True)
    model_version = serializers.IntegerField(source="model_version_id", read_only=True)
    top_k = ScoredCategorySerializer(many=True, read_only=True)
    arm = ArmField(read_only=True)

    class Meta:
        model = Suggestion
        fields = [
            "id",
            "transaction",
            "model_version",
            "arm",
            "label",
            "confidence",
            "top_k",
            "outcome",
            "outcome_at",
            "created_at",
        ]
        read_only_fields = fields


class ArmSerializer(serializers.Serializer):
    model_version = serializers.IntegerField()
    arm = ArmField()
    served = serializers.IntegerField(help_text="Suggestions stored.")
    transactions = serializers.IntegerField(help_text="Distinct transactions.")
    evaluated = serializers.IntegerField(
        help_text="Of those, the ones that now have a human label."
    )
    correct = serializers.IntegerField(
        help_text="Evaluated ones labeled with the suggested category."
    )
    accuracy = serializers.FloatField(
        allow_null=True, help_text="correct / evaluated; null before any label."
    )
    accepted = serializers.IntegerField()
    overridden = serializers.IntegerField()


# -- Registry serializers ----------------------------------------------------


class CoverageSerializer(serializers.Serializer):
    coverage = serializers.FloatField(allow_null=True)
    threshold = serializers.FloatField(allow_null=True)
    precision = serializers.FloatField(allow_null=True)


class ThresholdSerializer(serializers.Serializer):
    threshold = serializers.FloatField()
    coverage = serializers.FloatField(allow_null=True)
    precision = serializers.FloatField(allow_null=True)
    count = serializers.IntegerField()


class MetricsSummarySerializer(serializers.Serializer):
    n = serializers.IntegerField(
        allow_null=True, help_text="Validation rows (human labels)."
    )
    accuracy = serializers.FloatField(allow_null=True)
    macro_f1 = serializers.FloatField(allow_null=True)
    calibration_error = serializers.FloatField(allow_null=True)
    coverage_at_precision = serializers.DictField(
        child=CoverageSerializer(),
        help_text="By precision target (`0.90`, `0.95`, `0.98`): the share of "
        "suggestions that reaches it, most confident first, and the threshold.",
    )
    thresholds = ThresholdSerializer(many=True)


def metrics_summary(metrics):
    """The headline figures of a training run's ``metrics``."""
    return {
        "n": metrics.get("n"),
        "accuracy": metrics.get("accuracy"),
        "macro_f1": metrics.get("macro_f1"),
        "calibration_error": metrics.get("calibration_error"),
        "coverage_at_precision": metrics.get("coverage_at_precision", {}),
        "thresholds": metrics.get("thresholds", []),
    }


class ModelVersionSerializer(serializers.ModelSerializer):
    url = serializers.HyperlinkedIdentityField(view_name="model-version-detail")
    training_run = serializers.IntegerField(source="training_run_id", read_only=True)
    aliases = serializers.SerializerMethodField(
        help_text="The aliases that point at this version now."
    )
    metrics = serializers.SerializerMethodField(
        help_text="Measured on the training run's validation months."
    )

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "url",
            "training_run",
            "created_at",
            "aliases",
            "metrics",
            "classes",
            "artifact_path",
            "artifact_sha256",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_aliases(self, obj):
        return sorted(alias.alias for alias in obj.aliases.all())

    @extend_schema_field(MetricsSummarySerializer)
    def get_metrics(self, obj):
        return metrics_summary(obj.training_run.metrics or {})


class ModelAliasSerializer(serializers.ModelSerializer):
    model_version = serializers.IntegerField(source="model_version_id", read_only=True)
    updated_by = serializers.IntegerField(
        source="updated_by_id", read_only=True, allow_null=True
    )

    class Meta:
        model = ModelAlias
        fields = ["alias", "model_version", "updated_by", "updated_at"]
        read_only_fields = fields


class ModelAliasChangeSerializer(serializers.ModelSerializer):
    previous_version = serializers.IntegerField(
        source="previous_version_id", read_only=True, allow_null=True
    )
    model_version = serializers.IntegerField(
        source="model_version_id",
        read_only=True,
        allow_null=True,
        help_text="What the alias points at after the change; null once removed.",
    )
    changed_by = serializers.IntegerField(
        source="changed_by_id", read_only=True, allow_null=True
    )

    class Meta:
        model = ModelAliasChange
        fields = [
            "id",
            "alias",
            "action",
            "previous_version",
            "model_version",
            "reason",
            "changed_by",
            "changed_at",
        ]
        read_only_fields = fields


class ReasonSerializer(serializers.Serializer):
    reason = serializers.CharField(
        max_length=255,
        required=False,
        allow_blank=True,
        default="",
        help_text="Why; kept in the change log.",
    )


class PromoteInputSerializer(ReasonSerializer):
    alias = serializers.ChoiceField(choices=Alias.choices)


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


class SuggestionFilter(django_filters.FilterSet):
    transaction = django_filters.NumberFilter(field_name="txn_id")
    model_version = django_filters.NumberFilter(field_name="model_version_id")
    arm = django_filters.ChoiceFilter(choices=Suggestion.Arm.choices)
    outcome = django_filters.ChoiceFilter(choices=Suggestion.Outcome.choices)

    class Meta:
        model = Suggestion
        fields = []


class ModelAliasChangeFilter(django_filters.FilterSet):
    alias = django_filters.ChoiceFilter(choices=Alias.choices)
    action = django_filters.ChoiceFilter(choices=ModelAliasChange.Action.choices)

    class Meta:
        model = ModelAliasChange
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
            "trainings": "mlcore.run_training",
        }
        if self.action in perms:
            return [requires(perms[self.action])()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action in ("feature_builds", "dbt_runs", "trainings"):
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

    @extend_schema(
        summary="Start training a model",
        description="Trains on the labels before `cutoff`, measures on the human "
        "labels from it, and registers the model; with `promote_if_better` "
        "(the default) it becomes champion if it beats the current one. One "
        "training at a time. Needs `mlcore.run_training`.",
        request=TrainingInputSerializer,
        responses={202: _STARTED, 409: _CONFLICT},
        filters=False,
    )
    @action(
        detail=False,
        methods=["post"],
        url_path="trainings",
        filterset_class=None,
        pagination_class=None,
    )
    def trainings(self, request):
        serializer = TrainingInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        return start_job(request, tasks.start_training, **serializer.validated_data)


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


# -- Suggestions -------------------------------------------------------------


@extend_schema_view(
    list=extend_schema(summary="List stored suggestions, newest first"),
)
class SuggestionViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = Suggestion.objects.all()
    serializer_class = SuggestionSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)
    filterset_class = SuggestionFilter

    def get_permissions(self):
        # Anyone who may see transactions may ask what the model thinks.
        if self.action == "create":
            return [requires("labeling.view_transaction")()]
        return super().get_permissions()

    @extend_schema(
        summary="Suggest categories",
        description="For stored transactions (`transaction_ids`, each answered "
        "once, in order; the suggestions are stored, and the label a person "
        "sets later is compared with them) or for transactions that are not "
        f"stored (`transactions`; nothing is stored). Up to {MAX_SUGGEST_ITEMS} "
        "per request. When a challenger model is registered, a fixed share of "
        "transactions is answered by it (`arm`). Needs "
        "`labeling.view_transaction`.",
        request=SuggestInputSerializer,
        responses={
            200: inline_serializer(
                "SuggestResults", {"results": SuggestResultSerializer(many=True)}
            ),
            503: OpenApiResponse(
                ErrorSerializer,
                description="No champion model is registered yet.",
            ),
        },
    )
    def create(self, request):
        # Latency matters here (one id should take a few ms): a plain
        # serializer for the input, one batch call, plain dicts out.
        serializer = SuggestInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        top_k = data.get("top_k")

        try:
            if "transaction_ids" in data:
                answers = serving.suggest_transactions(
                    data["transaction_ids"], top_k=top_k
                )
            else:
                answers = serving.suggest_new(
                    [
                        {
                            "account": item["account"],
                            "posted_on": item["date"],
                            "description": item["description"],
                            "amount": item["amount"],
                        }
                        for item in data["transactions"]
                    ],
                    top_k=top_k,
                )
        except serving.NoModel as exc:
            return Response(
                {"detail": str(exc)}, status=status.HTTP_503_SERVICE_UNAVAILABLE
            )
        except Transaction.DoesNotExist as exc:
            raise serializers.ValidationError({"transaction_ids": [str(exc)]}) from exc

        if "transaction_ids" in data:
            results = [
                {
                    "transaction_id": answer.txn_id,
                    "suggestions": answer.top_k,
                    "model_version": answer.model_version,
                    "arm": answer.arm,
                    "suggestion_id": answer.suggestion_id,
                }
                for answer in answers
            ]
        else:
            results = [
                {
                    "index": index,
                    "suggestions": answer.top_k,
                    "model_version": answer.model_version,
                    "arm": answer.arm,
                }
                for index, answer in enumerate(answers)
            ]
        return Response({"results": results})

    @extend_schema(
        summary="How each model and arm fares",
        description="Per model version and arm: suggestions served, the "
        "transactions they were for, how many of those now have a human label "
        "(`evaluated`), how many of those got the suggested category "
        "(`correct`, `accuracy`), and the outcomes recorded when they were "
        "labeled. A transaction counts once per version and arm, with the "
        "latest suggestion made for it. Needs `mlcore.view_suggestion`.",
        responses={
            200: inline_serializer("ArmReport", {"results": ArmSerializer(many=True)})
        },
        filters=False,
    )
    @action(
        detail=False,
        methods=["get"],
        pagination_class=None,
        filterset_class=None,
    )
    def arms(self, request):
        return Response({"results": experiment.arm_report()})


# -- Model registry ----------------------------------------------------------


def _registry_conflict(exc):
    return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)


_REGISTRY_CONFLICT = OpenApiResponse(
    ErrorSerializer, description="The change cannot be made; `detail` says why."
)


@extend_schema_view(
    list=extend_schema(summary="List model versions, newest first"),
    retrieve=extend_schema(summary="A model version with its figures and aliases"),
)
class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = ModelVersion.objects.select_related("training_run").prefetch_related(
        "aliases"
    )
    serializer_class = ModelVersionSerializer
    permission_classes = [ModelPermissions]
    throttle_classes = [WriteThrottle]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)

    def get_permissions(self):
        if self.action == "promote":
            return [requires(PROMOTE_PERMISSION)()]
        return super().get_permissions()

    @extend_schema(
        summary="Point an alias at this version",
        description="`champion` serves suggestions; `challenger` serves a fixed "
        "share of them (an A/B test). Promoting the challenger to champion "
        "also removes the challenger alias. The change log records you and "
        "the reason. Needs `mlcore.promote_modelversion`.",
        request=PromoteInputSerializer,
        responses={200: ModelAliasSerializer},
    )
    @action(detail=True, methods=["post"])
    def promote(self, request, pk=None):
        version = self.get_object()
        serializer = PromoteInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        alias = serializer.validated_data["alias"]

        registry.promote(
            version, alias, request.user, serializer.validated_data["reason"]
        )
        logger.info(
            "%s pointed %s at model v%s through the API",
            request.user,
            alias,
            version.pk,
            extra={"model_version": version.pk},
        )
        return Response(ModelAliasSerializer(ModelAlias.objects.get(pk=alias)).data)


@extend_schema_view(
    list=extend_schema(summary="List the aliases and the versions they point at"),
    retrieve=extend_schema(summary="One alias"),
)
class ModelAliasViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = ModelAlias.objects.all()
    serializer_class = ModelAliasSerializer
    permission_classes = [ModelPermissions]
    throttle_classes = [WriteThrottle]
    pagination_class = KeysetPagination
    keyset_ordering = ("alias",)
    lookup_field = "alias"

    def get_permissions(self):
        if self.action in ("destroy", "rollback"):
            return [requires(PROMOTE_PERMISSION)()]
        return super().get_permissions()

    @extend_schema(
        summary="Remove an alias",
        description="For instance, end an A/B test by removing `challenger`. "
        "Removing `champion` stops suggestions until one is promoted. Needs "
        "`mlcore.promote_modelversion`.",
        parameters=[
            OpenApiParameter(
                "reason",
                OpenApiTypes.STR,
                description="Why; kept in the change log (up to 255 characters).",
            )
        ],
        responses={
            204: None,
            400: OpenApiResponse(
                ReasonSerializer, description="The reason is too long."
            ),
            409: _REGISTRY_CONFLICT,
        },
    )
    def destroy(self, request, alias=None):
        current = self.get_object()
        serializer = ReasonSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)

        try:
            registry.remove(
                current.alias, request.user, serializer.validated_data["reason"]
            )
        except registry.RegistryError as exc:
            return _registry_conflict(exc)
        logger.info("%s removed %s through the API", request.user, current.alias)
        return Response(status=status.HTTP_204_NO_CONTENT)

    @extend_schema(
        summary="Roll an alias back",
        description="Points the alias at the version it had before its current "
        "one was promoted; repeated rollbacks walk further back. Needs "
        "`mlcore.promote_modelversion`.",
        request=ReasonSerializer,
        responses={200: ModelAliasSerializer, 409: _REGISTRY_CONFLICT},
    )
    @action(detail=True, methods=["post"])
    def rollback(self, request, alias=None):
        current = self.get_object()
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)

        try:
            version = registry.rollback(
                current.alias, request.user, serializer.validated_data["reason"]
            )
        except registry.RegistryError as exc:
            return _registry_conflict(exc)
        logger.info(
            "%s rolled %s back to model v%s through the API",
            request.user,
            current.alias,
            version.pk,
            extra={"model_version": version.pk},
        )
        return Response(
            ModelAliasSerializer(ModelAlias.objects.get(pk=current.alias)).data
        )


@extend_schema_view(
    list=extend_schema(summary="Alias changes, newest first: who, when and why"),
)
class ModelAliasChangeViewSet(mixins.ListModelMixin, viewsets.GenericViewSet):
    queryset = ModelAliasChange.objects.all()
    serializer_class = ModelAliasChangeSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)
    filterset_class = ModelAliasChangeFilter


def register(router):
    router.register("features", FeatureViewSet, basename="feature")
    router.register("jobs", JobViewSet, basename="job")
    router.register("training-runs", TrainingRunViewSet, basename="training-run")
    router.register("suggestions", SuggestionViewSet, basename="suggestion")
    router.register("model-versions", ModelVersionViewSet, basename="model-version")
    router.register("model-aliases", ModelAliasViewSet, basename="model-alias")
    router.register(
        "model-alias-changes", ModelAliasChangeViewSet, basename="model-alias-change"
    )
