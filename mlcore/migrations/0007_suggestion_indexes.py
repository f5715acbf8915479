"""Drop the single-column indexes of the suggestions' two foreign keys.

Each key leads a composite index already (``ml_suggestions_txn_idx``,
``ml_suggestions_version_idx``); the extra indexes only slowed down the
insert of every suggestion. Only the indexes go: an ``AlterField`` would
also replace the foreign key constraints, one of which (``ON DELETE
CASCADE`` to transactions) is written by hand in 0005.
"""

import django.db.models.deletion
from django.db import migrations, models

INDEXES = {
    "ml_suggestions_txn_id_de470914": "txn_id",
    "ml_suggestions_model_version_id_2808ee36": "model_version_id",
}


class Migration(migrations.Migration):
    dependencies = [
        ("labeling", "0009_rule_cascades"),
        ("mlcore", "0006_registry_roles"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            database_operations=[
                migrations.RunSQL(
                    f'DROP INDEX IF EXISTS "{name}"',
                    f'CREATE INDEX IF NOT EXISTS "{name}" ON ml_suggestions ({column})',
                )
                for name, column in INDEXES.items()
            ],
            state_operations=[
                migrations.AlterField(
                    model_name="suggestion",
                    name="model_version",
                    field=models.ForeignKey(
                        db_index=False,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="suggestions",
                        to="mlcore.modelversion",
                    ),
                ),
                migrations.AlterField(
                    model_name="suggestion",
                    name="txn",
                    field=models.ForeignKey(
                        db_column="txn_id",
                        db_index=False,
                        on_delete=django.db.models.deletion.DO_NOTHING,
                        related_name="suggestions",
                        to="labeling.transaction",
                    ),
                ),
            ],
        ),
    ]
