"""docker-compose.yml describes a stack that can really start.

No Docker engine runs in CI, so the file is checked statically: the
services exist with health checks, and every command names a module, app
and setting that exist in this project.
"""

import importlib
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from django.conf import settings

from finance_project.celery import app as celery_app

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose():
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def command_of(service):
    command = service["command"]
    return shlex.split(command) if isinstance(command, str) else command


def env_example():
    lines = (ROOT / ".env.example").read_text().splitlines()
    pairs = (line.split("=", 1) for line in lines if line and not line.startswith("#"))
    return dict(pairs)


def test_stack_has_the_five_services(compose):
    assert set(compose["services"]) == {"postgres", "redis", "web", "worker", "beat"}
    assert compose["services"]["postgres"]["image"].startswith("postgres:16")
    assert compose["services"]["redis"]["image"].startswith("redis:7")


@pytest.mark.parametrize("name", ["postgres", "redis", "web", "worker"])
def test_long_running_services_have_health_checks(compose, name):
    assert compose["services"][name]["healthcheck"]["test"]


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_app_services_wait_for_healthy_backends(compose, name):
    depends = compose["services"][name]["depends_on"]

    assert depends == {
        "postgres": {"condition": "service_healthy"},
        "redis": {"condition": "service_healthy"},
    }
    assert (ROOT / compose["services"][name]["build"] / "Dockerfile").exists()


def test_web_runs_migrations_then_gunicorn_on_the_wsgi_app(compose):
    words = command_of(compose["services"]["web"])
    script = words[words.index("-c") + 1]

    assert "manage.py migrate" in script
    target = next(w for w in shlex.split(script) if w.endswith(":application"))
    module = importlib.import_module(target.split(":")[0])
    assert callable(module.application)


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_celery_services_name_the_project_app(compose, name):
    words = command_of(compose["services"][name])

    assert words[:3] == ["celery", "-A", "finance_project"]
    assert importlib.import_module(words[2]).celery_app is celery_app


def test_beat_schedule_names_registered_tasks():
    celery_app.loader.import_default_modules()

    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        assert entry["task"] in celery_app.tasks


def test_env_example_configures_every_required_variable():
    values = env_example()

    assert {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"} <= set(values)
    assert values["DATABASE_URL"].startswith("postgresql://")
    assert "@postgres:5432/" in values["DATABASE_URL"]
    assert values["REDIS_URL"].startswith("redis://redis:6379")
    assert len(values["SECRET_KEY"]) >= 50


def test_dockerfile_installs_the_pinned_runtime_requirements():
    dockerfile = (ROOT / "Dockerfile").read_text()

    assert "requirements/base.txt" in dockerfile
    assert "finance_project.wsgi:application" in dockerfile


def test_env_example_settings_start_the_app():
    environ = {**os.environ, **env_example()}
    # Same settings, but this machine's database and broker.
    environ["DATABASE_URL"] = os.environ["DATABASE_URL"]
    environ["REDIS_URL"] = os.environ["REDIS_URL"]

    result = subprocess.run(
        [sys.executable, "manage.py", "check"],
        env=environ,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr


def test_web_and_worker_share_the_model_storage(compose):
    storage = env_example()["MODEL_STORAGE_DIR"]

    for service in ("web", "worker"):
        mounts = [v.split(":")[1] for v in compose["services"][service]["volumes"]]
        assert any(storage.startswith(mount) for mount in mounts)
