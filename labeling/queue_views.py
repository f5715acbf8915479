"""The keyboard labeling queue in the admin: its page and JSON endpoints.

``finance_project/urls.py`` mounts these under ``admin/labeling/queue/``,
wrapped in ``admin.site.admin_view`` (login, staff, CSRF). Every view also
needs ``labeling.change_transactionlabel``. The endpoints answer with the
queue's state (the transaction to show, its choices, what is left, the
user's labels in the last hour); errors are JSON ``{"error": message}``
with a 4xx status. The queue's own state lives in the session
(``labeling.queue``).
"""

import json
import logging

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.http import JsonResponse
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from labeling import queue
from labeling.models import Category
from mlcore import registry, serving
from mlcore.models import Alias, Suggestion

logger = logging.getLogger(__name__)

SESSION_KEY = "labeling_queue"
PERMISSION = "labeling.change_transactionlabel"
_MAX_ID = 2**63 - 1


class BadRequest(queue.QueueError):
    pass


def _state(request):
    state = request.session.get(SESSION_KEY) or queue.new_state()
    for key, value in queue.new_state().items():
        state.setdefault(key, value)
    return state


def _save(request, state):
    request.session[SESSION_KEY] = state


def _payload(request, state, **extra):
    txn = queue.current(state)
    if state.get("left") is None or state.get("since_count", 0) >= queue.BATCH_SIZE:
        state["left"] = queue.count_left()
        state["since_count"] = 0
    if "top_categories" not in state:
        state["top_categories"] = queue.top_categories()
    _save(request, state)
    # The model's categories come first, topped up with the most used ones.
    suggestion = _suggestion(txn) if txn else None
    suggestions = suggestion["top_k"] if suggestion else []
    ranked = [s["category"] for s in suggestions]
    others = [name for name in state["top_categories"] if name not in ranked]
    return {
        "transaction": queue.describe(txn) if txn else None,
        "suggestion": suggestion,
        "suggestions": suggestions,
        "choices": (ranked + others)[: queue.CHOICES],
        "left": state["left"],
        "labels_last_hour": queue.labels_last_hour(request.user),
        "can_undo": bool(state["undo"]),
        **extra,
    }


def _suggestion(txn):
    """The latest stored suggestion for ``txn``, asked for now if there is
    none; ``None`` while no model is registered."""
    stored = Suggestion.objects.filter(txn_id=txn.pk).order_by("-id").first()
    if stored is None:
        # Checked first: suggesting builds missing features before it finds
        # out that there is no model to use them.
        if Alias.CHAMPION not in registry.serving_versions():
            return None
        try:
            answer = serving.suggest_transactions([txn.pk])[0]
        except serving.NoModel:
            return None
        except registry.ArtifactError:
            logger.exception("queue: no suggestion for %s", txn.pk)
            return None
        return {
            "category": answer.category,
            "confidence": answer.confidence,
            "top_k": answer.top_k,
        }
    return {
        "category": stored.label,
        "confidence": stored.confidence,
        "top_k": stored.top_k,
    }


def _json_body(request):
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest("The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise BadRequest("The request body must be a JSON object.")
    return body


def _txn_id(value):
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise BadRequest("txn_id must be a transaction id (a positive integer).")
    if not 0 < value <= _MAX_ID:
        raise queue.QueueError(f"Transaction {value} does not exist.", status=404)
    return value


def _category(value):
    if not isinstance(value, str) or not value.strip():
        raise BadRequest("category must be a category name.")
    return value.strip()


def queue_endpoint(view):
    """Permission check, JSON errors, and the session state for a view."""

    def wrapped(request):
        if not request.user.has_perm(PERMISSION):
            return JsonResponse({"error": "You may not change labels."}, status=403)
        state = _state(request)
        try:
            return JsonResponse(view(request, state))
        except queue.QueueError as exc:
            _save(request, state)
            return JsonResponse({"error": exc.message}, status=exc.status)

    wrapped.__name__ = view.__name__
    wrapped.__doc__ = view.__doc__
    return wrapped


def queue_page(request):
    """The page; opening it recounts what is left."""
    if not request.user.has_perm(PERMISSION):
        raise PermissionDenied
    state = _state(request)
    state["left"] = None
    state.pop("top_categories", None)
    _save(request, state)
    categories = list(
        Category.objects.filter(is_active=True).values_list("name", flat=True)
    )
    return TemplateResponse(
        request,
        "admin/labeling/queue.html",
        {
            **admin.site.each_context(request),
            "title": "Labeling queue",
            "categories": categories,
        },
    )


@require_GET
@queue_endpoint
def next_view(request, state):
    return _payload(request, state)


@require_POST
@queue_endpoint
def label_view(request, state):
    body = _json_body(request)
    txn_id = _txn_id(body.get("txn_id"))
    queue.label(state, txn_id, _category(body.get("category")), request.user)
    return _payload(request, state, saved={"txn_id": txn_id})


@require_POST
@queue_endpoint
def skip_view(request, state):
    txn_id = _txn_id(_json_body(request).get("txn_id"))
    queue.skip(state, txn_id)
    return _payload(request, state)


@require_POST
@queue_endpoint
def undo_view(request, state):
    _json_body(request)
    txn_id = queue.undo(state, request.user)
    return _payload(request, state, undone={"txn_id": txn_id})


@require_GET
@queue_endpoint
def merchant_view(request, state):
    """How many others a merchant-wide label would touch, for the confirmation."""
    txn_id = _txn_id(request.GET.get("txn_id"))
    merchant, others = queue.same_merchant_unlabeled(txn_id)
    return {"merchant": merchant, "others": len(others)}


@require_POST
@queue_endpoint
def label_merchant_view(request, state):
    body = _json_body(request)
    txn_id = _txn_id(body.get("txn_id"))
    done = queue.label_merchant(
        state, txn_id, _category(body.get("category")), request.user
    )
    return _payload(request, state, saved={"txn_id": txn_id, **done})
