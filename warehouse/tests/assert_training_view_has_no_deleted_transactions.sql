-- Training never sees a soft-deleted transaction.
select
    training.txn_id,
    transactions.deleted_at

from {{ ref('fct_training_view') }} as training

inner join {{ source('finance', 'transactions') }} as transactions
    on training.txn_id = transactions.id

where transactions.deleted_at is not null
