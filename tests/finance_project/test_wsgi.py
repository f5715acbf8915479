"""The WSGI module loads the whole application before the first request."""

import json
import subprocess
import sys

from django.conf import settings

PROBE = """
import gc, json, sys
import finance_project.wsgi
print(json.dumps({
    "frozen": gc.get_freeze_count(),
    "views_loaded": "mlcore.api" in sys.modules,
    "callable": callable(finance_project.wsgi.application),
}))
"""


def test_importing_it_loads_the_views_and_freezes_them_out_of_gc_passes():
    done = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=settings.BASE_DIR,
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert done.returncode == 0, done.stderr
    probe = json.loads(done.stdout.strip().splitlines()[-1])
    assert probe["views_loaded"] and probe["callable"]
    # Django, the views and the model code: tens of thousands of objects.
    assert probe["frozen"] > 10_000
