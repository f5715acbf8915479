with

source as (

    select * from {{ source('finance', 'ml_training_runs') }}

),

renamed as (

    select
        -- ids
        id as training_run_id,
        job_id,
        created_by_id as created_by_user_id,

        -- strings
        status,
        code_version,
        artifact_path,
        artifact_sha256,
        error,

        -- numerics
        duration_seconds,

        -- json
        params,
        label_counts,
        row_counts,
        metrics,

        -- dates and timestamps
        train_start,
        train_end,
        validation_start,
        validation_end,
        started_at,
        finished_at,
        created_at

    from source

)

select * from renamed
