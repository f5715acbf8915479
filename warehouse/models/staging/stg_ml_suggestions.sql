with

source as (

    select * from {{ source('finance', 'ml_suggestions') }}

),

renamed as (

    select
        -- ids
        id::bigint as suggestion_id,
        txn_id::bigint as txn_id,
        model_version_id::bigint as model_version,

        -- strings
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
