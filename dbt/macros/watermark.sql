{#- The newest value of `column` in `relation`, or the epoch when the relation is empty: an incremental filter
    `x > watermark(...)` then takes everything on a first load instead of nothing (x > null is never true). -#}
{% macro watermark(column, relation) -%}
    (select coalesce(max({{ column }}), cast('1970-01-01 00:00:00' as {{ dbt.type_timestamp() }})) from {{ relation }})
{%- endmacro %}
