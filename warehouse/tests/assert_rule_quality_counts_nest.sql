-- Agreed <= human-labeled <= coverage, and precision is their ratio in [0, 1].
select *

from {{ ref('fct_rule_quality') }}

where human_agreed > human_labeled
    or human_labeled > coverage
    or precision < 0
    or precision > 1
    or (human_labeled = 0) != (precision is null)
