"""Benchmark training and serving category models in a scratch database.

    manage.py bench_models --count 400000 --runs 3 --duration 20

Creates a scratch database next to the configured one, generates
transactions into it, builds their features and the dbt warehouse, then:

- times ``training.train(promote_if_better=True)`` ``--runs`` times (each
  run reads the training view, fits, measures, registers and compares with
  the champion) and prints each run and the median;
- starts gunicorn against the scratch database with ``DEBUG`` off, the
  way the Dockerfile runs it but with one worker per core, and measures
  ``POST /api/suggestions/`` for one transaction under load (p50, p90, p99,
  requests/s) from each number of ``--clients`` in turn, then for a batch
  of ``--batch-size`` transactions, one request at a time, ``--batch-runs``
  times; transactions of the newest days, then (batches only) of the whole
  window.

Closed-loop clients wait for each answer before sending the next request,
so beyond the number that keeps every worker busy, more clients add
queueing time to each request and no throughput. The default, 4 and 8, is
two clients per worker on two cores (each worker always has the next
request waiting), then four.

gunicorn and the scratch database are stopped and dropped at the end,
whatever happens (unless ``--keep``).

The load comes from ``mlcore.loadtest``: a closed-loop generator of our own
(one process per client, keep-alive ``http.client`` connections) rather
than locust, which would add gevent and a dozen pinned packages for the
same few figures, and whose own CPU use is higher; nor wrk, which a fresh
machine does not have. The generator, gunicorn and PostgreSQL share the
machine's cores, so the figures are for the whole stack on one box; the
generator's own CPU time is printed with them.
"""

import argparse
import os
import random
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from django.test.utils import override_settings
from rest_framework.authtoken.models import Token

from finance_project import env
from mlcore import dbt, loadtest, training
from mlcore.features import build

# The training target is stated for this many labels before the
# validation month; fewer makes the training figure a different benchmark.
TARGET_TRAINING_ROWS = 100_000
# Distinct transactions the clients and batches draw from, so answers do
# not come from one warm row.
ID_POOL = 20_000
# Suggestions are asked for new transactions: requests name transactions of
# the newest days of the data. Batches are measured a second time spread
# over the whole window, the costly case for the history the priors read.
RECENT_DAYS = 30
# The role the benchmark's API user has: the people who ask for suggestions.
BENCH_ROLE = "labeler"
SUGGESTIONS_PATH = "/api/suggestions/"
# gunicorn must answer /healthz within this many seconds of starting.
STARTUP_TIMEOUT_SECONDS = 60
STOP_TIMEOUT_SECONDS = 30


class Command(BaseCommand):
    help = "Time model training and suggestion serving on generated data."

    def add_arguments(self, parser):
        data = parser.add_argument_group("data")
        # 400,000 over 12 months at 0.3 labeled gives about 110,000 labels
        # in the 11 months before the validation month.
        data.add_argument("--count", type=int, default=400_000)
        data.add_argument("--months", type=int, default=12)
        data.add_argument("--label-fraction", type=float, default=0.3)
        data.add_argument("--seed", type=int, default=11)

        runs = parser.add_argument_group("runs")
        runs.add_argument("--runs", type=int, default=3, help="training runs")
        runs.add_argument(
            "--clients",
            type=_counts,
            default=[4, 8],
            help="closed-loop clients; a comma-separated list measures each",
        )
        runs.add_argument(
            "--duration", type=float, default=20.0, help="seconds of measured load"
        )
        runs.add_argument(
            "--warmup", type=float, default=5.0, help="seconds of load first"
        )
        runs.add_argument("--batch-size", type=int, default=1_000)
        runs.add_argument("--batch-runs", type=int, default=5)

        server = parser.add_argument_group("gunicorn")
        server.add_argument(
            "--workers", type=int, default=os.cpu_count(), help="one per core"
        )
        server.add_argument(
            "--worker-class",
            choices=["sync", "gthread"],
            default="sync",
            help="sync, as the Dockerfile runs it",
        )
        server.add_argument("--threads", type=int, default=1)
        parser.add_argument(
            "--keep", action="store_true", help="keep the scratch database"
        )

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        original = connection.settings_dict["NAME"]
        scratch = f"{original}_bench_models"
        connection.settings_dict["TEST"]["NAME"] = scratch
        connection.creation.create_test_db(
            verbosity=0, autoclobber=True, serialize=False
        )
        # Models of the scratch database must not land next to, or replace,
        # those of the configured one: their file names repeat run ids.
        model_dir = tempfile.mkdtemp(prefix="bench-models-")
        try:
            with override_settings(MODEL_STORAGE_DIR=Path(model_dir)):
                self._bench(options, model_dir)
        finally:
            if options["keep"]:
                self.stdout.write(
                    f"kept scratch database {scratch} and models in {model_dir}"
                )
            else:
                connection.creation.destroy_test_db(original, verbosity=0)
                shutil.rmtree(model_dir, ignore_errors=True)
                self.stdout.write(f"scratch database {scratch} dropped")

    def _bench(self, options, model_dir):
        self._prepare_data(options)
        self._bench_training(options["runs"])
        self._bench_serving(options, model_dir)

    def _prepare_data(self, options):
        started = time.monotonic()
        call_command(
            "generate_transactions",
            count=options["count"],
            months=options["months"],
            seed=options["seed"],
            label_fraction=options["label_fraction"],
            stdout=open(os.devnull, "w"),  # noqa: SIM115
        )
        built = build.build_in_chunks(workers=build.DEFAULT_WORKERS)
        outcome = dbt.run_dbt(on_line=lambda line: None)
        if not outcome.success:
            raise CommandError(f"dbt failed: {outcome.error}")
        # A live database has planner statistics (autovacuum keeps them);
        # without them the serving queries pick plans made for empty tables.
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
        self.stdout.write(
            f"Generated {options['count']:,} transactions over "
            f"{options['months']} months, built {built.processed:,} feature "
            f"rows and the warehouse in {time.monotonic() - started:.1f}s"
        )

    def _bench_training(self, runs):
        seconds, rows = [], None
        for number in range(1, runs + 1):
            started = time.monotonic()
            run = training.train(promote_if_better=True, log=self._log)
            elapsed = time.monotonic() - started
            seconds.append(elapsed)
            rows = run.row_counts["train"]
            self.stdout.write(
                f"training run {number}: {elapsed:.2f}s (fit "
                f"{run.metrics['fit_seconds']:.2f}s), {rows:,} labels, "
                f"macro-F1 {run.metrics['macro_f1']:.3f}"
            )

        self.stdout.write(
            self.style.SUCCESS(
                f"training {rows:,} labels: median {statistics.median(seconds):.2f}s "
                f"(runs: {_figures(seconds, '.2f')})"
            )
        )
        if rows < TARGET_TRAINING_ROWS:
            self.stdout.write(
                self.style.WARNING(
                    f"fewer than {TARGET_TRAINING_ROWS:,} labels before the "
                    "validation month; raise --count for the target's figure"
                )
            )

    def _bench_serving(self, options, model_dir):
        headers = {"Authorization": f"Token {_api_token()}"}
        recent = _sample_ids(ID_POOL, options["seed"], RECENT_DAYS)
        spread = _sample_ids(ID_POOL, options["seed"])
        singles = [_body([txn_id]) for txn_id in recent]

        load = ", ".join(f"{figure:.2f}" for figure in os.getloadavg())
        self.stdout.write(f"{os.cpu_count()} cores; load average {load}")
        with self._gunicorn(options, model_dir) as url:
            self._check(url, singles[0], headers)
            for clients in options["clients"]:
                self._bench_single(url, singles, headers, clients, options)
            for ids, where in (
                (recent, f"newest {RECENT_DAYS} days"),
                (spread, f"all {options['months']} months"),
            ):
                self._bench_batch(url, ids, where, headers, options)

    def _check(self, url, body, headers):
        """Fail early, with the server's answer, if the endpoint does not work."""
        status, content, _ = loadtest.post(url, body, headers)
        if status != 200:
            raise CommandError(
                f"POST {SUGGESTIONS_PATH} answered {status}: {content[:500]!r}"
            )

    def _bench_single(self, url, bodies, headers, clients, options):
        result = loadtest.run(
            url,
            bodies,
            headers,
            clients=clients,
            duration=options["duration"],
            warmup=options["warmup"],
        )
        if result.errors:
            raise CommandError(
                f"{result.errors} of the single-id requests failed, e.g. "
                f"{result.error_samples}"
            )
        server = f"{options['workers']} gunicorn {options['worker_class']} workers"
        if options["worker_class"] == "gthread":
            server += f" x {options['threads']} threads"
        cpu = result.client_cpu_seconds / result.duration
        self.stdout.write(
            self.style.SUCCESS(
                f"suggest 1 id: p50 {result.percentile(0.5) * 1000:.1f} ms, "
                f"p90 {result.percentile(0.9) * 1000:.1f} ms, "
                f"p99 {result.percentile(0.99) * 1000:.1f} ms, "
                f"{result.rate:,.0f} req/s ({server}, {result.clients} clients, "
                f"{result.duration:g} s, {result.requests:,} requests; the "
                f"load generator used {cpu:.2f} of {os.cpu_count()} cores)"
            )
        )

    def _bench_batch(self, url, ids, where, headers, options):
        size = min(options["batch_size"], len(ids))
        workers = options["workers"]
        bodies = [
            _body(random.Random(options["seed"] + n).sample(ids, size))
            for n in range(workers + options["batch_runs"])
        ]
        # The first large request of a worker is slower (bigger buffers,
        # more merchants in its caches), so each worker gets one first that
        # is not counted: sent at once, they land on different workers, as
        # a busy sync worker accepts no other connection.
        warmups, bodies = bodies[:workers], bodies[workers:]
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(lambda body: loadtest.post(url, body, headers), warmups))

        seconds = []
        name = f"suggest {size:,} ids ({where})"
        for number, body in enumerate(bodies, 1):
            status, content, elapsed = loadtest.post(url, body, headers)
            if status != 200:
                raise CommandError(
                    f"batch request {number} answered {status}: {content[:500]!r}"
                )
            seconds.append(elapsed * 1000)
            self.stdout.write(f"{name} run {number}: {elapsed * 1000:.0f} ms")
        self.stdout.write(
            self.style.SUCCESS(
                f"{name}: median {statistics.median(seconds):.0f} ms "
                f"(runs: {_figures(seconds, '.0f')})"
            )
        )

    @contextmanager
    def _gunicorn(self, options, model_dir):
        """Run gunicorn on the scratch database; yield the suggestions URL."""
        child_env = {
            **os.environ,
            "DATABASE_URL": env.database_url(connection.settings_dict),
            "MODEL_STORAGE_DIR": model_dir,
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(64),
            "ALLOWED_HOSTS": "127.0.0.1",
            # Plain HTTP on loopback: no redirect to HTTPS.
            "SECURE_SSL_REDIRECT": "0",
            # One user sends hundreds of requests a second here, which is
            # what the per-user limit exists to stop.
            "API_THROTTLE_WRITES": "1000000/s",
        }
        command = [
            sys.executable,
            "-m",
            "gunicorn",
            "finance_project.wsgi:application",
            # Port 0: the kernel picks a free port, which gunicorn logs.
            "--bind",
            "127.0.0.1:0",
            "--workers",
            str(options["workers"]),
            "--worker-class",
            options["worker_class"],
            "--threads",
            str(options["threads"]),
            "--keep-alive",
            "30",
            "--access-logfile",
            "-",
            # Its default path is shared by every gunicorn of the user.
            "--no-control-socket",
        ]
        log_path = Path(model_dir) / "gunicorn.log"
        with open(log_path, "wb") as log:
            server = subprocess.Popen(
                command,
                cwd=settings.BASE_DIR,
                env=child_env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            port = _wait_until_healthy(server, log_path)
            self.stdout.write(f"gunicorn pid {server.pid} serving on 127.0.0.1:{port}")
            yield f"http://127.0.0.1:{port}{SUGGESTIONS_PATH}"
        finally:
            _stop(server)
            self.stdout.write(f"gunicorn pid {server.pid} stopped")

    def _log(self, line):
        if self.verbosity > 1:
            self.stdout.write(line)


def _api_token():
    """A token of a new user with the labeler role."""
    user = get_user_model().objects.create_user("bench", password=None)
    user.groups.add(Group.objects.get(name=BENCH_ROLE))
    return Token.objects.create(user=user).key


def _sample_ids(count, seed, days=None):
    """Up to ``count`` live transaction ids, the same ones for the same seed:
    of the last ``days`` of the data, or of all of it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM transactions WHERE deleted_at IS NULL"
            " AND (%s::int IS NULL OR posted_on > (SELECT max(posted_on)"
            " FROM transactions) - %s::int)"
            " ORDER BY md5(id::text || %s) LIMIT %s",
            [days, days, str(seed), count],
        )
        return [row[0] for row in cursor.fetchall()]


def _body(ids):
    return ('{"transaction_ids": [' + ", ".join(map(str, ids)) + "]}").encode()


def _counts(value):
    """``--clients``: one count or a comma-separated list of them."""
    try:
        counts = [int(part) for part in value.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(
            f"expected positive whole numbers separated by commas, got {value!r}"
        )
    return counts


def _figures(values, spec):
    return ", ".join(format(value, spec) for value in values)


def _wait_until_healthy(server, log_path):
    """Wait for gunicorn to listen and /healthz to answer; return the port."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    port = None
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise CommandError(
                f"gunicorn exited with status {server.returncode}:\n" + _tail(log_path)
            )
        if port is None:
            listening = re.search(
                rf"Listening at: http://127\.0\.0\.1:(\d+) \({server.pid}\)",
                Path(log_path).read_text(errors="replace"),
            )
            port = listening and int(listening[1])
        if port is not None:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/healthz", timeout=2
                ) as response:
                    if response.status == 200:
                        return port
            except (urllib.error.URLError, OSError):
                pass
        time.sleep(0.2)
    raise CommandError(
        f"gunicorn did not answer /healthz in {STARTUP_TIMEOUT_SECONDS}s:\n"
        + _tail(log_path)
    )


def _stop(server):
    """Stop gunicorn gracefully, or kill its master and workers."""
    if server.poll() is not None:
        return
    server.send_signal(signal.SIGTERM)
    try:
        server.wait(STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        # The master is not reaped yet, so the group (its own session, see
        # start_new_session) is still gunicorn's master and workers.
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def _tail(path, lines=30):
    return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
