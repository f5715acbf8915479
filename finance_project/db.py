"""Prepared statements for the queries on latency-bound paths.

Django's PostgreSQL backend binds parameters on the client and turns off
psycopg's prepared statements (so that transaction-mode connection poolers
keep working), which makes PostgreSQL parse and plan every statement it
receives. For the few statements that run on every suggestion request,
planning costs more than running them; ``prepared_cursor`` runs them as
server-side prepared statements instead, planned once for the lifetime of
the (persistent) connection.

PostgreSQL would re-plan a prepared statement for each set of parameters
while it guesses that this pays; for these statements it never does (the
plan is the same index walk whatever the merchant), so new connections ask
for generic plans. That setting, like the prepared statements, touches
only cursors from ``prepared_cursor``: Django's own cursors never prepare.

Behind a transaction-mode pooler that cannot keep prepared statements
(PgBouncer before 1.21), set ``DATABASE_PREPARED_STATEMENTS=0``.
"""

from contextlib import contextmanager

import psycopg
from django.conf import settings
from django.db import connection
from django.db.backends.utils import CursorDebugWrapper, CursorWrapper


def prepare_on_server(sender, connection, **kwargs):
    """``connection_created`` receiver: let ``prepared_cursor`` prepare."""
    if settings.DATABASE_PREPARED_STATEMENTS and connection.vendor == "postgresql":
        # Server-binding cursors prepare a statement the first time they run
        # it; Django's client-binding cursors are not affected.
        connection.connection.prepare_threshold = 0
        with connection.cursor() as cursor:
            cursor.execute("SET plan_cache_mode = force_generic_plan")


class _PreparedDebugWrapper(CursorDebugWrapper):
    """Logs statements as written, placeholders and all: Django reads the
    logged text back from a client-binding cursor, and the cursor of a
    prepared statement does not keep it."""

    def execute(self, sql, params=None):
        with self.debug_sql(sql, params):
            return CursorWrapper.execute(self, sql, params)


@contextmanager
def prepared_cursor():
    """A cursor on the default database whose statements are prepared.

    It is a Django cursor in everything else (health checks, transactions,
    error wrapping, the query log). Statements take ``%s`` placeholders;
    since the server binds them, a parameter needs a cast where PostgreSQL
    cannot infer its type (``%s::bigint[]``).
    """
    wrapper = _PreparedDebugWrapper if connection.queries_logged else CursorWrapper
    with connection.cursor() as plain:
        # ``plain.connection`` is the psycopg connection behind Django's.
        prepared = wrapper(psycopg.Cursor(plain.connection), connection)
        with prepared:
            yield prepared
