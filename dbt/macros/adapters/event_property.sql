{#- A typed event property: the promoted column when the pipeline schema promoted it (var promoted_columns),
    otherwise unpacked from the `properties` JSON text. `type` is one of string, double, bigint (DOUBLE is a
    64-bit float on DuckDB and a synonym of FLOAT on Snowflake; dbt's type_float() is 32-bit on DuckDB). -#}
{% macro event_property(name, type) -%}
    {%- set sql_type = {'string': dbt.type_string(), 'double': 'double', 'bigint': dbt.type_bigint()}[type] -%}
    {%- if name in var('promoted_columns') -%}
        cast({{ name }} as {{ sql_type }})
    {%- else -%}
        {{ dbt.safe_cast(eventpipe.json_text('properties', name), sql_type) }}
    {%- endif -%}
{%- endmacro %}
