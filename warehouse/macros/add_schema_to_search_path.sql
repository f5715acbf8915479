{#-
    Append the models' schema to the database's default search_path, so that
    new sessions (psql, notebooks, the training code) can write
    `select * from fct_training_view` without a schema.

    ALTER DATABASE needs the database's owner. A role without that right gets
    a warning instead of a failed run; the README gives the statement to run
    by hand.
-#}
{% macro add_schema_to_search_path() %}
do $body$
begin
    execute format(
        'alter database %I set search_path = "$user", public, %I',
        current_database(),
        {{ dbt.string_literal(target.schema) }}
    );
exception when insufficient_privilege then
    raise warning 'could not add schema % to the search_path of database %: %',
        {{ dbt.string_literal(target.schema) }}, current_database(), sqlerrm;
end
$body$
{% endmacro %}
