"""Settings fail fast on bad environment and are safe in production mode."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from finance_project import env

STRONG_KEY = "k" * 30 + "-Zq8#vT2!pL9@wX4$mN7%"


def run_manage(*args, **overrides):
    environ = {**os.environ, **overrides}
    for name, value in overrides.items():
        if value is None:
            environ.pop(name)
    return subprocess.run(
        [sys.executable, "manage.py", *args],
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"DATABASE_URL": None}, "Set the environment variable DATABASE_URL"),
        ({"DATABASE_URL": "mysql://x/y"}, "DATABASE_URL must be a postgresql://"),
        ({"REDIS_URL": "amqp://guest@x//"}, "REDIS_URL must be a redis://"),
        ({"DEBUG": "maybe"}, "DEBUG='maybe' is not a boolean"),
        ({"API_THROTTLE_WRITES": "lots"}, "API_THROTTLE_WRITES='lots' must look"),
        ({"DEBUG": "0", "SECRET_KEY": None}, "Set the environment variable SECRET_KEY"),
        ({"DEBUG": "0", "SECRET_KEY": "short"}, "SECRET_KEY must be a private value"),
        (
            {"DEBUG": "0", "SECRET_KEY": STRONG_KEY, "ALLOWED_HOSTS": ""},
            "Set ALLOWED_HOSTS",
        ),
    ],
)
def test_bad_environment_fails_at_start_naming_the_variable(overrides, message):
    result = run_manage("check", **overrides)

    assert result.returncode != 0
    assert message in result.stderr


def test_production_mode_passes_the_deployment_check():
    result = run_manage(
        "check",
        "--deploy",
        "--fail-level",
        "WARNING",
        DEBUG="0",
        SECRET_KEY=STRONG_KEY,
        ALLOWED_HOSTS="finance.example.com",
    )

    assert result.returncode == 0, result.stderr
    assert "no issues" in result.stdout


def test_database_url_accepts_a_unix_socket_folder():
    config = env.parse_database_url(
        "DATABASE_URL", "postgresql://postgres@/finance?host=/srv/pg&sslmode=disable"
    )

    assert (config["HOST"], config["NAME"], config["USER"]) == (
        "/srv/pg",
        "finance",
        "postgres",
    )
    assert config["OPTIONS"] == {"sslmode": "disable"}


def test_database_url_must_name_a_database():
    with pytest.raises(ImproperlyConfigured, match="must name a database"):
        env.parse_database_url("DATABASE_URL", "postgresql://localhost:5432/")
