"""Suggestion outcomes recorded by the database, for every label writer.

When a person labels a transaction (a ``human`` label inserted or updated,
by the admin, the queue, the API or SQL), each of its suggestions that has
no outcome yet becomes ``accepted`` if the label is the suggested category
and ``overridden`` otherwise. Statement-level triggers with transition
tables keep bulk labeling to one UPDATE per statement.

Hard-deleting a transaction deletes its suggestions (``ON DELETE CASCADE``).
"""

from django.db import migrations

from labeling.migrations._schema import replace_foreign_key

FUNCTIONS_SQL = r"""
CREATE FUNCTION ml_suggestions_record_outcome() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE ml_suggestions AS s
    SET outcome = CASE WHEN s.label = n.label THEN 'accepted' ELSE 'overridden' END,
        outcome_at = now()
    FROM new_rows AS n
    WHERE s.txn_id = n.txn_id
      AND n.source = 'human'
      AND s.outcome IS NULL;
    RETURN NULL;
END;
$$;

CREATE TRIGGER ml_suggestions_outcome_on_insert
AFTER INSERT ON transaction_labels
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION ml_suggestions_record_outcome();

CREATE TRIGGER ml_suggestions_outcome_on_update
AFTER UPDATE ON transaction_labels
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION ml_suggestions_record_outcome();
"""

REVERSE_SQL = r"""
DROP TRIGGER ml_suggestions_outcome_on_update ON transaction_labels;
DROP TRIGGER ml_suggestions_outcome_on_insert ON transaction_labels;
DROP FUNCTION ml_suggestions_record_outcome();
"""


def cascade(apps, schema_editor):
    replace_foreign_key(
        schema_editor,
        "ml_suggestions",
        "txn_id",
        "transactions (id)",
        "ON DELETE CASCADE",
    )


class Migration(migrations.Migration):
    dependencies = [("mlcore", "0004_registry_and_suggestions")]

    operations = [
        migrations.RunSQL(FUNCTIONS_SQL, REVERSE_SQL),
        migrations.RunPython(cascade, migrations.RunPython.noop),
    ]
