-- A feature row's month is its transaction's posting month; otherwise a
-- temporal split would put the row on the wrong side.
select
    features.txn_id,
    features.ts_month,
    transactions.posted_on

from {{ ref('stg_ml_features') }} as features

inner join {{ source('finance', 'transactions') }} as transactions
    on features.txn_id = transactions.id

where features.ts_month <> date_trunc('month', transactions.posted_on)::date
