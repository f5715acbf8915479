{#-
    An empty relation with the columns of the future ml_suggestions table, so
    that the models and tests over suggestions exist before the table does.
    Read by stg_ml_suggestions only.
-#}
{% macro empty_ml_suggestions() %}
    select
        null::bigint as id,
        null::bigint as txn_id,
        null::varchar(64) as model_version,
        null::varchar(32) as arm,
        null::jsonb as top_k,
        null::varchar(64) as label,
        null::double precision as confidence,
        null::timestamptz as created_at,
        null::varchar(16) as outcome
    where false
{% endmacro %}
