{{
    config(
        indexes=[
            {'columns': ['ts_month', 'txn_id']},
            {'columns': ['txn_id'], 'unique': True},
        ],
    )
}}

with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

labels as (

    select * from {{ ref('stg_transaction_labels') }}

),

features as (

    select * from {{ ref('stg_ml_features') }}

),

final as (

    select
        features.txn_id,
        features.ts_month,
        transactions.posted_on,
        features.account,

        -- features, as in docs/features.md
        features.merchant,
        features.tokens,
        features.amount,
        features.abs_amount,
        features.log_amount,
        features.is_credit,
        features.is_round_amount,
        features.dow,
        features.is_weekend,
        features.day_of_month,
        features.month,
        features.is_subscription,
        features.days_since_prev_merchant,
        features.merchant_prior_count,
        features.amount_deviation,
        features.feature_version,

        -- the label
        labels.category as label,
        labels.label_source,
        {{ training_weight('labels.label_source') }} as sample_weight,
        labels.label_updated_at

    from labels

    -- Inner joins: soft-deleted transactions drop out here, and a labeled
    -- transaction without features yet waits for the next feature build.
    inner join transactions
        on labels.txn_id = transactions.txn_id

    inner join features
        on labels.txn_id = features.txn_id

)

select * from final
