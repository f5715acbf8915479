"""Top-level URL configuration."""

from django.contrib import admin
from django.urls import path

from finance_project import views

urlpatterns = [
    path("", views.home, name="home"),
    path("healthz", views.healthz, name="healthz"),
    path("admin/", admin.site.urls),
]
