with

source as (

    select * from {{ source('finance', 'label_rule_matches') }}

),

renamed as (

    select
        -- ids
        id as rule_match_id,
        rule_id,
        txn_id

    from source

)

select * from renamed
