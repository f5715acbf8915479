with

source as (

    select * from {{ source('finance', 'label_rules') }}

),

renamed as (

    select
        -- ids
        id as rule_id,
        created_by_id as created_by_user_id,

        -- strings
        name as rule_name,
        category,
        field as match_field,
        operator as match_operator,
        pattern as match_pattern,
        sign as amount_sign,
        account,

        -- numerics
        amount_min,
        amount_max,
        day_from,
        day_to,
        priority,

        -- booleans
        enabled as is_enabled,
        may_override_import,

        -- timestamps
        created_at,
        updated_at,
        conditions_changed_at

    from source

)

select * from renamed
