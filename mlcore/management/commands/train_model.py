"""Train a category model on the warehouse's training view.

    manage.py train_model                        # validate on the last full month
    manage.py train_model --cutoff 2026-09 --promote-if-better

The attempt is recorded as a training run (with its error if it fails) and
the model is registered as a new version; see ``mlcore.training``.
"""

from datetime import date

from django.core.management.base import BaseCommand, CommandError

from mlcore import training


def month(value):
    try:
        return date.fromisoformat(f"{value}-01" if len(value) == 7 else value)
    except ValueError:
        raise ValueError(f"{value!r} is not a month like 2026-09") from None


class Command(BaseCommand):
    help = "Train, measure and register a category model."

    def add_arguments(self, parser):
        parser.add_argument(
            "--cutoff",
            type=month,
            help="first validation month, YYYY-MM (default: the last full month "
            "with labels); training uses the months before it",
        )
        parser.add_argument(
            "--promote-if-better",
            action="store_true",
            help="make the new model champion if it beats the current one on "
            "the same validation months",
        )

    def handle(self, *args, **options):
        try:
            run = training.train(
                cutoff=options["cutoff"],
                promote_if_better=options["promote_if_better"],
                log=self.stdout.write,
            )
        except training.TrainingError as exc:
            raise CommandError(str(exc)) from None
        figures = run.metrics
        coverage = figures["coverage_at_precision"]["0.95"]["coverage"]
        self.stdout.write(
            self.style.SUCCESS(
                f"Run {run.pk}: model v{run.model_version.pk}, accuracy "
                f"{figures['accuracy']:.3f}, macro-F1 {figures['macro_f1']:.3f}, "
                f"calibration error {figures['calibration_error']:.3f}, "
                f"{coverage:.0%} auto-applicable at 95% precision "
                f"({run.row_counts['train']:,} train / "
                f"{run.row_counts['validation']:,} validation rows, "
                f"{run.duration_seconds:.1f}s)"
            )
        )
