"""Apply labeling rules to transactions, dry or for real, and measure them.

``create_runs`` records one ``RuleRun`` per rule; ``execute`` then carries
them out together in one pass over the live transactions (all of them, or
the ones given), in batches of ``BATCH_SIZE``:

1. Every candidate rule (the enabled ones plus those being run) is checked
   against each transaction. The highest priority among the matches wins
   (the newer rule on a tie); a match whose category differs from another
   match's is a conflict, and a run whose rule did not win is overruled.
2. The winner's label is due unless the transaction has a human label
   (``skipped_higher_source``), an import label the rule may not replace
   (``skipped_import``), or this rule's label already (``unchanged``).
3. Labels are written with ``bulk_set_labels`` (precedence and history in
   the schema, ``rule_id`` in both), one database transaction per batch.
   A human label committed after the batch was read is kept: the upsert
   skips it, and the run counts it as skipped, never as an error.
4. The rule's matches in the batch replace its earlier ones in
   ``label_rule_matches``, the basis of its coverage and precision. A dry
   run does this too (measuring writes no label) and keeps a sample of what
   it would change.

Running again writes nothing new, so a re-delivered task is harmless.
"""

import logging
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Count, F, OuterRef, Q, Subquery
from django.utils import timezone

from labeling.labels import bulk_set_labels
from labeling.models import LabelSource, Rule, RuleRun

logger = logging.getLogger(__name__)

# Transactions per batch: one short database transaction each, a few
# megabytes of rows in memory, and few enough round trips on a million rows.
BATCH_SIZE = 20_000
# Changes a run keeps to show, in the admin, the API and the command.
SAMPLE_SIZE = 20

# A range of ids, not ORDER BY ... LIMIT: with the statistics of a freshly
# loaded table the planner sorts the whole rest of the table for the latter.
_BATCH_SQL = """
    SELECT t.id, t.description, f.merchant, t.amount, t.account,
           EXTRACT(DAY FROM t.posted_on)::int, l.label, l.source, l.rule_id
    FROM transactions t
    LEFT JOIN ml_features f ON f.txn_id = t.id
    LEFT JOIN transaction_labels l ON l.txn_id = t.id
    WHERE t.deleted_at IS NULL AND {scope}
    ORDER BY t.id
"""

_ID_RANGE_SQL = "SELECT min(id), max(id) FROM transactions WHERE deleted_at IS NULL"

# Rows a concurrent writer may have changed since the batch was read.
_LOCK_LABELS_SQL = """
    SELECT txn_id, label, source, rule_id
    FROM transaction_labels
    WHERE txn_id = ANY(%s)
    ORDER BY txn_id
    FOR UPDATE
"""

_DELETE_MATCHES_SQL = """
    DELETE FROM label_rule_matches
    WHERE rule_id = ANY(%s) AND {scope}
"""

_INSERT_MATCHES_SQL = """
    INSERT INTO label_rule_matches (rule_id, txn_id)
    SELECT * FROM unnest(%s::bigint[], %s::bigint[])
    ON CONFLICT (rule_id, txn_id) DO NOTHING
"""


class RuleRunError(Exception):
    """A run that cannot be started as asked."""


@dataclass
class _Candidate:
    rule: Rule
    matches: object  # labeling.rules.Conditions.matcher()

    @property
    def id(self):
        return self.rule.pk


def create_runs(rules, *, trigger, user=None, dry_run=False):
    """Record a queued run of each rule; ``execute`` carries them out.

    Applying a disabled rule is refused (it would label what the automatic
    runs then ignore); a dry run of one is fine, and is how a new rule is
    tried out before it is enabled.
    """
    rules = list(rules)
    if not dry_run:
        disabled = [rule.name for rule in rules if not rule.enabled]
        if disabled:
            raise RuleRunError(
                f"Enable {', '.join(disabled)} before applying; a dry run works "
                "on disabled rules."
            )
    return [
        RuleRun.objects.create(
            rule=rule, trigger=trigger, triggered_by=user, dry_run=dry_run
        )
        for rule in rules
    ]


def execute(run_ids, txn_ids=None):
    """Carry out the queued runs ``run_ids`` over all live transactions, or
    over ``txn_ids``; return the runs.

    Runs already finished are left alone, so a re-delivered task does not
    repeat them; a run left ``running`` by a lost worker is run again.
    """
    runs = list(
        RuleRun.objects.filter(
            pk__in=run_ids,
            status__in=[RuleRun.Status.QUEUED, RuleRun.Status.RUNNING],
        )
        .select_related("rule")
        .order_by("pk")
    )
    if not runs:
        return []
    if len({run.dry_run for run in runs}) > 1:
        raise RuleRunError("Dry runs and real runs go in separate calls.")

    started = timezone.now()
    for run in runs:
        _reset(run)
        run.status = RuleRun.Status.RUNNING
        run.started_at = started
        run.save()
    try:
        _Pass(runs, txn_ids).run()
    except Exception as exc:
        logger.exception("Rule runs %s failed", [run.pk for run in runs])
        for run in runs:
            run.status = RuleRun.Status.FAILED
            run.error = f"{type(exc).__name__}: {exc}"
            run.finished_at = timezone.now()
            run.save()
        raise

    finished = timezone.now()
    for run in runs:
        run.status = RuleRun.Status.SUCCEEDED
        run.finished_at = finished
        run.save()
        logger.info(
            "Rule %s %s: %d matched, %d labeled, %d unchanged, %d kept human, "
            "%d kept import, %d conflicts (%d overruled)",
            run.rule_id,
            "dry run" if run.dry_run else "run",
            run.matched,
            run.labeled,
            run.unchanged,
            run.skipped_higher_source,
            run.skipped_import,
            run.conflicts,
            run.overruled,
            extra={"rule_id": run.rule_id, "rule_run_id": run.pk},
        )
    return runs


def run_now(rules, *, trigger, user=None, dry_run=False, txn_ids=None):
    """Create the runs and carry them out in this process."""
    runs = create_runs(rules, trigger=trigger, user=user, dry_run=dry_run)
    return execute([run.pk for run in runs], txn_ids)


def _reset(run):
    for name in (
        "examined",
        "matched",
        "labeled",
        "unchanged",
        "skipped_higher_source",
        "skipped_import",
        "conflicts",
        "overruled",
    ):
        setattr(run, name, 0)
    run.sample = []
    run.error = ""


class _Pass:
    """One pass over the transactions for a set of runs."""

    def __init__(self, runs, txn_ids):
        self.runs = {run.rule_id: run for run in runs}
        self.dry_run = runs[0].dry_run
        self.txn_ids = None if txn_ids is None else sorted(set(txn_ids))
        rules = {rule.pk: rule for rule in Rule.objects.filter(enabled=True)}
        rules.update({run.rule_id: run.rule for run in runs})
        # Highest priority first, the newer rule first on a tie: the first
        # match of a transaction is its winner.
        ordered = sorted(rules.values(), key=lambda r: (-r.priority, -r.pk))
        self.candidates = [
            _Candidate(rule, rule.conditions().matcher()) for rule in ordered
        ]

    def run(self):
        for scope, params in self._scopes():
            with connection.cursor() as cursor:
                cursor.execute(_BATCH_SQL.format(scope=scope.format(id="t.id")), params)
                rows = cursor.fetchall()
            self._batch(rows, scope, params)

    def _scopes(self):
        """SQL conditions and parameters of the batches, in id order."""
        if self.txn_ids is not None:
            for start in range(0, len(self.txn_ids), BATCH_SIZE):
                yield "{id} = ANY(%s)", [self.txn_ids[start : start + BATCH_SIZE]]
            return
        with connection.cursor() as cursor:
            cursor.execute(_ID_RANGE_SQL)
            low, high = cursor.fetchone()
        if low is None:
            return
        for start in range(low, high + 1, BATCH_SIZE):
            yield "{id} >= %s AND {id} < %s", [start, start + BATCH_SIZE]

    def _batch(self, rows, scope, params):
        """Evaluate, write and measure one batch; ``scope`` (with ``params``)
        is its SQL condition on a transaction id column ``{id}``."""
        writes = {rule_id: {} for rule_id in self.runs}
        matches = {rule_id: [] for rule_id in self.runs}
        for run in self.runs.values():
            run.examined += len(rows)

        for txn_id, description, merchant, amount, account, day, *label in rows:
            hits = [
                c
                for c in self.candidates
                if c.matches(description, merchant, amount, account, day)
            ]
            if not hits:
                continue
            winner = hits[0]
            categories = {c.rule.category_id for c in hits}
            for candidate in hits:
                run = self.runs.get(candidate.id)
                if run is None:
                    continue
                matches[run.rule_id].append(txn_id)
                run.matched += 1
                if len(categories) > 1:
                    run.conflicts += 1
                if candidate is not winner:
                    run.overruled += 1
                    continue
                if self._due(run, label):
                    writes[run.rule_id][txn_id] = run.rule.category_id
                    self._sample(run, txn_id, description, label)

        with transaction.atomic():
            if not self.dry_run:
                self._write(writes)
            else:
                for rule_id, due in writes.items():
                    self.runs[rule_id].labeled += len(due)
            self._store_matches(matches, scope, params)

    def _due(self, run, label):
        """Whether ``run``'s rule should write its label over ``label``;
        counts the reason when not."""
        category, source, rule_id = label
        if source == LabelSource.HUMAN:
            run.skipped_higher_source += 1
            return False
        if source == LabelSource.IMPORT and not run.rule.may_override_import:
            run.skipped_import += 1
            return False
        if (category, source, rule_id) == (
            run.rule.category_id,
            LabelSource.RULE,
            run.rule_id,
        ):
            run.unchanged += 1
            return False
        return True

    def _sample(self, run, txn_id, description, label):
        if len(run.sample) < SAMPLE_SIZE:
            run.sample.append(
                {
                    "txn": txn_id,
                    "description": description,
                    "label": label[0],
                    "source": label[1],
                    "new_label": run.rule.category_id,
                }
            )

    def _write(self, writes):
        due = sorted(txn_id for labels in writes.values() for txn_id in labels)
        if not due:
            return
        # Look again, under lock, at labels written since the batch was
        # read: an import label may not be replaced by every rule. A label
        # inserted after this point is left to the upsert, which never
        # replaces a human one.
        with connection.cursor() as cursor:
            cursor.execute(_LOCK_LABELS_SQL, [due])
            current = {row[0]: row[1:] for row in cursor.fetchall()}
        for rule_id, labels in writes.items():
            run = self.runs[rule_id]
            for txn_id in [t for t in labels if t in current]:
                if not self._due_now(run, current[txn_id]):
                    del labels[txn_id]
            if not labels:
                continue
            result = bulk_set_labels(labels, LabelSource.RULE, rule_id=rule_id)
            run.labeled += result.written
            run.skipped_higher_source += result.skipped

    def _due_now(self, run, label):
        """``_due`` for a label that changed under the run, counted the same."""
        _, source, _ = label
        if source in (LabelSource.HUMAN, LabelSource.IMPORT):
            return self._due(run, label)
        return True

    def _store_matches(self, matches, scope, params):
        rule_ids = list(self.runs)
        pairs = [(rule_id, t) for rule_id, ids in matches.items() for t in ids]
        with connection.cursor() as cursor:
            cursor.execute(
                _DELETE_MATCHES_SQL.format(scope=scope.format(id="txn_id")),
                [rule_ids, *params],
            )
            if pairs:
                cursor.execute(
                    _INSERT_MATCHES_SQL,
                    [[rule_id for rule_id, _ in pairs], [t for _, t in pairs]],
                )


# -- Figures -----------------------------------------------------------------


def precision_floor():
    """The RULE_PRECISION_FLOOR setting: rules below it are flagged."""
    return settings.RULE_PRECISION_FLOOR


def with_figures(queryset):
    """Annotate rules with their figures, in one query for all of them.

    - ``coverage``: live transactions the rule matched at its latest run;
    - ``checked``: of those, how many have a human label;
    - ``agreed``: of those, how many the human gave the rule's category;
    - ``last_run_at``: when its latest run (dry or not) finished.

    Precision is ``agreed / checked`` (see ``precision``).
    """
    live = Q(matches__txn__deleted_at__isnull=True)
    human = live & Q(matches__txn__label__source=LabelSource.HUMAN)
    last_run = (
        RuleRun.objects.filter(rule=OuterRef("pk"), status=RuleRun.Status.SUCCEEDED)
        .order_by("-finished_at")
        .values("finished_at")[:1]
    )
    return queryset.annotate(
        coverage=Count("matches", filter=live),
        checked=Count("matches", filter=human),
        agreed=Count(
            "matches", filter=human & Q(matches__txn__label__label=F("category"))
        ),
        last_run_at=Subquery(last_run),
    )


def precision(rule):
    """Share of the human-labeled matches the rule got right, or None."""
    if not rule.checked:
        return None
    return rule.agreed / rule.checked


def measured(rule):
    """Whether the rule ran since its conditions last changed."""
    return rule.last_run_at is not None and rule.last_run_at >= (
        rule.conditions_changed_at
    )


def below_floor(rule):
    """Whether the rule's precision is under RULE_PRECISION_FLOOR."""
    value = precision(rule)
    return value is not None and value < precision_floor()
