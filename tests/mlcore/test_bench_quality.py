"""The quality benchmark runs end to end on a tiny household.

It runs as `make bench` runs it, in a process of its own, so that its
scratch databases are made next to the test database. No figure is checked
against a target; only that the model and the baseline both report.
"""

import re

import pytest

from tests.manage_process import run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

FRACTION = r"(\d\.\d{3})"


def test_reports_the_model_and_the_baseline_for_each_setting():
    result = run_manage(
        "bench_quality", *("--households", "1", "--months", "6", "--test-months", "2")
    )

    assert result.returncode == 0, result.stdout + result.stderr
    means = dict(re.findall(r"^(\w[\w ]*): mean of 1: (.*)$", result.stdout, re.M))
    assert set(means) == {
        "noisy",
        "cold",
        "replay",
        "fine",
        "sample",
        "sample replay",
    }
    for setting, figures in means.items():
        values = dict(re.findall(rf"(\w+) {FRACTION}", figures))
        assert 0 < float(values["accuracy"]) <= 1, setting
        assert 0 <= float(values["coverage_at_95"]) <= 1, setting
        # The baseline is trained once, on the rows before the cutoff.
        assert ("baseline_accuracy" in values) == ("replay" not in setting)
