with

source as (

    select * from {{ source('finance', 'transaction_labels') }}

),

renamed as (

    select
        -- ids
        txn_id,
        labeled_by_id as labeled_by_user_id,
        rule_id,

        -- strings
        label as category,
        source as label_source,

        -- timestamps
        created_at as labeled_at,
        updated_at as label_updated_at

    from source

)

select * from renamed
