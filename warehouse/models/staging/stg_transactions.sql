with

source as (

    select * from {{ source('finance', 'transactions') }}

),

renamed as (

    select
        -- ids
        id as txn_id,
        external_id,

        -- strings
        account,
        description,
        currency,

        -- numerics
        amount::numeric(12, 2) as amount,

        -- dates and timestamps
        posted_on,
        created_at as imported_at,
        updated_at

    from source

    -- Soft-deleted transactions are gone as far as analysis and training go.
    where deleted_at is null

)

select * from renamed
