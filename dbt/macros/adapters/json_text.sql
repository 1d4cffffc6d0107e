{#- The value at key `key` of a JSON text column, as text (null when absent or not JSON). -#}
{% macro json_text(column, key) -%}
    {{ return(adapter.dispatch('json_text', 'eventpipe')(column, key)) }}
{%- endmacro %}

{% macro duckdb__json_text(column, key) -%}
    json_extract_string(try_cast({{ column }} as json), '$.{{ key }}')
{%- endmacro %}

{% macro snowflake__json_text(column, key) -%}
    try_parse_json({{ column }}):"{{ key }}"::varchar
{%- endmacro %}

{% macro default__json_text(column, key) -%}
    {{ exceptions.raise_compiler_error("json_text: no implementation for adapter " ~ adapter.type()) }}
{%- endmacro %}
