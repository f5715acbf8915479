{{
    config(
        materialized='incremental',
        unique_key='suggestion_id',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns',
    )
}}

with

suggestions as (

    select * from {{ ref('stg_ml_suggestions') }}

),

labels as (

    select * from {{ ref('stg_transaction_labels') }}

),

{% if is_incremental() %}

watermarks as (

    -- The hour of slack covers label writes that committed after the last
    -- build but carry an earlier timestamp (now() is the transaction start).
    select
        coalesce(max(suggestion_id), 0) as last_suggestion_id,
        coalesce(max(label_updated_at), '-infinity'::timestamptz)
            - interval '1 hour' as last_label_update

    from {{ this }}

),

changed as (

    -- New suggestions, and older ones whose transaction was labeled or
    -- relabeled since the last build. A deleted label is only noticed by a
    -- full refresh.
    select suggestions.suggestion_id

    from suggestions

    where suggestions.suggestion_id > (select last_suggestion_id from watermarks)

    union

    select suggestions.suggestion_id

    from suggestions

    inner join labels
        on suggestions.txn_id = labels.txn_id

    where labels.label_updated_at > (select last_label_update from watermarks)

),

{% endif %}

final as (

    select
        suggestions.suggestion_id,
        suggestions.txn_id,
        suggestions.model_version,
        suggestions.experiment_arm,
        suggestions.suggested_category,
        suggestions.confidence,
        suggestions.outcome,
        suggestions.suggested_at,
        date_trunc('month', suggestions.suggested_at at time zone 'UTC')::date
            as suggested_month,
        labels.category as final_category,
        labels.label_source as final_label_source,
        labels.label_updated_at,

        -- Only a person's label is ground truth for evaluation; rule and
        -- import labels may themselves be wrong.
        coalesce(labels.label_source = 'human', false) as is_evaluated,
        case
            when labels.label_source = 'human'
                then suggestions.suggested_category = labels.category
        end as is_correct

    from suggestions

    left join labels
        on suggestions.txn_id = labels.txn_id

    {% if is_incremental() %}
    where suggestions.suggestion_id in (select suggestion_id from changed)
    {% endif %}

)

select * from final
