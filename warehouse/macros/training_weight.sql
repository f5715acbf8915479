{#-
    The training sample weight of a label, by its source, from the
    `training_weights` variable in dbt_project.yml. Unknown sources get null,
    which the training view's tests refuse.
-#}
{% macro training_weight(source_column) %}
    (
        case {{ source_column }}
            {%- for source, weight in var('training_weights').items() %}
            when {{ dbt.string_literal(source) }} then {{ weight }}
            {%- endfor %}
        end
    )::double precision
{% endmacro %}
