{#- A typed event property: the promoted column when the pipeline schema promoted it (var promoted_columns),
    otherwise unpacked from the `properties` JSON text. `type` is a dbt cross-database type name:
    string, float, bigint. -#}
{% macro event_property(name, type) -%}
    {%- set sql_type = {'string': dbt.type_string(), 'float': dbt.type_float(), 'bigint': dbt.type_bigint()}[type] -%}
    {%- if name in var('promoted_columns') -%}
        cast({{ name }} as {{ sql_type }})
    {%- else -%}
        {{ dbt.safe_cast(eventpipe.json_text('properties', name), sql_type) }}
    {%- endif -%}
{%- endmacro %}
