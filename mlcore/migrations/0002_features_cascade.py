"""Hard-deleting a transaction removes its feature row in the schema."""

from django.db import migrations

from labeling.migrations._schema import replace_foreign_key


def cascade(apps, schema_editor):
    replace_foreign_key(
        schema_editor, "ml_features", "txn_id", "transactions (id)", "ON DELETE CASCADE"
    )


class Migration(migrations.Migration):
    dependencies = [("mlcore", "0001_initial"), ("labeling", "0002_label_rules")]

    operations = [migrations.RunPython(cascade, migrations.RunPython.noop)]
