{#- Model config of a mart: on Snowflake, an Iceberg table on the external volume named by the vars
    (snowflake_marts_table_format: iceberg | default) and the given clustering keys; on other adapters nothing (DuckDB writes native tables);
    on every adapter an enforced contract (var enforce_mart_contracts). Vars cannot be read inside
    dbt_project.yml, hence a macro the models call: {{ config(**eventpipe.marts_config(cluster_by=[...])) }} -#}
{% macro marts_config(cluster_by=none) -%}
    {#- Every mart's columns and types are a contract (_models.yml), on every adapter. -#}
    {%- set settings = {'contract': {'enforced': var('enforce_mart_contracts')}} -%}
    {%- if target.type == 'snowflake' -%}
        {%- if cluster_by -%}
            {%- do settings.update({'cluster_by': cluster_by}) -%}
        {%- endif -%}
        {%- if var('snowflake_marts_table_format') == 'iceberg' -%}
            {%- do settings.update({
                'table_format': 'iceberg',
                'external_volume': var('snowflake_external_volume'),
                'base_location_root': var('snowflake_base_location_root'),
            }) -%}
        {%- endif -%}
    {%- endif -%}
    {{ return(settings) }}
{%- endmacro %}
