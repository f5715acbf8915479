"""Build the dbt warehouse in this process and record the run as a job.

    manage.py run_dbt                       # dbt build --select tag:ml
    manage.py run_dbt --select fct_training_view+ --full-refresh

The run is a ``dbt_run`` job like the ones queued on Celery
(``mlcore.tasks.start_dbt_run``): refused while another dbt job is queued or
running, and visible in the admin with each model's status and timing.
"""

from django.core.management.base import BaseCommand, CommandError

from mlcore import dbt
from mlcore.jobs import JobConflict


class Command(BaseCommand):
    help = "Run `dbt build` on the warehouse models (tag:ml) and record it as a job."

    def add_arguments(self, parser):
        parser.add_argument(
            "--select",
            default=dbt.DEFAULT_SELECT,
            help="dbt node selection, several separated by spaces "
            "(default %(default)s)",
        )
        parser.add_argument(
            "--full-refresh",
            action="store_true",
            help="rebuild incremental models from scratch",
        )

    def handle(self, *args, **options):
        try:
            job = dbt.claim_job(options["select"], options["full_refresh"])
        except JobConflict as exc:
            raise CommandError(str(exc)) from None

        # dbt's own log is long; show it live only when asked (-v 2).
        verbosity = options["verbosity"]
        echo = self.stdout.write if verbosity > 1 else _discard
        try:
            job = dbt.run_job(job.pk, on_line=echo)
        except dbt.DbtRunFailed as exc:
            raise CommandError(f"{exc}\n(job #{job.pk}; see its log tail)") from None
        if verbosity == 0:
            return

        result = job.result
        for node in result["nodes"]:
            if node["resource_type"] == "model":
                self.stdout.write(
                    f"  {node['name']}: {node['status']} in {node['seconds']:.2f}s"
                    f" ({node['message']})"
                )
        kinds = [node["resource_type"] for node in result["nodes"]]
        self.stdout.write(
            self.style.SUCCESS(
                f"dbt build succeeded in {result['seconds']:.1f}s: "
                f"{kinds.count('model')} models built, {kinds.count('test')} tests "
                f"passed (job #{job.pk})"
            )
        )


def _discard(line):
    pass
