"""The model benchmark runs end to end on tiny sizes and cleans up after itself.

It runs as `make bench` runs it, in a process of its own: a scratch
database next to the test database, a real gunicorn and real HTTP. No
figure is checked against a target; only that each one is there and sane.
"""

import os
import re
import socket

import pytest
from django.db import connection

from tests.manage_process import run_manage

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

NUMBER = r"([\d,]+(?:\.\d+)?)"


def number(text):
    return float(text.replace(",", ""))


@pytest.fixture(scope="module")
def bench_output(django_db_setup):
    # After django_db_setup the connection names the test database; the
    # scratch one is made next to it.
    result = run_manage(
        "bench_models",
        *("--count", "3000", "--months", "3", "--label-fraction", "0.5"),
        *("--runs", "1", "--clients", "2", "--duration", "2", "--warmup", "1"),
        *("--batch-size", "100", "--batch-runs", "2"),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def test_reports_training_time_and_rows(bench_output):
    match = re.search(
        rf"training {NUMBER} labels: median {NUMBER}s \(runs: {NUMBER}\)",
        bench_output,
    )

    assert match, bench_output
    rows, median, run = (number(group) for group in match.groups())
    assert rows > 0
    assert median == run > 0


def test_reports_single_id_latency_percentiles_and_rate(bench_output):
    match = re.search(
        rf"suggest 1 id: p50 {NUMBER} ms, p90 {NUMBER} ms, p99 {NUMBER} ms, "
        rf"{NUMBER} req/s \(2 gunicorn \w+ workers.*, 2 clients, 2 s",
        bench_output,
    )

    assert match, bench_output
    p50, p90, p99, rate = (number(group) for group in match.groups())
    assert 0 < p50 <= p90 <= p99
    assert rate > 0


@pytest.mark.parametrize("where", ["newest 30 days", "all 3 months"])
def test_reports_each_batch_run_and_their_median(bench_output, where):
    name = rf"suggest 100 ids \({where}\)"
    runs = re.findall(rf"{name} run \d: {NUMBER} ms", bench_output)
    match = re.search(rf"{name}: median {NUMBER} ms", bench_output)

    assert len(runs) == 2, bench_output
    assert match, bench_output
    assert min(map(number, runs)) <= number(match[1]) <= max(map(number, runs))


def test_stops_gunicorn(bench_output):
    pid, port = re.search(
        r"gunicorn pid (\d+) serving on 127\.0\.0\.1:(\d+)", bench_output
    ).groups()

    assert f"gunicorn pid {pid} stopped" in bench_output
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid), 0)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()


def test_drops_the_scratch_database(bench_output):
    scratch = re.search(r"scratch database (\S+) dropped", bench_output)[1]

    assert scratch == f"{connection.settings_dict['NAME']}_bench_models"
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_database WHERE datname = %s", [scratch])
        assert cursor.fetchone() is None
