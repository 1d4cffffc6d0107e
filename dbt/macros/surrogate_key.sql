{#- A deterministic surrogate key: md5 over the fields' text, with a marker for null so (a, null) != (null, a).
    Built on dbt's cross-database hash/concat/cast macros, so it needs no adapter-specific branch here. -#}
{% macro surrogate_key(fields) -%}
    {%- set parts = [] -%}
    {%- for field in fields -%}
        {%- do parts.append("coalesce(" ~ dbt.cast(field, dbt.type_string()) ~ ", '_eventpipe_null_')") -%}
        {%- if not loop.last %}{%- do parts.append("'|'") -%}{% endif -%}
    {%- endfor -%}
    {{ dbt.hash(dbt.concat(parts)) }}
{%- endmacro %}
