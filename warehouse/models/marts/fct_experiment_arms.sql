with

suggestions as (

    select * from {{ ref('fct_suggestions_eval') }}

),

final as (

    select
        experiment_arm || ':v' || model_version as arm_key,
        experiment_arm,
        model_version,
        count(*) as suggestions,
        count(*) filter (where is_evaluated) as evaluated,
        count(*) filter (where is_correct) as correct,
        case
            when count(*) filter (where is_evaluated) > 0
                then (count(*) filter (where is_correct))::double precision
                    / count(*) filter (where is_evaluated)
        end as accuracy,
        count(*) filter (where outcome = 'accepted') as accepted,
        count(*) filter (where outcome = 'overridden') as overridden,
        avg(confidence) as mean_confidence,
        min(suggested_at) as first_suggested_at,
        max(suggested_at) as last_suggested_at

    from suggestions

    group by experiment_arm, model_version

)

select * from final
