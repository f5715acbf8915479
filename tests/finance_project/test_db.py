"""Prepared statements: planned once per connection, still Django cursors."""

import pytest
from django.db import connection
from django.db.utils import ProgrammingError

from finance_project.db import prepared_cursor

pytestmark = pytest.mark.django_db


def prepared_statements():
    with connection.cursor() as cursor:
        cursor.execute("SELECT statement FROM pg_prepared_statements")
        return [row[0] for row in cursor.fetchall()]


def test_a_statement_is_prepared_once_and_answers_each_time():
    sql = "SELECT %s::int * 2 AS doubled"

    answers = []
    for value in (1, 2, 3):
        with prepared_cursor() as cursor:
            cursor.execute(sql, [value])
            answers.append(cursor.fetchone()[0])

    assert answers == [2, 4, 6]
    assert prepared_statements().count("SELECT $1::int * 2 AS doubled") == 1
    with connection.cursor() as cursor:
        cursor.execute("SHOW plan_cache_mode")
        assert cursor.fetchone() == ("force_generic_plan",)


def test_statements_are_logged_like_any_other(django_assert_num_queries):
    with django_assert_num_queries(1) as captured, prepared_cursor() as cursor:
        cursor.execute("SELECT %s::text", ["logged"])

    assert captured.captured_queries[0]["sql"] == "SELECT %s::text"


def test_errors_are_djangos():
    with pytest.raises(ProgrammingError, match="no_such_table"), prepared_cursor() as c:
        c.execute("SELECT * FROM no_such_table WHERE id = %s::int", [1])


def test_django_cursors_do_not_prepare():
    with connection.cursor() as cursor:
        cursor.execute("SELECT %s::int + 40", [2])

    assert not any("+ 40" in statement for statement in prepared_statements())
