"""Shared fixtures: small builders for transactions and a real Celery worker."""

import itertools
from datetime import date
from decimal import Decimal

import pytest
from celery.contrib.testing.worker import start_worker
from django.db import connections

from finance_project.celery import app as celery_app
from labeling.models import Transaction

_external_ids = itertools.count(1)


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix):
    # Worker threads and dbt open connections of their own; persistent ones
    # would outlive the threads and keep the test database from being dropped.
    connections["default"].settings_dict["CONN_MAX_AGE"] = 0


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    """The test database, with a snapshot of the rows its migrations seed.

    ``committed_db`` restores the seeded rows from it (Django's serialized
    rollback). pytest-django takes the snapshot only when a collected test
    asks for serialized rollback in a way it sees at collection, which a
    module-wide ``django_db`` mark hides; so a run of a few modules could
    otherwise start a committed test with the categories gone.
    """
    connection = connections["default"]
    if not hasattr(connection, "_test_serialized_contents"):
        with django_db_blocker.unblock():
            connection._test_serialized_contents = (
                connection.creation.serialize_db_to_string()
            )


@pytest.fixture
def make_txn(db):
    """Build a live transaction; override any field by keyword."""

    def make(**fields):
        values = {
            "account": "Checking 1234",
            "external_id": f"ext-{next(_external_ids)}",
            "posted_on": date(2025, 3, 14),
            "description": "SQ *BLUE BOTTLE COFFEE OAKLAND CA",
            "amount": Decimal("-4.50"),
            **fields,
        }
        return Transaction.objects.create(**values)

    return make


@pytest.fixture
def committed_db(django_db_serialized_rollback, transactional_db):
    """A database whose writes commit, for work done by other connections.

    The seeded categories are restored afterwards (serialized rollback),
    since the flush that ends such a test empties every table.
    """


@pytest.fixture
def celery_worker(committed_db):
    """Run a real Celery worker in a thread against the configured broker.

    Tasks run in another thread with their own database connection, so the
    test needs committed data.
    """
    celery_app.control.purge()
    with start_worker(
        celery_app, pool="solo", perform_ping_check=False, shutdown_timeout=30
    ) as worker:
        yield worker
