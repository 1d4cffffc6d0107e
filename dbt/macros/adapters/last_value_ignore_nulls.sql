{#- The last non-null value of `expr` over a window: DuckDB puts IGNORE NULLS inside the call, Snowflake after it. -#}
{% macro last_value_ignore_nulls(expr, window) -%}
    {{ return(adapter.dispatch('last_value_ignore_nulls', 'eventpipe')(expr, window)) }}
{%- endmacro %}

{% macro duckdb__last_value_ignore_nulls(expr, window) -%}
    last_value({{ expr }} ignore nulls) over ({{ window }})
{%- endmacro %}

{% macro default__last_value_ignore_nulls(expr, window) -%}
    last_value({{ expr }}) ignore nulls over ({{ window }})
{%- endmacro %}
