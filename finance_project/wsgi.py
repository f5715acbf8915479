"""WSGI entry point, served by gunicorn in production."""

import gc
import os
from importlib import import_module

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "finance_project.settings")

application = get_wsgi_application()

# Modules, classes and functions live as long as the process, yet every
# full pass of the garbage collector walks them all: a pass that lands in a
# request adds tens of milliseconds to it. Loading the URLconf (and with it
# every view and the model code) now and freezing what exists leaves the
# collector only what requests create.
import_module(settings.ROOT_URLCONF)
gc.freeze()
