"""Run the dbt project in ``warehouse/`` in-process and report what happened.

``run_dbt`` invokes dbt through its Python API (``dbtRunner``) against the
database Django is connected to, and returns a ``DbtOutcome``: success, each
node's status and timing, the failed models and tests, and the tail of dbt's
log. ``run_job`` does the same for a ``dbt_run`` job and records the outcome
on it; ``manage.py run_dbt`` and ``mlcore.tasks.run_dbt_task`` both use it.

dbt reads its connection from ``DATABASE_URL`` (see warehouse/profiles.yml).
Here that variable is set, for the duration of the run, to the connection of
Django's default database, so tests, the demo, benchmarks and workers all
build the database Django uses, whatever the environment says.
"""

import logging
import os
import tempfile
import threading
import time
from collections import deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

from django.db import DEFAULT_DB_ALIAS, connections

from finance_project import env
from mlcore import jobs
from mlcore.models import Job

logger = logging.getLogger(__name__)

PROJECT_DIR = Path(__file__).resolve().parent.parent / "warehouse"
DEFAULT_SELECT = "tag:ml"

# The schema the models are built in; the `schema` of warehouse/profiles.yml.
SCHEMA = "analytics"

# Lines of dbt's log kept on an outcome; jobs keep the last
# ``jobs.LOG_TAIL_LINES`` of them.
LOG_TAIL_LINES = 200

# Node statuses that make a run fail; "warn" and "skipped" do not by themselves
# (a node is skipped because something upstream failed, and that is reported).
FAILED_STATUSES = {"error", "fail", "runtime error", "partial success"}

# A failed run's error names this many failed nodes, each with this much of
# its message (model errors can be long).
MAX_DESCRIBED = 10
MESSAGE_CHARS = 300


class DbtRunFailed(Exception):
    """A dbt run had an error or a failing test; the message names them."""


@dataclass(frozen=True)
class NodeResult:
    name: str
    unique_id: str
    resource_type: str
    status: str
    seconds: float
    message: str = ""
    failures: int | None = None

    @property
    def failed(self):
        return self.status in FAILED_STATUSES


@dataclass
class DbtOutcome:
    args: list[str]
    success: bool
    seconds: float
    nodes: list[NodeResult] = field(default_factory=list)
    log_tail: list[str] = field(default_factory=list)
    error: str = ""

    @property
    def failed_nodes(self):
        return [node for node in self.nodes if node.failed]

    @property
    def failed_tests(self):
        return [node for node in self.failed_nodes if node.resource_type == "test"]

    def as_dict(self):
        """A JSON-ready summary, as stored in ``Job.result``."""
        return {
            "success": self.success,
            "command": " ".join(["dbt", *self.args]),
            "seconds": round(self.seconds, 3),
            "nodes": [
                {**asdict(node), "seconds": round(node.seconds, 3)}
                for node in self.nodes
            ],
            "failed": [node.name for node in self.failed_nodes],
            "failed_tests": [node.name for node in self.failed_tests],
            "error": self.error,
        }


def database_url(alias=DEFAULT_DB_ALIAS):
    """The ``postgresql://`` URL of the database Django is connected to."""
    return env.database_url(connections[alias].settings_dict)


def run_dbt(
    select=DEFAULT_SELECT,
    full_refresh=False,
    command="build",
    project_dir=PROJECT_DIR,
    on_line=None,
):
    """Run ``dbt <command> --select <select>`` and return a ``DbtOutcome``.

    ``select`` is a dbt selection: a string of space-separated selectors, as
    on dbt's command line, or a list of them. ``on_line``,
    if given, receives each line of dbt's log as it happens (from dbt's
    worker threads); otherwise the lines go to this module's logger.
    """
    # dbt takes over a second to import; only code that runs it pays for that.
    from dbt.cli.main import dbtRunner

    project_dir = str(project_dir)
    selection = select.split() if isinstance(select, str) else list(select)
    args = [command, "--select", *selection]
    if full_refresh:
        args.append("--full-refresh")
    options = [
        "--project-dir",
        project_dir,
        "--profiles-dir",
        project_dir,
        # Lines reach the caller through the callback below, not dbt's console.
        "--log-level",
        "none",
        "--no-use-colors",
        *_output_paths(project_dir),
    ]

    tail = deque(maxlen=LOG_TAIL_LINES)
    emit = on_line or (lambda line: logger.info("dbt: %s", line))
    lock = threading.Lock()

    def collect(event):
        if event.info.level not in ("info", "warn", "error") or not event.info.msg:
            return
        with lock:
            for line in str(event.info.msg).splitlines():
                tail.append(line)
                emit(line)

    logger.info("Running dbt %s", " ".join(args))
    started = time.monotonic()
    with _environment(DATABASE_URL=database_url()):
        result = dbtRunner(callbacks=[collect]).invoke([*args, *options])
    seconds = time.monotonic() - started

    nodes = _node_results(result.result)
    outcome = DbtOutcome(
        args=args,
        success=bool(result.success),
        seconds=seconds,
        nodes=nodes,
        log_tail=list(tail),
    )
    if result.exception is not None:
        outcome.success = False
        outcome.error = f"dbt {command} failed: {result.exception}"
    elif outcome.failed_nodes:
        outcome.success = False
        failed = outcome.failed_nodes
        described = [_describe(node) for node in failed[:MAX_DESCRIBED]]
        if len(failed) > MAX_DESCRIBED:
            described.append(f"and {len(failed) - MAX_DESCRIBED} more")
        outcome.error = f"dbt {command} failed: " + "; ".join(described)
    elif not outcome.success:
        outcome.error = f"dbt {command} failed; see the log tail."
    elif not any(node.resource_type != "operation" for node in nodes):
        # An empty selection is almost always a typo; don't call it a success.
        outcome.success = False
        outcome.error = (
            f"dbt {command}: --select {' '.join(selection)} matched nothing."
        )

    if outcome.success:
        logger.info("dbt %s succeeded in %.1fs", command, seconds)
    else:
        logger.warning("dbt %s failed in %.1fs: %s", command, seconds, outcome.error)
    return outcome


def job_params(select=DEFAULT_SELECT, full_refresh=False):
    """The ``params`` of a ``dbt_run`` job."""
    return {"select": select, "full_refresh": bool(full_refresh)}


def run_job(job_id, on_line=None):
    """Run the dbt build a ``dbt_run`` job describes and record the outcome.

    The job's ``result`` gets every node's status and timing and the failed
    models and tests, its ``log_tail`` the end of dbt's log, both also when
    the run fails; then the job fails with ``DbtRunFailed`` naming what
    failed. Returns the job.
    """

    def work(job, progress):
        outcome = run_dbt(
            job.params.get("select", DEFAULT_SELECT),
            job.params.get("full_refresh", False),
            on_line=on_line,
        )
        job.result = outcome.as_dict()
        job.log_tail = "\n".join(outcome.log_tail[-jobs.LOG_TAIL_LINES :])
        job.progress_total = len(outcome.nodes)
        job.progress_done = sum(node.status != "skipped" for node in outcome.nodes)
        job.save(
            update_fields=["result", "log_tail", "progress_total", "progress_done"]
        )
        if not outcome.success:
            raise DbtRunFailed(outcome.error)
        return job.result

    return jobs.run_job(job_id, work)


def claim_job(select=DEFAULT_SELECT, full_refresh=False, user=None):
    """Create a ``dbt_run`` job to run in this process, as ``manage.py run_dbt``
    does; refuse with ``JobConflict`` while another dbt job is active."""
    return jobs.create(
        Job.Kind.DBT_RUN, job_params(select, full_refresh), user, exclusive=True
    )


def _output_paths(project_dir):
    """Where dbt writes compiled SQL and its log when the project is read-only.

    dbt writes target/ and logs/ inside the project by default. Where the
    code belongs to another user (the Docker image runs as an unprivileged
    one), they go to the temporary folder instead, unless DBT_TARGET_PATH and
    DBT_LOG_PATH say where.
    """
    if os.access(project_dir, os.W_OK):
        return []
    base = Path(tempfile.gettempdir()) / "finance-dbt"
    paths = []
    if not os.environ.get("DBT_TARGET_PATH"):
        paths += ["--target-path", str(base / "target")]
    if not os.environ.get("DBT_LOG_PATH"):
        paths += ["--log-path", str(base / "logs")]
    return paths


def _node_results(execution):
    results = getattr(execution, "results", None) or []
    nodes = []
    for result in results:
        node = result.node
        failures = getattr(result, "failures", None)
        nodes.append(
            NodeResult(
                name=node.name,
                unique_id=node.unique_id,
                resource_type=str(node.resource_type),
                status=str(result.status),
                seconds=float(result.execution_time or 0.0),
                message=str(result.message or ""),
                failures=int(failures) if failures is not None else None,
            )
        )
    return nodes


def _describe(node):
    message = " ".join(node.message.split())
    if len(message) > MESSAGE_CHARS:
        message = message[: MESSAGE_CHARS - 1] + "…"
    return f"{node.resource_type} {node.name} {node.status}: {message}"


@contextmanager
def _environment(**values):
    """Set environment variables for the duration of a dbt run.

    dbt reads its profile from the process environment. Runs in one process
    do not overlap: ``dbt_run`` jobs are exclusive.
    """
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
