"""Scratch databases for work that must not touch the configured one."""

from contextlib import contextmanager

from django.db import connection


@contextmanager
def scratch_database(suffix, keep=False):
    """Create, migrate and switch to ``<configured name>_<suffix>``.

    Inside the block the default connection points at the new database;
    afterwards it points back and the scratch database is dropped (unless
    ``keep``). An old database of the same name is replaced.
    """
    original = connection.settings_dict["NAME"]
    name = f"{original}_{suffix}"
    connection.settings_dict.setdefault("TEST", {})["NAME"] = name
    connection.creation.create_test_db(verbosity=0, autoclobber=True, serialize=False)
    try:
        yield name
    finally:
        if keep:
            connection.close()
            connection.settings_dict["NAME"] = original
        else:
            connection.creation.destroy_test_db(original, verbosity=0)
