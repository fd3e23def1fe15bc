{# Reading the JSON columns nested BigQuery records land as (`service`, `credits`, ...), in each
   warehouse's own JSON functions. #}

{# The text of `key` in a JSON object column. #}
{% macro json_field(column, key) -%}
    {{ return(adapter.dispatch('json_field')(column, key)) }}
{%- endmacro %}

{% macro default__json_field(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}

{% macro bigquery__json_field(column, key) -%}
    json_value({{ column }}, '$.{{ key }}')
{%- endmacro %}

{# The sum of the numbers at `key` over a JSON list of objects (0 for an empty or NULL list). #}
{% macro json_list_sum(column, key) -%}
    {{ return(adapter.dispatch('json_list_sum')(column, key)) }}
{%- endmacro %}

{% macro default__json_list_sum(column, key) -%}
    (select coalesce(sum(cast(item ->> '{{ key }}' as double)), 0)
     from (select unnest(cast({{ column }} as json[])) as item) as items)
{%- endmacro %}

{% macro postgres__json_list_sum(column, key) -%}
    (select coalesce(sum((item ->> '{{ key }}')::double precision), 0)
     from jsonb_array_elements({{ column }}::jsonb) as item)
{%- endmacro %}

{% macro bigquery__json_list_sum(column, key) -%}
    (select coalesce(sum(cast(json_value(item, '$.{{ key }}') as float64)), 0)
     from unnest(json_query_array({{ column }}, '$')) as item)
{%- endmacro %}
