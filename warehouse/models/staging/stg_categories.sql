with

source as (

    select * from {{ source('finance', 'categories') }}

),

renamed as (

    select
        -- ids
        id as category_id,
        parent_id as parent_category_id,

        -- strings
        name as category_name,

        -- booleans
        is_active,

        -- timestamps
        created_at

    from source

)

select * from renamed
