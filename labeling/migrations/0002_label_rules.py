"""Database-level rules for labels, enforced for every writer.

- A label's source ranks human > rule > import; an UPDATE to a lower source
  is refused with an error (bulk writers avoid it with ``ON CONFLICT ...
  WHERE`` and count what they skipped).
- Every insert, change and delete of a label is appended to
  ``transaction_label_history``, which refuses updates and deletes. The actor
  of a delete is read from the ``labeling.actor_id`` setting, which the
  application sets for the current transaction.
- Hard-deleting a transaction removes its label in the schema
  (``ON DELETE CASCADE``); the history keeps the transaction id.
- ``transactions.updated_at`` and ``transaction_labels.updated_at`` follow
  every update.
"""

from django.db import migrations

from labeling.migrations._schema import replace_foreign_key

FUNCTIONS_SQL = r"""
CREATE FUNCTION label_source_rank(source text) RETURNS integer
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT CASE source WHEN 'human' THEN 3 WHEN 'rule' THEN 2 WHEN 'import' THEN 1 END
$$;

CREATE FUNCTION set_updated_at() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;

CREATE TRIGGER transactions_updated_at BEFORE UPDATE ON transactions
FOR EACH ROW EXECUTE FUNCTION set_updated_at();

CREATE FUNCTION transaction_labels_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.source <> 'rule' THEN
        NEW.rule_id := NULL;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        IF NEW.txn_id <> OLD.txn_id THEN
            RAISE EXCEPTION 'a label cannot move from transaction % to %',
                OLD.txn_id, NEW.txn_id
                USING ERRCODE = 'check_violation';
        END IF;
        IF label_source_rank(NEW.source) < label_source_rank(OLD.source) THEN
            RAISE EXCEPTION
                'transaction % has a % label "%"; a % label cannot overwrite it',
                OLD.txn_id, OLD.source, OLD.label, NEW.source
                USING ERRCODE = 'check_violation',
                      CONSTRAINT = 'transaction_labels_source_precedence',
                      HINT = 'Sources rank human > rule > import.';
        END IF;
        NEW.updated_at := now();
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER transaction_labels_guard
BEFORE INSERT OR UPDATE ON transaction_labels
FOR EACH ROW EXECUTE FUNCTION transaction_labels_guard();

CREATE FUNCTION transaction_labels_log_insert() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_label_history
        (txn_id, operation, new_label, new_source, actor_id, rule_id, changed_at)
    SELECT txn_id, 'insert', label, source, labeled_by_id, rule_id, now()
    FROM new_rows;
    RETURN NULL;
END
$$;

CREATE FUNCTION transaction_labels_log_update() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_label_history
        (txn_id, operation, old_label, new_label, old_source, new_source,
         actor_id, rule_id, changed_at)
    SELECT n.txn_id, 'update', o.label, n.label, o.source, n.source,
           n.labeled_by_id, n.rule_id, now()
    FROM old_rows o JOIN new_rows n USING (txn_id)
    WHERE (o.label, o.source) IS DISTINCT FROM (n.label, n.source);
    RETURN NULL;
END
$$;

CREATE FUNCTION transaction_labels_log_delete() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO transaction_label_history
        (txn_id, operation, old_label, old_source, actor_id, changed_at)
    SELECT txn_id, 'delete', label, source,
           NULLIF(current_setting('labeling.actor_id', true), '')::integer, now()
    FROM old_rows;
    RETURN NULL;
END
$$;

CREATE TRIGGER transaction_labels_log_insert AFTER INSERT ON transaction_labels
REFERENCING NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION transaction_labels_log_insert();

CREATE TRIGGER transaction_labels_log_update AFTER UPDATE ON transaction_labels
REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
FOR EACH STATEMENT EXECUTE FUNCTION transaction_labels_log_update();

CREATE TRIGGER transaction_labels_log_delete AFTER DELETE ON transaction_labels
REFERENCING OLD TABLE AS old_rows
FOR EACH STATEMENT EXECUTE FUNCTION transaction_labels_log_delete();

CREATE FUNCTION transaction_label_history_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'transaction_label_history is append-only'
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER transaction_label_history_append_only
BEFORE UPDATE OR DELETE ON transaction_label_history
FOR EACH ROW EXECUTE FUNCTION transaction_label_history_append_only();
"""

REVERSE_SQL = r"""
DROP TRIGGER transaction_label_history_append_only ON transaction_label_history;
DROP FUNCTION transaction_label_history_append_only();
DROP TRIGGER transaction_labels_log_delete ON transaction_labels;
DROP TRIGGER transaction_labels_log_update ON transaction_labels;
DROP TRIGGER transaction_labels_log_insert ON transaction_labels;
DROP FUNCTION transaction_labels_log_delete();
DROP FUNCTION transaction_labels_log_update();
DROP FUNCTION transaction_labels_log_insert();
DROP TRIGGER transaction_labels_guard ON transaction_labels;
DROP FUNCTION transaction_labels_guard();
DROP TRIGGER transactions_updated_at ON transactions;
DROP FUNCTION set_updated_at();
DROP FUNCTION label_source_rank(text);
"""


def cascade_foreign_keys(apps, schema_editor):
    replace_foreign_key(
        schema_editor,
        "transaction_labels",
        "txn_id",
        "transactions (id)",
        "ON DELETE CASCADE",
    )
    replace_foreign_key(
        schema_editor,
        "transaction_labels",
        "label",
        "categories (name)",
        "ON UPDATE CASCADE",
    )


class Migration(migrations.Migration):
    dependencies = [("labeling", "0001_initial")]

    operations = [
        migrations.RunSQL(FUNCTIONS_SQL, REVERSE_SQL),
        migrations.RunPython(cascade_foreign_keys, migrations.RunPython.noop),
    ]
