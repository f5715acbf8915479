"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import include, path

from finance_project import api, views
from labeling import queue_views

admin.site.site_header = "Finance categorizer"
admin.site.site_title = "Finance categorizer"
admin.site.index_title = "Labeling, features and jobs"


def queue_path(route, view, name):
    """A labeling-queue URL behind the admin's login, staff check and CSRF."""
    return path(f"admin/labeling/queue/{route}", admin.site.admin_view(view), name=name)


urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    # Before the admin's include, whose catch-all would otherwise take these.
    queue_path("", queue_views.queue_page, "labeling_queue"),
    queue_path("next", queue_views.next_view, "labeling_queue_next"),
    queue_path("label", queue_views.label_view, "labeling_queue_label"),
    queue_path("skip", queue_views.skip_view, "labeling_queue_skip"),
    queue_path("undo", queue_views.undo_view, "labeling_queue_undo"),
    queue_path("merchant", queue_views.merchant_view, "labeling_queue_merchant"),
    queue_path(
        "label-merchant",
        queue_views.label_merchant_view,
        "labeling_queue_label_merchant",
    ),
    path("admin/", admin.site.urls),
    path("api/", include(api.urlpatterns())),
]
