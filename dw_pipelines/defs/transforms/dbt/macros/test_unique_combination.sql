{# A grain test without dbt_utils (the package hub is unreachable): fails with every repeated
   combination of `columns` and how many rows hold it. #}
{% test unique_combination(model, columns) %}
    select {{ columns | join(', ') }}, count(*) as rows_with_key
    from {{ model }}
    group by {{ columns | join(', ') }}
    having count(*) > 1
{% endtest %}
