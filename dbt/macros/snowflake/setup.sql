{#- Snowflake setup for the snowflake target (plan tasks 22.1, 22.2), as `dbt run-operation` macros:

      dbt run-operation setup_snowflake --target snowflake             # everything below, in order
      dbt run-operation create_schemas --target snowflake              # database + raw/staging/intermediate/marts
      dbt run-operation create_external_volume --target snowflake      # where the Iceberg files live (S3)
      dbt run-operation create_catalog_integration --target snowflake  # how Snowflake finds the raw tables
      dbt run-operation create_source_iceberg_tables --target snowflake  # raw_events(_rejected) as Iceberg tables

    Names, URLs and ARNs come from vars (dbt_project.yml). Every macro takes dry_run=true to print its SQL
    instead of running it. Each statement is idempotent (IF NOT EXISTS), so setup can run on every deploy. -#}

{% macro _run_setup_statements(statements, dry_run) %}
    {%- for sql in statements -%}
        {%- if dry_run -%}
            {{ log(sql ~ ";", info=true) }}
        {%- else -%}
            {{ log("running: " ~ (sql | replace("\n", " ") | truncate(120)), info=true) }}
            {%- do run_query(sql) -%}
        {%- endif -%}
    {%- endfor -%}
{% endmacro %}

{% macro create_schemas(dry_run=false) %}
    {%- set statements = ["create database if not exists " ~ target.database] -%}
    {%- for schema in [var('snowflake_raw_schema'), 'staging', 'intermediate', 'marts'] -%}
        {%- do statements.append("create schema if not exists " ~ target.database ~ "." ~ schema) -%}
    {%- endfor -%}
    {{ eventpipe._run_setup_statements(statements, dry_run) }}
{% endmacro %}

{% macro create_external_volume(dry_run=false) %}
    {%- set sql -%}
create external volume if not exists {{ var('snowflake_external_volume') }}
    storage_locations = (
        (
            name = '{{ var('snowflake_external_volume') }}_s3'
            storage_provider = 'S3'
            storage_base_url = '{{ var('snowflake_storage_base_url') }}'
            storage_aws_role_arn = '{{ var('snowflake_storage_role_arn') }}'
        )
    )
    allow_writes = true
    {%- endset -%}
    {{ eventpipe._run_setup_statements([sql], dry_run) }}
{% endmacro %}

{% macro create_catalog_integration(dry_run=false) %}
    {%- set sql -%}
create catalog integration if not exists {{ var('snowflake_catalog_integration') }}
    catalog_source = GLUE
    catalog_namespace = '{{ var('eventpipe_namespace') }}'
    table_format = ICEBERG
    glue_aws_role_arn = '{{ var('snowflake_glue_role_arn') }}'
    glue_catalog_id = '{{ var('snowflake_glue_catalog_id') }}'
    glue_region = '{{ var('snowflake_glue_region') }}'
    enabled = true
    {%- endset -%}
    {{ eventpipe._run_setup_statements([sql], dry_run) }}
{% endmacro %}

{% macro create_source_iceberg_tables(dry_run=false) %}
    {%- set statements = [] -%}
    {%- for table in ['raw_events', 'raw_events_rejected'] -%}
        {%- set sql -%}
create iceberg table if not exists {{ target.database }}.{{ var('snowflake_raw_schema') }}.{{ table }}
    external_volume = '{{ var('snowflake_external_volume') }}'
    catalog = '{{ var('snowflake_catalog_integration') }}'
    catalog_namespace = '{{ var('eventpipe_namespace') }}'
    catalog_table_name = '{{ table }}'
    auto_refresh = true
        {%- endset -%}
        {%- do statements.append(sql) -%}
    {%- endfor -%}
    {{ eventpipe._run_setup_statements(statements, dry_run) }}
{% endmacro %}

{% macro setup_snowflake(dry_run=false) %}
    {{ eventpipe.create_schemas(dry_run) }}
    {{ eventpipe.create_external_volume(dry_run) }}
    {{ eventpipe.create_catalog_integration(dry_run) }}
    {{ eventpipe.create_source_iceberg_tables(dry_run) }}
{% endmacro %}
