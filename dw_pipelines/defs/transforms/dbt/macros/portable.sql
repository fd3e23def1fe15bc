{# The few expressions whose SQL differs between the warehouses (DuckDB and PostgreSQL share the
   default; BigQuery has its own), so every model reads the same on each. Use dbt's cross-database
   macros (`dbt.date_trunc`, `dbt.dateadd`, ...) for what they cover. #}

{# UTC calendar day of a timestamp with time zone, whatever the session's time zone is. #}
{% macro utc_date(column) -%}
    {{ return(adapter.dispatch('utc_date', 'dw_transforms')(column)) }}
{%- endmacro %}

{% macro default__utc_date(column) -%}
    cast(({{ column }}) at time zone 'UTC' as date)
{%- endmacro %}

{% macro bigquery__utc_date(column) -%}
    date({{ column }}, 'UTC')
{%- endmacro %}

{# The text of a top-level key of a JSON document (null when absent). #}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'dw_transforms')(column, key)) }}
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    ({{ column }} ->> '{{ key }}')
{%- endmacro %}

{% macro bigquery__json_text(column, key) -%}
    json_value({{ column }}, '$.{{ key }}')
{%- endmacro %}

{# An exact decimal with this precision and scale: BigQuery's NUMERIC holds 29 digits before the
   point and 9 after, BIGNUMERIC more. #}
{% macro decimal_type(precision, scale) -%}
    {{ return(adapter.dispatch('decimal_type', 'dw_transforms')(precision, scale)) }}
{%- endmacro %}

{% macro default__decimal_type(precision, scale) -%}
    decimal({{ precision }}, {{ scale }})
{%- endmacro %}

{% macro bigquery__decimal_type(precision, scale) -%}
    {%- if scale <= 9 and precision - scale <= 29 -%}
        numeric({{ precision }}, {{ scale }})
    {%- else -%}
        bignumeric({{ precision }}, {{ scale }})
    {%- endif -%}
{%- endmacro %}
