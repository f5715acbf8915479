"""Schema helpers shared by migrations (the loader skips ``_`` modules)."""


def replace_foreign_key(schema_editor, table, column, references, actions):
    """Recreate the foreign key on ``table.column`` with extra ``actions``.

    Django 5.2 cannot declare ``ON DELETE`` / ``ON UPDATE`` in the schema, so
    the constraint Django created is swapped for one that carries them. The
    new constraint is checked immediately, so a bad write fails at the
    statement that made it rather than at commit.
    """
    with schema_editor.connection.cursor() as cursor:
        constraints = schema_editor.connection.introspection.get_constraints(
            cursor, table
        )
    for name, info in constraints.items():
        if info["foreign_key"] and info["columns"] == [column]:
            schema_editor.execute(
                f"ALTER TABLE {table} DROP CONSTRAINT {schema_editor.quote_name(name)}"
            )
    schema_editor.execute(
        f"ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_fk "
        f"FOREIGN KEY ({column}) REFERENCES {references} {actions}"
    )
