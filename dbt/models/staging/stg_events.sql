{#- One row per event_id, the earliest ingest winning; typed columns, properties unpacked per event type.
    Incremental: each run reads the raw rows ingested since the newest loaded one (minus a lookback, since
    consumers' clocks differ) and appends the event_ids not loaded yet. A table, not a view, so readers of
    warehouse.duckdb (GX, dashboard) need no iceberg extension. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='append_new_columns',
) }}

with raw_events as (

    select * from {{ source('eventpipe', 'raw_events') }}
    {% if is_incremental() %}
    where ingested_at > {{ dbt.dateadd('minute', -1 * var('ingest_lookback_minutes'),
                                       eventpipe.watermark('ingested_at', this)) }}
    {% endif %}

),

ranked as (

    select
        *,
        row_number() over (
            partition by event_id
            order by ingested_at, shard_id, sequence_number
        ) as ingest_rank
    from raw_events

),

first_ingests as (

    select * from ranked as r
    where ingest_rank = 1
    {% if is_incremental() %}
      and not exists (select 1 from {{ this }} as loaded where loaded.event_id = r.event_id)
    {% endif %}

)

select
    event_id,
    event_type,
    event_ts,
    event_date,
    event_hour,
    user_id,
    session_id,
    case when event_type in ('product_view', 'add_to_cart', 'purchase', 'product_updated')
        then {{ eventpipe.event_property('product_id', 'string') }} end as product_id,
    case when event_type = 'purchase'
        then {{ eventpipe.event_property('amount', 'double') }} end as amount,
    case when event_type = 'purchase'
        then {{ eventpipe.event_property('currency', 'string') }} end as currency,
    case when event_type in ('add_to_cart', 'purchase')
        then {{ eventpipe.event_property('quantity', 'bigint') }} end as quantity,
    properties,
    schema_version,
    ingested_at,
    job_id,
    shard_id,
    sequence_number,
    {{ dbt.current_timestamp() }} as dbt_loaded_at
from first_ingests
