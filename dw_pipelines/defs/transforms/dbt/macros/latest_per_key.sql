{# The newest row of every key, for streams that can hold a key more than once (appended lines,
   files delivered again): `order_by` decides which row is newest. #}
{% macro latest_per_key(relation, key, order_by) %}
    select * from (
        select
            *,
            row_number() over (partition by {{ key }} order by {{ order_by }}) as _dw_rank
        from {{ relation }}
    ) as ranked
    where _dw_rank = 1
{% endmacro %}
