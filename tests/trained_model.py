"""A real model over generated data, for tests of what serves suggestions.

``trained_model`` generates transactions, builds their features and the dbt
warehouse, trains and promotes a champion, and removes all of it
afterwards. Module-scoped fixtures use it under
``django_db_blocker.unblock()`` so that the data is committed, as dbt needs.
"""

from contextlib import contextmanager
from io import StringIO

from django.apps import apps
from django.core.management import call_command
from django.db import connection
from django.test import override_settings

from labeling.models import Category
from mlcore import dbt, registry, training
from mlcore.features import build


@contextmanager
def trained_model(storage, seed=5, count=3_000):
    """Yield the ``TrainingRun`` of a champion trained on fresh data."""
    with override_settings(MODEL_STORAGE_DIR=storage):
        try:
            restore_migrated_rows()
            call_command(
                "generate_transactions",
                count=count,
                months=6,
                seed=seed,
                label_fraction=0.6,
                stdout=StringIO(),
            )
            build.build_window()
            # A warehouse left by an earlier test would be stale: rebuild.
            outcome = dbt.run_dbt(on_line=lambda line: None)
            assert outcome.success, outcome.error
            registry.forget_serving_versions()
            yield training.train(promote_if_better=True)
        finally:
            remove_everything()


def restore_migrated_rows():
    """Put back the rows the migrations seeded (categories, roles).

    A committed test that ran before may have flushed them. They come back
    from the snapshot Django took when it created the test database, with
    their original ids, as Django's serialized rollback restores them:
    re-seeding would give new ids, which the next such restore collides with.
    """
    connection.creation.deserialize_db_from_string(connection._test_serialized_contents)


def remove_everything():
    """Empty the tables of both apps but the seeded categories; drop dbt's."""
    tables = [
        model._meta.db_table
        for label in ("labeling", "mlcore")
        for model in apps.get_app_config(label).get_models()
        if model._meta.managed and model is not Category
    ]
    with connection.cursor() as cursor:
        cursor.execute(f"DROP SCHEMA IF EXISTS {dbt.SCHEMA} CASCADE")
        cursor.execute(f"TRUNCATE {', '.join(tables)} CASCADE")
    registry.forget_serving_versions()
