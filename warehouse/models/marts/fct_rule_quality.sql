-- One row per labeling rule: what it matched at its latest run, how often a
-- person agreed with it where one labeled the transaction, and its runs.
-- The same figures as the admin and the API (labeling.rule_runs).
with

rules as (

    select * from {{ ref('stg_label_rules') }}

),

matches as (

    select * from {{ ref('stg_label_rule_matches') }}

),

transactions as (

    select * from {{ ref('stg_transactions') }}

),

labels as (

    select * from {{ ref('stg_transaction_labels') }}

),

runs as (

    select * from {{ ref('stg_label_rule_runs') }}

),

live_matches as (

    select
        matches.rule_id,
        labels.label_source = 'human' as is_human_labeled,
        labels.label_source = 'human'
        and labels.category = rules.category as is_human_agreed

    from matches

    inner join transactions
        on matches.txn_id = transactions.txn_id

    inner join rules
        on matches.rule_id = rules.rule_id

    left join labels
        on matches.txn_id = labels.txn_id

),

match_counts as (

    select
        rule_id,
        count(*) as coverage,
        count(*) filter (where is_human_labeled) as human_labeled,
        count(*) filter (where is_human_agreed) as human_agreed

    from live_matches

    group by rule_id

),

rule_labels as (

    select
        rule_id,
        count(*) as rule_label_count

    from labels

    where label_source = 'rule' and rule_id is not null

    group by rule_id

),

run_summary as (

    select
        rule_id,
        count(*) as run_count,
        max(finished_at) filter (where status = 'succeeded') as last_run_at,
        max(finished_at) filter (
            where status = 'succeeded' and not is_dry_run
        ) as last_applied_at

    from runs

    group by rule_id

),

final as (

    select
        rules.rule_id,
        rules.rule_name,
        rules.category,
        rules.priority,
        rules.is_enabled,
        rules.may_override_import,
        coalesce(match_counts.coverage, 0) as coverage,
        coalesce(match_counts.human_labeled, 0) as human_labeled,
        coalesce(match_counts.human_agreed, 0) as human_agreed,
        match_counts.human_agreed::numeric
        / nullif(match_counts.human_labeled, 0) as precision,
        coalesce(rule_labels.rule_label_count, 0) as rule_label_count,
        coalesce(run_summary.run_count, 0) as run_count,
        run_summary.last_run_at,
        run_summary.last_applied_at,
        coalesce(
            run_summary.last_run_at >= rules.conditions_changed_at, false
        ) as is_measured

    from rules

    left join match_counts
        on rules.rule_id = match_counts.rule_id

    left join rule_labels
        on rules.rule_id = rule_labels.rule_id

    left join run_summary
        on rules.rule_id = run_summary.rule_id

)

select * from final
