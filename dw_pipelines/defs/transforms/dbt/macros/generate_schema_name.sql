{# Models land in the schema their folder names (`staging`, `marts`), not `<target>_staging`:
   the raw streams already own one schema per source, and these are two more layers beside them. #}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {%- if custom_schema_name is none -%}{{ target.schema }}{%- else -%}{{ custom_schema_name | trim }}{%- endif -%}
{%- endmacro %}
