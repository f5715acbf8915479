"""Delete and rename actions of the rule tables, declared in the schema.

Matches go with their transaction (``ON DELETE CASCADE``), so a hard delete
needs no help from Django; a rule follows a renamed category, as labels do.
In a migration of its own: Django creates the foreign keys it swaps at the
end of the migration that made them.
"""

from django.db import migrations

from labeling.migrations._schema import replace_foreign_key


def schema_actions(apps, schema_editor):
    replace_foreign_key(
        schema_editor,
        "label_rule_matches",
        "txn_id",
        "transactions (id)",
        "ON DELETE CASCADE",
    )
    replace_foreign_key(
        schema_editor,
        "label_rules",
        "category",
        "categories (name)",
        "ON UPDATE CASCADE",
    )


class Migration(migrations.Migration):
    dependencies = [("labeling", "0008_rule_roles")]

    operations = [migrations.RunPython(schema_actions, migrations.RunPython.noop)]
