"""REST resources of the labeling app: transactions, labels, categories,
label history, and labeling rules with their runs.

Views stay thin: creating transactions is ``create_transactions``, labels
go through ``labeling.labels`` so that source precedence and history apply
exactly as in the admin.
"""

import logging
from collections import Counter
from dataclasses import dataclass, field
from functools import partial

import django_filters
from django.core.exceptions import ObjectDoesNotExist
from django.db import connection, transaction
from django.db.models.functions import Now
from django.urls import reverse
from drf_spectacular.utils import (
    OpenApiExample,
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
    JobThrottle,
    KeysetPagination,
    ModelPermissions,
    WriteThrottle,
    requires,
)
from labeling import rule_runs
from labeling.importing import enqueue_feature_builds, fingerprint
from labeling.labels import LabelPrecedenceError, clear_label, set_label
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
from mlcore.api import FeatureVectorSerializer
from mlcore.tasks import build_transaction_features_task

logger = logging.getLogger(__name__)

# Items per create request: large enough for a statement, small enough that
# the response (every created row) stays a few megabytes at most.
MAX_CREATE_ITEMS = 1000


def _related(obj, name):
    """A reverse one-to-one that may be missing (no label, no features)."""
    try:
        return getattr(obj, name)
    except ObjectDoesNotExist:
        return None


# -- Serializers -------------------------------------------------------------


class LabelSerializer(serializers.ModelSerializer):
    txn = serializers.IntegerField(source="txn_id", read_only=True)
    category = serializers.CharField(source="label_id", read_only=True)
    labeled_by = serializers.IntegerField(
        source="labeled_by_id", read_only=True, allow_null=True
    )
    rule_id = serializers.IntegerField(
        read_only=True, allow_null=True, help_text="The rule that wrote a rule label."
    )

    class Meta:
        model = TransactionLabel
        fields = [
            "txn",
            "category",
            "source",
            "labeled_by",
            "rule_id",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


class TransactionSerializer(serializers.ModelSerializer):
    merchant = serializers.SerializerMethodField(
        help_text="Canonical merchant from the features; null until they are built."
    )
    label = serializers.SerializerMethodField(help_text="The golden label, or null.")

    class Meta:
        model = Transaction
        fields = [
            "id",
            "account",
            "external_id",
            "posted_on",
            "description",
            "amount",
            "currency",
            "merchant",
            "label",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_merchant(self, obj):
        features = _related(obj, "features")
        return features.merchant if features else None

    @extend_schema_field(LabelSerializer(allow_null=True))
    def get_label(self, obj):
        label = _related(obj, "label")
        return LabelSerializer(label).data if label else None


class TransactionDetailSerializer(TransactionSerializer):
    features = serializers.SerializerMethodField(
        help_text="Point-in-time features, or null until they are built."
    )

    class Meta(TransactionSerializer.Meta):
        fields = [*TransactionSerializer.Meta.fields, "features"]
        read_only_fields = fields

    @extend_schema_field(FeatureVectorSerializer(allow_null=True))
    def get_features(self, obj):
        features = _related(obj, "features")
        return FeatureVectorSerializer(features).data if features else None


class TransactionInputSerializer(serializers.Serializer):
    """One new transaction, as a bank would report it."""

    account = serializers.CharField(max_length=64)
    external_id = serializers.CharField(
        max_length=64,
        required=False,
        allow_null=True,
        allow_blank=True,
        help_text="The bank's id. Without it, a fingerprint of the other fields "
        "(as the importer makes) identifies the transaction.",
    )
    posted_on = serializers.DateField()
    description = serializers.CharField(max_length=1000)
    amount = serializers.DecimalField(
        max_digits=12, decimal_places=2, help_text="Negative is money out."
    )
    currency = serializers.RegexField(
        r"^[A-Z]{3}$", required=False, default="USD", help_text="ISO 4217 code."
    )


class DuplicateSerializer(serializers.Serializer):
    index = serializers.IntegerField(help_text="Position of the item in the request.")
    id = serializers.IntegerField(help_text="The transaction already stored.")
    account = serializers.CharField()
    external_id = serializers.CharField()
    deleted = serializers.BooleanField(
        help_text="The stored one was deleted; it is not brought back."
    )


class CreateResultSerializer(serializers.Serializer):
    created = TransactionSerializer(many=True)
    duplicates = DuplicateSerializer(many=True)


class LabelInputSerializer(serializers.Serializer):
    category = serializers.CharField(
        max_length=64, help_text="A category name (case does not matter)."
    )

    def validate_category(self, value):
        category = Category.objects.filter(name__iexact=value.strip()).first()
        if category is None:
            raise serializers.ValidationError(f"Unknown category {value!r}.")
        if not category.is_active:
            raise serializers.ValidationError(f"Category {category.name!r} is retired.")
        return category.name


class HistorySerializer(serializers.ModelSerializer):
    actor = serializers.IntegerField(source="actor_id", read_only=True, allow_null=True)

    class Meta:
        model = LabelHistory
        fields = [
            "id",
            "txn_id",
            "operation",
            "old_label",
            "new_label",
            "old_source",
            "new_source",
            "actor",
            "rule_id",
            "changed_at",
        ]
        read_only_fields = fields


class CategorySerializer(serializers.ModelSerializer):
    parent = serializers.SlugRelatedField(
        slug_field="name",
        queryset=Category.objects.all(),
        required=False,
        allow_null=True,
        help_text="Name of the top-level category this one belongs to.",
    )

    class Meta:
        model = Category
        fields = ["id", "name", "parent", "is_active", "created_at"]
        read_only_fields = ["id", "created_at"]

    def validate_name(self, value):
        value = value.strip()
        if not value:
            raise serializers.ValidationError("A name is required.")
        return value

    def validate_parent(self, parent):
        # Two levels only: a parent is itself top-level, and not this one.
        if parent is None:
            return parent
        if parent.parent_id is not None:
            raise serializers.ValidationError(f"{parent.name!r} is not top-level.")
        if self.instance is not None:
            if parent.pk == self.instance.pk:
                raise serializers.ValidationError("A category cannot contain itself.")
            if self.instance.children.exists():
                raise serializers.ValidationError(
                    "A category with subcategories stays top-level."
                )
        return parent


class CategoryNameField(serializers.SlugRelatedField):
    """A category by name; a name PostgreSQL cannot store is simply unknown."""

    def to_internal_value(self, data):
        if isinstance(data, str) and "\x00" in data:
            self.fail("does_not_exist", slug_name=self.slug_field, value=data)
        return super().to_internal_value(data)


class RuleSerializer(serializers.ModelSerializer):
    """A rule with its figures (read-only, from its latest run)."""

    category = CategoryNameField(
        slug_field="name",
        queryset=Category.objects.filter(is_active=True),
        help_text="The category the rule's labels get.",
    )
    created_by = serializers.IntegerField(
        source="created_by_id", read_only=True, allow_null=True
    )
    conditions = serializers.CharField(
        source="describe", read_only=True, help_text="The conditions in words."
    )
    coverage = serializers.IntegerField(
        read_only=True,
        help_text="Live transactions the rule matched at its latest run.",
    )
    human_labeled = serializers.IntegerField(
        source="checked",
        read_only=True,
        help_text="Of those, how many have a human label.",
    )
    agreed = serializers.IntegerField(
        read_only=True, help_text="Of those, how many the human gave its category."
    )
    precision = serializers.SerializerMethodField(
        help_text="agreed / human_labeled; null without human labels."
    )
    below_precision_floor = serializers.SerializerMethodField(
        help_text="Precision is under the RULE_PRECISION_FLOOR setting."
    )
    measured = serializers.SerializerMethodField(
        help_text="It ran since its conditions last changed; otherwise the "
        "figures are empty."
    )
    last_run_at = serializers.DateTimeField(read_only=True, allow_null=True)

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "field",
            "operator",
            "pattern",
            "amount_min",
            "amount_max",
            "sign",
            "account",
            "day_from",
            "day_to",
            "category",
            "priority",
            "enabled",
            "may_override_import",
            "conditions",
            "created_by",
            "created_at",
            "updated_at",
            "conditions_changed_at",
            "coverage",
            "human_labeled",
            "agreed",
            "precision",
            "below_precision_floor",
            "measured",
            "last_run_at",
        ]
        read_only_fields = ["created_at", "updated_at", "conditions_changed_at"]
        extra_kwargs = {
            "amount_min": {"min_value": 0},
            "amount_max": {"min_value": 0},
            "day_from": {"min_value": 1, "max_value": 31},
            "day_to": {"min_value": 1, "max_value": 31},
        }

    def to_representation(self, instance):
        # A rule just created or changed comes without its figures.
        if not hasattr(instance, "coverage"):
            instance = rule_runs.with_figures(Rule.objects.filter(pk=instance.pk)).get()
        return super().to_representation(instance)

    @extend_schema_field(serializers.FloatField(allow_null=True))
    def get_precision(self, obj):
        return rule_runs.precision(obj)

    @extend_schema_field(serializers.BooleanField())
    def get_below_precision_floor(self, obj):
        return rule_runs.below_floor(obj)

    @extend_schema_field(serializers.BooleanField())
    def get_measured(self, obj):
        return rule_runs.measured(obj)

    def validate(self, attrs):
        # The model's clean(), on the stored values with the new ones on top.
        rule = Rule(
            **{
                name: attrs.get(name, getattr(self.instance or Rule(), name))
                for name in Rule.CONDITION_FIELDS
            }
        )
        errors = rule.conditions().errors()
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class RuleRunSerializer(serializers.ModelSerializer):
    rule = serializers.IntegerField(source="rule_id", read_only=True)
    triggered_by = serializers.IntegerField(
        source="triggered_by_id", read_only=True, allow_null=True
    )
    sample = serializers.ListField(
        child=serializers.DictField(),
        read_only=True,
        help_text="Some of the changes: txn, description, label and source now, "
        "new_label.",
    )

    class Meta:
        model = RuleRun
        fields = [
            "id",
            "rule",
            "dry_run",
            "trigger",
            "triggered_by",
            "status",
            "created_at",
            "started_at",
            "finished_at",
            "examined",
            "matched",
            "labeled",
            "unchanged",
            "skipped_higher_source",
            "skipped_import",
            "conflicts",
            "overruled",
            "sample",
            "error",
        ]
        read_only_fields = fields


# -- Creating transactions ---------------------------------------------------

_INSERT_SQL = """
    INSERT INTO transactions
        (account, external_id, posted_on, description, amount, currency)
    SELECT * FROM unnest(
        %s::varchar[], %s::varchar[], %s::date[], %s::text[], %s::numeric[],
        %s::varchar[]
    )
    ON CONFLICT (account, external_id) WHERE external_id IS NOT NULL DO NOTHING
    RETURNING id, account, external_id
"""

_EXISTING_SQL = """
    SELECT t.id, t.account, t.external_id, t.deleted_at IS NOT NULL
    FROM transactions t
    JOIN unnest(%s::varchar[], %s::varchar[]) AS k(account, external_id)
      ON t.account = k.account AND t.external_id = k.external_id
"""


@dataclass
class CreateResult:
    created_ids: list = field(default_factory=list)
    duplicates: list = field(default_factory=list)


def external_ids(items):
    """Each item's key: its bank id, or the importer's fingerprint.

    Identical items without an id are told apart by their occurrence number,
    as identical rows of one file are, so two equal coffees stay two.
    """
    occurrences = Counter()
    keys = []
    for item in items:
        if item.get("external_id"):
            keys.append(item["external_id"])
            continue
        same = (
            item["account"],
            item["posted_on"],
            item["amount"],
            " ".join(item["description"].split()),
        )
        occurrences[same] += 1
        keys.append(
            fingerprint(
                item["account"],
                item["posted_on"],
                item["amount"],
                item["description"],
                occurrences[same],
            )
        )
    return keys


def create_transactions(items):
    """Insert validated items; those already stored are duplicates.

    One statement, so all or nothing; features are built after the commit,
    then the enabled labeling rules run on the new transactions.
    """
    keys = external_ids(items)
    accounts = [item["account"] for item in items]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _INSERT_SQL,
            [
                accounts,
                keys,
                [item["posted_on"] for item in items],
                [item["description"] for item in items],
                [item["amount"] for item in items],
                [item.get("currency") or "USD" for item in items],
            ],
        )
        inserted = {(account, key): pk for pk, account, key in cursor.fetchall()}
        cursor.execute(_EXISTING_SQL, [accounts, keys])
        stored = {(account, key): (pk, gone) for pk, account, key, gone in cursor}

    result = CreateResult()
    claimed = set()
    for index, key in enumerate(zip(accounts, keys, strict=True)):
        if key in inserted and key not in claimed:
            claimed.add(key)
            result.created_ids.append(inserted[key])
            continue
        pk, gone = stored[key]
        result.duplicates.append(
            {
                "index": index,
                "id": pk,
                "account": key[0],
                "external_id": key[1],
                "deleted": gone,
            }
        )
    if result.created_ids:
        transaction.on_commit(partial(enqueue_feature_builds, result.created_ids))
    logger.info(
        "API created %d transactions, %d duplicates",
        len(result.created_ids),
        len(result.duplicates),
    )
    return result


def soft_delete(txn):
    """Hide a transaction; its features go after the commit (history stays)."""
    Transaction.objects.filter(pk=txn.pk).update(deleted_at=Now(), updated_at=Now())
    transaction.on_commit(lambda: build_transaction_features_task.delay([txn.pk]))


def validate_items(data):
    """Validate one item or a list; return (items, errors, many).

    ``errors`` maps the index of every bad item to its field errors, so a
    client fixes them all at once.
    """
    many = isinstance(data, list)
    raw = data if many else [data]
    if many and not raw:
        raise serializers.ValidationError({"non_field_errors": ["No items given."]})
    if len(raw) > MAX_CREATE_ITEMS:
        raise serializers.ValidationError(
            {"non_field_errors": [f"At most {MAX_CREATE_ITEMS} items per request."]}
        )
    items, errors = [], {}
    for index, item in enumerate(raw):
        serializer = TransactionInputSerializer(data=item)
        if serializer.is_valid():
            items.append(serializer.validated_data)
        else:
            errors[str(index)] = serializer.errors
    return items, errors, many


# -- Filters -----------------------------------------------------------------


class TransactionFilter(django_filters.FilterSet):
    posted_from = django_filters.DateFilter(
        field_name="posted_on", lookup_expr="gte", label="Posted on or after."
    )
    posted_to = django_filters.DateFilter(
        field_name="posted_on", lookup_expr="lte", label="Posted on or before."
    )
    account = django_filters.CharFilter(label="Exact account name.")
    merchant = django_filters.CharFilter(
        field_name="features__merchant", label="Canonical merchant (from features)."
    )
    labeled = django_filters.BooleanFilter(
        field_name="label", lookup_expr="isnull", exclude=True, label="Has a label."
    )
    label_source = django_filters.ChoiceFilter(
        field_name="label__source", choices=LabelSource.choices
    )
    category = django_filters.CharFilter(
        field_name="label__label_id", label="Category name of the label."
    )
    amount_min = django_filters.NumberFilter(field_name="amount", lookup_expr="gte")
    amount_max = django_filters.NumberFilter(field_name="amount", lookup_expr="lte")
    search = django_filters.CharFilter(
        field_name="description",
        lookup_expr="icontains",
        label="Text contained in the description (any case).",
    )

    class Meta:
        model = Transaction
        fields = []


class LabelFilter(django_filters.FilterSet):
    source = django_filters.ChoiceFilter(choices=LabelSource.choices)
    category = django_filters.CharFilter(field_name="label_id")
    labeled_by = django_filters.NumberFilter(field_name="labeled_by_id")
    txn = django_filters.NumberFilter(field_name="txn_id")

    class Meta:
        model = TransactionLabel
        fields = []


# -- Views -------------------------------------------------------------------

_ORDERINGS = {"-posted_on": ("-posted_on", "-id"), "posted_on": ("posted_on", "id")}


class TransactionPagination(KeysetPagination):
    ordering = ("-posted_on", "-id")

    def paginate_queryset(self, queryset, request, view=None):
        view.keyset_ordering = _ORDERINGS[_ordering(request)]
        return super().paginate_queryset(queryset, request, view)

    def get_schema_operation_parameters(self, view):
        return [
            *super().get_schema_operation_parameters(view),
            {
                "name": "ordering",
                "in": "query",
                "required": False,
                "description": "Newest first (`-posted_on`, the default) or "
                "oldest first (`posted_on`); ties by id.",
                "schema": {"type": "string", "enum": list(_ORDERINGS)},
            },
        ]


def _ordering(request):
    value = request.query_params.get("ordering", "-posted_on")
    if value not in _ORDERINGS:
        raise serializers.ValidationError(
            {"ordering": [f"One of: {', '.join(_ORDERINGS)}."]}
        )
    return value


@extend_schema_view(
    list=extend_schema(summary="List live transactions"),
    retrieve=extend_schema(
        summary="A transaction with its features and label",
        responses=TransactionDetailSerializer,
    ),
    destroy=extend_schema(
        summary="Delete a transaction (soft)",
        description="Sets `deleted_at`: the transaction leaves the API, its "
        "features are removed after the commit, its label history stays. "
        "Needs `labeling.delete_transaction`.",
    ),
)
class TransactionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.DestroyModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Transaction.objects.select_related("label", "features")
    serializer_class = TransactionSerializer
    permission_classes = [ModelPermissions]
    throttle_classes = [WriteThrottle]
    pagination_class = TransactionPagination
    filterset_class = TransactionFilter

    def get_serializer_class(self):
        if self.action == "retrieve":
            return TransactionDetailSerializer
        return super().get_serializer_class()

    def get_permissions(self):
        if self.action in ("label", "history"):
            return [requires(*self._label_perms())()]
        return super().get_permissions()

    def _label_perms(self):
        if self.action == "history":
            return ("labeling.view_labelhistory",)
        return {
            "PUT": ("labeling.change_transactionlabel",),
            "DELETE": ("labeling.delete_transactionlabel",),
        }.get(self.request.method, ("labeling.view_transactionlabel",))

    @extend_schema(
        summary="Create one transaction or many",
        description=(
            "The body is one transaction or a list of up to "
            f"{MAX_CREATE_ITEMS}. All or nothing: if any item is invalid, "
            "nothing is created and the 400 lists the errors of every bad item "
            "under `errors`, keyed by the item's position. Items already stored "
            "(same account and `external_id`, or the importer's fingerprint "
            "when `external_id` is absent) are reported as duplicates, also "
            "when the stored one was deleted. Features are built after the "
            "commit. Needs `labeling.add_transaction`."
        ),
        request=TransactionInputSerializer(many=True),
        responses={
            201: OpenApiResponse(
                CreateResultSerializer, description="At least one was created."
            ),
            200: OpenApiResponse(
                CreateResultSerializer, description="All were duplicates."
            ),
            400: OpenApiResponse(
                inline_serializer(
                    "ItemErrors",
                    {
                        "detail": serializers.CharField(required=False),
                        "errors": serializers.DictField(
                            child=serializers.DictField(),
                            required=False,
                            help_text="Field errors by item position.",
                        ),
                    },
                ),
                description="A list body with invalid items: `detail` and "
                "`errors` by item position. One invalid item, an empty list or "
                "too many items: field errors (or `non_field_errors`) directly.",
            ),
        },
        examples=[
            OpenApiExample(
                "Two transactions",
                value=[
                    {
                        "account": "Checking 1234",
                        "external_id": "bank-991",
                        "posted_on": "2025-03-14",
                        "description": "SQ *BLUE BOTTLE COFFEE OAKLAND CA",
                        "amount": "-4.50",
                    },
                    {
                        "account": "Checking 1234",
                        "posted_on": "2025-03-15",
                        "description": "PAYROLL ACME INC",
                        "amount": "2500.00",
                        "currency": "USD",
                    },
                ],
                request_only=True,
            )
        ],
    )
    def create(self, request):
        items, errors, many = validate_items(request.data)
        if errors:
            if not many:
                raise serializers.ValidationError(errors["0"])
            return Response(
                {
                    "detail": f"{len(errors)} of {len(request.data)} items are "
                    "invalid; nothing was created.",
                    "errors": errors,
                },
                status=status.HTTP_400_BAD_REQUEST,
            )
        result = create_transactions(items)
        created = self.get_queryset().filter(pk__in=result.created_ids)
        body = {
            "created": TransactionSerializer(
                sorted(created, key=lambda t: result.created_ids.index(t.pk)),
                many=True,
            ).data,
            "duplicates": result.duplicates,
        }
        code = status.HTTP_201_CREATED if result.created_ids else status.HTTP_200_OK
        return Response(body, status=code)

    def perform_destroy(self, instance):
        soft_delete(instance)

    @extend_schema(
        methods=["GET"],
        summary="The transaction's label",
        responses={200: LabelSerializer},
    )
    @extend_schema(
        methods=["PUT"],
        summary="Label a transaction (human)",
        description="Writes a `human` label with you as the labeler; the history "
        "records it. Needs `labeling.change_transactionlabel`.",
        request=LabelInputSerializer,
        responses={
            200: LabelSerializer,
            409: OpenApiResponse(
                ConflictSerializer,
                description="A label of higher source is in the way.",
            ),
        },
    )
    @extend_schema(
        methods=["DELETE"],
        summary="Clear a transaction's label",
        description="The history keeps the cleared label and who cleared it. "
        "404 when there is no label. Needs `labeling.delete_transactionlabel`.",
        responses={204: None},
    )
    @action(detail=True, methods=["get", "put", "delete"])
    def label(self, request, pk=None):
        txn = self.get_object()
        if request.method == "GET":
            label = _related(txn, "label")
            if label is None:
                return _not_found("This transaction has no label.")
            return Response(LabelSerializer(label).data)
        if request.method == "DELETE":
            if not clear_label(txn.pk, actor=request.user):
                return _not_found("This transaction has no label.")
            return Response(status=status.HTTP_204_NO_CONTENT)

        serializer = LabelInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            with transaction.atomic():
                set_label(
                    txn.pk,
                    serializer.validated_data["category"],
                    LabelSource.HUMAN,
                    actor=request.user,
                )
        except LabelPrecedenceError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        label = TransactionLabel.objects.get(txn_id=txn.pk)
        return Response(LabelSerializer(label).data)

    @extend_schema(
        summary="Label history of a transaction",
        description="Every insert, change and clear, newest first. Needs "
        "`labeling.view_labelhistory`.",
        responses={200: HistorySerializer(many=True)},
        filters=False,
    )
    @action(
        detail=True,
        methods=["get"],
        pagination_class=None,
        filterset_class=None,
    )
    def history(self, request, pk=None):
        txn = self.get_object()
        rows = LabelHistory.objects.filter(txn_id=txn.pk)
        return Response(HistorySerializer(rows, many=True).data)

    def filter_queryset(self, queryset):
        if self.action in ("label", "history"):
            return queryset
        return super().filter_queryset(queryset)


def _not_found(detail):
    return Response({"detail": detail}, status=status.HTTP_404_NOT_FOUND)


@extend_schema_view(
    list=extend_schema(summary="List labels of live transactions"),
    retrieve=extend_schema(summary="The label of a transaction, by its id"),
)
class LabelViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = TransactionLabel.objects.filter(txn__deleted_at__isnull=True)
    serializer_class = LabelSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-txn_id",)
    filterset_class = LabelFilter


@extend_schema_view(
    list=extend_schema(summary="List categories"),
    create=extend_schema(summary="Add a category (labeling.add_category)"),
    update=extend_schema(summary="Change a category (labeling.change_category)"),
    partial_update=extend_schema(
        summary="Change some fields of a category (labeling.change_category)"
    ),
)
class CategoryViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    queryset = Category.objects.select_related("parent")
    serializer_class = CategorySerializer
    permission_classes = [ModelPermissions]
    throttle_classes = [WriteThrottle]
    # A vocabulary of dozens: one page.
    pagination_class = None


class RuleRunFilter(django_filters.FilterSet):
    rule = django_filters.NumberFilter(field_name="rule_id")
    dry_run = django_filters.BooleanFilter()
    trigger = django_filters.ChoiceFilter(choices=RuleRun.Trigger.choices)
    status = django_filters.ChoiceFilter(choices=RuleRun.Status.choices)

    class Meta:
        model = RuleRun
        fields = []


@extend_schema_view(
    list=extend_schema(summary="List labeling rules with their figures"),
    retrieve=extend_schema(summary="A labeling rule with its figures"),
    create=extend_schema(summary="Add a rule (labeling.add_rule)"),
    update=extend_schema(summary="Change a rule (labeling.change_rule)"),
    partial_update=extend_schema(
        summary="Change some fields of a rule (labeling.change_rule)"
    ),
    destroy=extend_schema(
        summary="Delete a rule (labeling.delete_rule)",
        description="Its runs go with it; its labels stay, without a rule id. "
        "Disabling a rule is usually what you want.",
    ),
)
class RuleViewSet(viewsets.ModelViewSet):
    serializer_class = RuleSerializer
    permission_classes = [ModelPermissions]
    throttle_classes = [WriteThrottle]
    # Rules are written by hand: dozens, one page.
    pagination_class = None

    def get_queryset(self):
        return rule_runs.with_figures(Rule.objects.select_related("category"))

    def get_permissions(self):
        if self.action in ("dry_run", "apply"):
            return [requires("labeling.apply_rule")()]
        return super().get_permissions()

    def get_throttles(self):
        if self.action == "apply":
            return [JobThrottle()]
        return super().get_throttles()

    def perform_create(self, serializer):
        serializer.save(created_by=self.request.user)

    @extend_schema(
        summary="Dry-run a rule",
        description="Runs the rule over every live transaction without writing "
        "a label, and answers what it would change, with a sample of up to "
        f"{rule_runs.SAMPLE_SIZE} changes. The rule's figures (coverage, "
        "precision) are measured on the way. Works on disabled rules. Needs "
        "`labeling.apply_rule`.",
        request=None,
        responses={200: RuleRunSerializer},
    )
    @action(detail=True, methods=["post"], url_path="dry-run")
    def dry_run(self, request, pk=None):
        rule = self.get_object()
        (run,) = rule_runs.run_now(
            [rule], trigger=RuleRun.Trigger.USER, user=request.user, dry_run=True
        )
        return Response(RuleRunSerializer(run).data)

    @extend_schema(
        summary="Apply a rule",
        description="Queues a run of the rule over every live transaction. It "
        "writes rule labels except over human labels, and over import labels "
        "only when the rule allows it. Follow the run at the URL in "
        "`Location`. Needs `labeling.apply_rule`.",
        request=None,
        responses={
            202: RuleRunSerializer,
            409: OpenApiResponse(
                ConflictSerializer, description="The rule is disabled."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def apply(self, request, pk=None):
        rule = self.get_object()
        try:
            (run,) = start_rule_runs([rule], user=request.user)
        except rule_runs.RuleRunError as exc:
            return Response({"detail": str(exc)}, status=status.HTTP_409_CONFLICT)
        url = request.build_absolute_uri(reverse("rulerun-detail", args=[run.pk]))
        return Response(
            RuleRunSerializer(run).data,
            status=status.HTTP_202_ACCEPTED,
            headers={"Location": url},
        )


@extend_schema_view(
    list=extend_schema(summary="List rule runs, newest first"),
    retrieve=extend_schema(summary="A rule run"),
)
class RuleRunViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = RuleRun.objects.all()
    serializer_class = RuleRunSerializer
    permission_classes = [ModelPermissions]
    pagination_class = KeysetPagination
    keyset_ordering = ("-id",)
    filterset_class = RuleRunFilter


def register(router):
    router.register("transactions", TransactionViewSet, basename="transaction")
    router.register("labels", LabelViewSet, basename="label")
    router.register("categories", CategoryViewSet, basename="category")
    router.register("rules", RuleViewSet, basename="rule")
    router.register("rule-runs", RuleRunViewSet, basename="rulerun")
