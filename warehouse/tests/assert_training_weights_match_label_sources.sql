-- Every training row carries its label's current source and that source's
-- weight from the `training_weights` variable.
select
    training.txn_id,
    training.label_source,
    labels.source as source_in_labels,
    training.sample_weight

from {{ ref('fct_training_view') }} as training

left join {{ source('finance', 'transaction_labels') }} as labels
    on training.txn_id = labels.txn_id

where
    training.label_source is distinct from labels.source
    or training.sample_weight is distinct from {{ training_weight('labels.source') }}
