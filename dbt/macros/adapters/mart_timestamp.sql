{#- A timestamp column of a mart. Snowflake-managed Iceberg tables take only microsecond timestamps without a
    stored offset (TIMESTAMP_LTZ(6) maps to Iceberg timestamptz); DuckDB keeps its timestamptz as it is. -#}
{% macro mart_timestamp(expr) -%}
    {{ return(adapter.dispatch('mart_timestamp', 'eventpipe')(expr)) }}
{%- endmacro %}

{% macro default__mart_timestamp(expr) -%}
    {{ expr }}
{%- endmacro %}

{% macro snowflake__mart_timestamp(expr) -%}
    cast({{ expr }} as timestamp_ltz(6))
{%- endmacro %}
