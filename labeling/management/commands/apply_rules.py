"""Apply labeling rules to every live transaction, or dry-run them."""

import time

from django.core.management.base import BaseCommand, CommandError

from labeling import rule_runs
from labeling.models import Rule, RuleRun


class Command(BaseCommand):
    help = (
        "Apply the enabled labeling rules (or the ones given with --rule) to "
        "every live transaction, writing rule labels where no human label and, "
        "unless the rule allows it, no import label is in the way. With "
        "--dry-run, write no label and show what would change. Every run is "
        "recorded as a rule run."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--rule",
            type=int,
            action="append",
            dest="rules",
            metavar="ID",
            help="Only this rule (repeat for several). Default: every enabled rule.",
        )
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Write no label; show what would change, with a sample.",
        )

    def handle(self, *args, rules=None, dry_run=False, **options):
        if rules:
            chosen = list(Rule.objects.filter(pk__in=rules))
            missing = set(rules) - {rule.pk for rule in chosen}
            if missing:
                raise CommandError(
                    f"No rule with id {', '.join(map(str, sorted(missing)))}."
                )
        else:
            chosen = list(Rule.objects.filter(enabled=True))
        if not chosen:
            self.stdout.write("No enabled rules.")
            return

        started = time.perf_counter()
        try:
            runs = rule_runs.run_now(
                chosen, trigger=RuleRun.Trigger.COMMAND, dry_run=dry_run
            )
        except rule_runs.RuleRunError as exc:
            raise CommandError(str(exc)) from None
        elapsed = time.perf_counter() - started

        verb = "would label" if dry_run else "labeled"
        for run in runs:
            self.stdout.write(
                f"Rule {run.rule_id} {run.rule.name!r}: {run.matched:,} matched, "
                f"{verb} {run.labeled:,}, {run.unchanged:,} unchanged, "
                f"{run.skipped_higher_source:,} kept (human), "
                f"{run.skipped_import:,} kept (import), {run.conflicts:,} conflicts "
                f"({run.overruled:,} overruled). Run {run.pk}."
            )
            if dry_run:
                for change in run.sample:
                    current = (
                        f"{change['label']} ({change['source']})"
                        if change["label"]
                        else "unlabeled"
                    )
                    self.stdout.write(
                        f"  {change['txn']:>10}  {change['description'][:48]:<48}  "
                        f"{current} → {change['new_label']}"
                    )
        examined = runs[0].examined
        self.stdout.write(
            self.style.SUCCESS(
                f"{'Dry run' if dry_run else 'Applied'}: {len(runs)} rules over "
                f"{examined:,} transactions in {elapsed:.1f}s"
                + ("; nothing was written." if dry_run else ".")
            )
        )
