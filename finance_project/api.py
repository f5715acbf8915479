"""What the REST API under ``/api/`` shares: permissions, throttles,
pagination, the error handler, the OpenAPI schema class and the URLs.

The resources themselves live next to their models (``labeling.api``,
``mlcore.api``); ``urlpatterns()`` imports them lazily because they import
the classes defined here.
"""

import base64
import binascii
import json
import logging

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Q
from django.http import Http404
from django.urls import include, path
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, permissions, serializers, status, throttling
from rest_framework.pagination import BasePagination
from rest_framework.permissions import AllowAny
from rest_framework.response import Response
from rest_framework.routers import DefaultRouter
from rest_framework.settings import api_settings
from rest_framework.utils.urls import replace_query_param
from rest_framework.views import exception_handler

logger = logging.getLogger(__name__)

GENERIC_ERROR = "Internal server error. The failure was logged."


# -- Permissions -------------------------------------------------------------


class ModelPermissions(permissions.DjangoModelPermissions):
    """Django model permissions, with reading guarded by ``view_<model>``.

    DRF's class lets any authenticated user read; the roles (see
    ``labeling/migrations/0005_roles.py``) are built on view permissions, so
    reads need them too.
    """

    perms_map = {
        **permissions.DjangoModelPermissions.perms_map,
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": ["%(app_label)s.view_%(model_name)s"],
    }


class HasPermissions(permissions.BasePermission):
    """Authenticated, and holding every permission in ``required``."""

    required: tuple[str, ...] = ()

    def has_permission(self, request, view):
        user = request.user
        return bool(user and user.is_authenticated and user.has_perms(self.required))


def requires(*perms):
    """A permission class that demands the given Django permissions."""
    return type("Requires", (HasPermissions,), {"required": perms})


# -- Throttles ---------------------------------------------------------------


class _ScopeThrottle(throttling.UserRateThrottle):
    def get_rate(self):
        # DRF reads the rates once, at import; reading them per request lets
        # settings overrides (tests, a reload) take effect.
        return api_settings.DEFAULT_THROTTLE_RATES.get(self.scope)


class WriteThrottle(_ScopeThrottle):
    """Per-user limit on requests that change data (rate ``writes``)."""

    scope = "writes"

    def allow_request(self, request, view):
        if request.method in permissions.SAFE_METHODS:
            return True
        return super().allow_request(request, view)


class JobThrottle(_ScopeThrottle):
    """Per-user limit on starting background jobs (rate ``jobs``)."""

    scope = "jobs"


# -- Pagination --------------------------------------------------------------


class KeysetPagination(BasePagination):
    """Forward paging on a unique key of one or two columns.

    The cursor holds the last row's key, so the next page is a range scan of
    an index whatever the depth: paging through a million rows costs the
    same per page at the end as at the start. ``ordering`` lists the key's
    fields, all descending or all ascending, the last one unique (the id).
    """

    ordering: tuple[str, ...] = ("-id",)
    page_size = 50
    max_page_size = 500
    cursor_query_param = "cursor"
    page_size_query_param = "page_size"

    def paginate_queryset(self, queryset, request, view=None):
        self.request = request
        ordering = getattr(view, "keyset_ordering", self.ordering)
        self.fields = [field.lstrip("-") for field in ordering]
        self.descending = ordering[0].startswith("-")
        size = self._page_size(request)
        queryset = queryset.order_by(*ordering)
        cursor = self._decode(request.query_params.get(self.cursor_query_param))
        if cursor is not None:
            try:
                queryset = queryset.filter(self._after(cursor))
            except (ValueError, TypeError, DjangoValidationError):
                # A hand-made cursor whose values do not fit the columns.
                raise exceptions.ValidationError(
                    {self.cursor_query_param: ["Invalid cursor."]}
                ) from None
        rows = list(queryset[: size + 1])
        self.has_next = len(rows) > size
        self.page = rows[:size]
        return self.page

    def get_paginated_response(self, data):
        return Response({"next": self.get_next_link(), "results": data})

    def get_next_link(self):
        if not self.has_next:
            return None
        last = self.page[-1]
        key = [_plain(_value(last, field)) for field in self.fields]
        token = base64.urlsafe_b64encode(json.dumps(key).encode()).decode()
        url = self.request.build_absolute_uri()
        return replace_query_param(url, self.cursor_query_param, token)

    def get_paginated_response_schema(self, schema):
        return {
            "type": "object",
            "required": ["next", "results"],
            "properties": {
                "next": {
                    "type": "string",
                    "format": "uri",
                    "nullable": True,
                    "description": "The next page, or null on the last one.",
                },
                "results": schema,
            },
        }

    def get_schema_operation_parameters(self, view):
        return [
            {
                "name": self.cursor_query_param,
                "in": "query",
                "required": False,
                "description": "Opaque position from a previous page's `next`.",
                "schema": {"type": "string"},
            },
            {
                "name": self.page_size_query_param,
                "in": "query",
                "required": False,
                "description": f"Rows per page, 1 to {self.max_page_size} "
                f"(default {self.page_size}).",
                "schema": {
                    "type": "integer",
                    "minimum": 1,
                    "maximum": self.max_page_size,
                },
            },
        ]

    def _page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        try:
            size = int(raw)
        except ValueError:
            size = 0
        if not 1 <= size <= self.max_page_size:
            raise exceptions.ValidationError(
                {
                    self.page_size_query_param: [
                        f"A whole number from 1 to {self.max_page_size}."
                    ]
                }
            )
        return size

    def _decode(self, token):
        if token is None:
            return None
        try:
            key = json.loads(base64.urlsafe_b64decode(token.encode()))
        except (ValueError, binascii.Error, UnicodeError):
            key = None
        if not isinstance(key, list) or len(key) != len(self.fields):
            raise exceptions.ValidationError(
                {self.cursor_query_param: ["Invalid cursor."]}
            )
        return key

    def _after(self, key):
        op = "lt" if self.descending else "gt"
        first, values = self.fields[0], key
        if len(self.fields) == 1:
            return Q(**{f"{first}__{op}": values[0]})
        # The redundant bound on the first column gives the planner an index
        # range; the OR only sorts out ties on it.
        bound = Q(**{f"{first}__{op}e": values[0]})
        return bound & (
            Q(**{f"{first}__{op}": values[0]})
            | Q(**{first: values[0], f"{self.fields[1]}__{op}": values[1]})
        )


def _value(row, field):
    for part in field.split("__"):
        row = getattr(row, part)
    return row


def _plain(value):
    if isinstance(value, int | str) or value is None:
        return value
    return value.isoformat()


# -- Errors ------------------------------------------------------------------


class ErrorSerializer(serializers.Serializer):
    """The body of every error that is not a validation error."""

    detail = serializers.CharField()


class ConflictSerializer(ErrorSerializer):
    """A 409: what is in the way, and where it is, when it has a URL."""

    url = serializers.URLField(required=False)


def handle_exception(exc, context):
    """DRF's handler, plus a JSON 500 without internals for anything else.

    Bad input never gets here as an unexpected error: the serializers,
    filters and views turn it into 400s and 404s first.
    """
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    response = exception_handler(exc, context)
    if response is not None:
        return response
    view = context.get("view")
    # The handler runs outside the ``except`` that caught ``exc``: pass it on.
    logger.error(
        "Unexpected error in %s",
        type(view).__name__ if view else "the API",
        exc_info=exc,
    )
    return Response(
        {"detail": GENERIC_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR
    )


# -- Schema ------------------------------------------------------------------


class ApiSchema(AutoSchema):
    """AutoSchema that documents the error responses every operation shares.

    401 and 403 everywhere, 404 on paths with an id, 400 wherever input is
    read (bodies, filters, paging), 429 on throttled writes; anything more
    specific (409) comes from ``extend_schema`` on the view.
    """

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        if direction != "response" or not self._is_api_operation():
            return responses
        codes = {
            "401": "Not authenticated (no or a bad session or token).",
            "403": "Authenticated, but without the permission this needs.",
        }
        if "{" in self.path:
            codes["404"] = "No such object (or it was deleted)."
        if self.method in ("POST", "PUT", "PATCH") or self._reads_query():
            codes["400"] = "Invalid input; the body names each bad field."
        if self.method not in permissions.SAFE_METHODS:
            codes["429"] = "Too many requests; retry after the given seconds."
        for code, description in codes.items():
            if code in responses:
                continue
            body = ErrorSerializer if code != "400" else _VALIDATION_ERROR
            responses[code] = self._get_response_for_code(body, code)
            responses[code]["description"] = description
        return responses

    def _is_api_operation(self):
        # Only the schema and docs views are open to everyone.
        return not any(
            isinstance(p, permissions.AllowAny) for p in self.view.get_permissions()
        )

    def _reads_query(self):
        return self.method == "GET" and (
            self._is_list_view() or bool(getattr(self.view, "filterset_class", None))
        )


# A validation error: field name -> messages (or nested errors by item).
_VALIDATION_ERROR = {
    "type": "object",
    "description": "Field names (or `non_field_errors`, `detail`) and messages.",
    "additionalProperties": {},
}


# -- URLs --------------------------------------------------------------------


def urlpatterns():
    """The API's URLs, for ``include`` under ``api/``."""
    # Imported here: these modules import this one, and drf-spectacular's
    # views need the schema class above to be importable already.
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    from labeling import api as labeling_api
    from mlcore import api as mlcore_api

    # The schema and its docs are public: they describe, they do not expose.
    public = {"authentication_classes": [], "permission_classes": [AllowAny]}

    router = DefaultRouter()
    labeling_api.register(router)
    mlcore_api.register(router)
    return [
        path("schema/", SpectacularAPIView.as_view(**public), name="api-schema"),
        path(
            "docs/",
            SpectacularSwaggerView.as_view(url_name="api-schema", **public),
            name="api-docs",
        ),
        path("", include(router.urls)),
    ]
