with

source as (

    select * from {{ source('finance', 'ml_features') }}

),

renamed as (

    -- Feature names stay as in docs/features.md: training code uses them.
    select
        -- ids
        txn_id,

        -- strings
        account,
        merchant,
        tokens,

        -- numerics
        amount::numeric(12, 2) as amount,
        abs_amount::numeric(12, 2) as abs_amount,
        log_amount,
        dow,
        day_of_month,
        month,
        days_since_prev_merchant,
        merchant_prior_count,
        amount_deviation,
        feature_version,

        -- booleans
        is_credit,
        is_round_amount,
        is_weekend,
        is_subscription,

        -- dates and timestamps
        ts_month,
        computed_at as features_computed_at

    from source

)

select * from renamed
