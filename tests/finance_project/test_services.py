"""The embedded PostgreSQL and Redis are real servers that start and stop."""

import shutil
import tempfile
from pathlib import Path

import psycopg
import pytest
import redis

from finance_project import services

pytestmark = pytest.mark.slow


@pytest.fixture
def data_dir(monkeypatch):
    # Not under pytest's tmp_path: as root, PostgreSQL runs as another user
    # that must reach the folder, and pytest keeps its own folders private
    # (re-tightening them whenever another pytest session starts). The path
    # is short because unix sockets live inside it.
    path = Path(tempfile.mkdtemp(prefix="finance-services-"))
    path.chmod(0o755)
    monkeypatch.setenv("FINANCE_DATA_DIR", str(path))
    yield path
    services.EmbeddedRedis(path).stop()
    services.EmbeddedPostgres(path).stop()
    shutil.rmtree(path, ignore_errors=True)


def test_missing_urls_start_both_servers_and_they_are_reused(data_dir):
    added, started = services.start_missing({})

    assert set(added) == {"DATABASE_URL", "REDIS_URL"}
    assert len(started) == 2

    again, started_again = services.start_missing({})
    assert again == added
    assert started_again == []


def test_embedded_postgres_supports_arrays_and_upserts(data_dir):
    added, _ = services.start_missing({"REDIS_URL": "redis://unused"})

    with psycopg.connect(added["DATABASE_URL"], autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id int PRIMARY KEY, tags text[])")
        conn.execute("INSERT INTO t VALUES (1, ARRAY['a'])")
        conn.execute(
            "INSERT INTO t VALUES (1, ARRAY['b', 'c']) "
            "ON CONFLICT (id) DO UPDATE SET tags = EXCLUDED.tags"
        )
        rows = conn.execute("SELECT array_length(tags, 1) FROM t").fetchall()

    assert rows == [(2,)]


def test_embedded_redis_answers_on_its_socket_and_stops(data_dir):
    server = services.EmbeddedRedis(data_dir)
    server.start()

    client = redis.Redis(unix_socket_path=str(server.socket))
    client.set("k", "v")
    assert client.get("k") == b"v"

    server.stop()
    assert not server.is_running()


def test_given_urls_start_nothing(data_dir):
    added, started = services.start_missing(
        {"DATABASE_URL": "postgresql://x/y", "REDIS_URL": "redis://x"}
    )

    assert (added, started) == ({}, [])
    assert not (data_dir / "pg").exists()
