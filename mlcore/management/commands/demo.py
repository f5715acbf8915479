"""Prepare a demo database and serve the admin with a Celery worker.

Runs migrations, generates demo data when the database has none, builds
features and the warehouse, trains a model (promoted when it beats the
champion) and stores its suggestions for the newest unlabeled
transactions, creates (or resets) the ``admin`` login with a fresh generated
password, then runs the web server and a worker in the foreground until
Ctrl-C.
"""

import secrets
import signal
import subprocess
import sys
import time

from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand

from labeling.models import Transaction
from mlcore import serving

ADMIN_USERNAME = "admin"

# Unlabeled transactions that get a stored suggestion when the demo starts.
SUGGESTED = 5_000

# Seconds a child gets to shut down cleanly after Ctrl-C before it is killed.
SHUTDOWN_GRACE = 15


class Command(BaseCommand):
    help = "Set up demo data and run the web app and a Celery worker."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=200_000)
        parser.add_argument("--months", type=int, default=12)
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument("--label-fraction", type=float, default=0.3)
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument(
            "--no-serve",
            action="store_true",
            help="Prepare the data and login, then exit instead of serving.",
        )

    def handle(self, *args, **options):
        call_command("migrate", interactive=False, verbosity=0)
        self._ensure_data(options)
        call_command("build_features", all=True, stdout=self.stdout)
        call_command("run_dbt", stdout=self.stdout)
        call_command("train_model", promote_if_better=True, stdout=self.stdout)
        self._suggest()
        password = self._reset_admin_password()

        url = f"http://{options['host']}:{options['port']}/admin/"
        self.stdout.write(
            self.style.SUCCESS(
                f"\nAdmin: {url}\nLogin: {ADMIN_USERNAME} / {password}\n"
            )
        )
        if options["no_serve"]:
            return
        self._serve(options["host"], options["port"])

    def _ensure_data(self, options):
        if Transaction.objects.exists():
            self.stdout.write("Demo data already present; keeping it.")
            return
        call_command(
            "generate_transactions",
            count=options["count"],
            months=options["months"],
            seed=options["seed"],
            label_fraction=options["label_fraction"],
            stdout=self.stdout,
        )

    def _suggest(self):
        """Suggestions for the newest unlabeled transactions, for the admin."""
        txn_ids = list(
            Transaction.objects.filter(label__isnull=True, suggestions__isnull=True)
            .order_by("-posted_on", "-id")
            .values_list("pk", flat=True)[:SUGGESTED]
        )
        for start in range(0, len(txn_ids), 1_000):
            serving.suggest_transactions(txn_ids[start : start + 1_000])
        self.stdout.write(f"Stored suggestions for {len(txn_ids):,} transactions.")

    def _reset_admin_password(self):
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(
            username=ADMIN_USERNAME,
            defaults={"is_staff": True, "is_superuser": True},
        )
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return password

    def _serve(self, host, port):
        manage = [sys.executable, "manage.py"]
        children = [
            subprocess.Popen([*manage, "runserver", f"{host}:{port}", "--noreload"]),
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "celery",
                    "-A",
                    "finance_project",
                    "worker",
                    "--loglevel=INFO",
                    "--concurrency=2",
                ]
            ),
        ]
        self.stdout.write("Web app and worker running; press Ctrl-C to stop.")

        # Ctrl-C reaches the children through the terminal's process group;
        # here it only ends the wait, so the children can be reaped in order.
        stopping = []
        signal.signal(signal.SIGINT, lambda *_: stopping.append(True))
        signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.5)
        self._stop(children)

    def _stop(self, children):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + SHUTDOWN_GRACE
        for child in children:
            try:
                child.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                child.kill()
        self.stdout.write("Stopped the web app and the worker.")
