{# Models land in the schema their folder names (`staging`, `marts`), not `<target>_staging`:
   the raw streams already own one schema per source, and these are two more layers beside them.
   On BigQuery the warehouse URL's dataset prefix comes first (`<prefix>_marts`), as it does for
   the streams' datasets (`<prefix>_demo_shop`). #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ env_var('DW_DBT_SCHEMA_PREFIX', '') }}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
