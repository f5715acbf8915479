with

transactions as (

    select * from {{ ref('stg_transactions') }}

),

features as (

    select * from {{ ref('stg_ml_features') }}

),

labels as (

    select * from {{ ref('stg_transaction_labels') }}

),

merchant_transactions as (

    select
        features.merchant,
        transactions.posted_on,
        features.abs_amount,
        features.is_subscription,
        labels.category

    from features

    inner join transactions
        on features.txn_id = transactions.txn_id

    left join labels
        on features.txn_id = labels.txn_id

),

activity as (

    select
        merchant,
        count(*) as transaction_count,
        count(category) as labeled_count,
        min(posted_on) as first_seen_on,
        max(posted_on) as last_seen_on,
        avg(is_subscription::integer) as subscription_share,
        bool_or(is_subscription) as has_subscription,
        percentile_cont(0.5) within group (order by abs_amount) as median_abs_amount

    from merchant_transactions

    group by merchant

),

category_counts as (

    select
        merchant,
        category,
        count(*) as label_count

    from merchant_transactions

    where category is not null

    group by merchant, category

),

label_distributions as (

    select
        merchant,
        jsonb_object_agg(category, label_count) as label_distribution

    from category_counts

    group by merchant

),

top_categories as (

    -- Ties go to the alphabetically first category, so rebuilds agree.
    select distinct on (merchant)
        merchant,
        category as top_category,
        label_count as top_category_count

    from category_counts

    order by merchant, label_count desc, category

),

final as (

    select
        activity.merchant,
        activity.transaction_count,
        activity.first_seen_on,
        activity.last_seen_on,
        activity.labeled_count,
        activity.labeled_count::double precision
            / activity.transaction_count as labeled_share,
        coalesce(
            label_distributions.label_distribution, '{}'::jsonb
        ) as label_distribution,
        top_categories.top_category,
        top_categories.top_category_count::double precision
            / nullif(activity.labeled_count, 0) as top_category_share,
        activity.subscription_share::double precision as subscription_share,
        activity.has_subscription,
        round(activity.median_abs_amount::numeric, 2) as typical_abs_amount

    from activity

    left join label_distributions
        on activity.merchant = label_distributions.merchant

    left join top_categories
        on activity.merchant = top_categories.merchant

)

select * from final
