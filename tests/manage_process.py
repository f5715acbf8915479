"""Run a management command as a user would: in a process of its own."""

import os
import subprocess
import sys

from django.conf import settings
from django.db import connection

from finance_project import env


def run_manage(*args, timeout=600):
    """``manage.py *args`` against the test database, in a new process.

    Commands that make scratch databases make them next to the test
    database, where the test can look for them and they are dropped with it.
    """
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=settings.BASE_DIR,
        env={**os.environ, "DATABASE_URL": env.database_url(connection.settings_dict)},
        capture_output=True,
        text=True,
        timeout=timeout,
    )
