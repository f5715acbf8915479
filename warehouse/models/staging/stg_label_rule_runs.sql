with

source as (

    select * from {{ source('finance', 'label_rule_runs') }}

),

renamed as (

    select
        -- ids
        id as rule_run_id,
        rule_id,
        triggered_by_id as triggered_by_user_id,

        -- strings
        trigger,
        status,
        error,

        -- numerics
        examined,
        matched,
        labeled,
        unchanged,
        skipped_higher_source,
        skipped_import,
        conflicts,
        overruled,

        -- booleans
        dry_run as is_dry_run,

        -- timestamps
        created_at,
        started_at,
        finished_at

    from source

)

select * from renamed
