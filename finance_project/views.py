"""Project-level views: the landing redirect and the health check."""

import logging

from django.db import DatabaseError, connection
from django.http import JsonResponse
from django.shortcuts import redirect

logger = logging.getLogger(__name__)


def home(request):
    return redirect("admin:index")


def healthz(request):
    """Answer 200 when the database answers, 503 otherwise (for health checks)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        logger.warning("Health check: database unavailable", exc_info=True)
        return JsonResponse({"status": "database unavailable"}, status=503)
    return JsonResponse({"status": "ok"})
