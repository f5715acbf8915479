"""The Celery application; workers start it with ``celery -A finance_project``."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finance_project.settings")

app = Celery("finance_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
