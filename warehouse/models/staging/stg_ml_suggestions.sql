{#-
    The ml_suggestions table is written by the suggestion service, which does
    not exist yet. Until it does, this model reads an empty placeholder with
    the table's columns (macros/empty_ml_suggestions.sql). To switch to the
    real table, change the line in `source` to
        select * from {{ source('finance', 'ml_suggestions') }}
-#}
with

source as (

    select * from ({{ empty_ml_suggestions() }}) as placeholder

),

renamed as (

    select
        -- ids
        id::bigint as suggestion_id,
        txn_id::bigint as txn_id,

        -- strings
        model_version::varchar as model_version,
        arm::varchar as experiment_arm,
        label::varchar as suggested_category,
        outcome::varchar as outcome,

        -- numerics
        confidence::double precision as confidence,

        -- json
        top_k::jsonb as top_k,

        -- timestamps
        created_at::timestamptz as suggested_at

    from source

)

select * from renamed
