-- depends_on: {{ ref('stg_users') }}
{#- One row per event, with foreign keys to the dim_users version valid at the event's time (null for anonymous
    events and events before the user's first trait event) and to dim_products. Incremental (delete+insert by
    event_id): a run loads the events new in stg_events, and re-resolves the events of users whose trait history
    changed in this run (a late identify can move an old event to another version). Clustered by event_date on
    Snowflake; on DuckDB each load writes its rows in event_date order, so row-group zone maps prune by date. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='event_id',
    on_schema_change='append_new_columns',
    **eventpipe.marts_config(cluster_by=['event_date'])
) }}

with events as (

    select * from {{ ref('int_user_events') }}
    {% if is_incremental() %}
    where dbt_loaded_at > {{ eventpipe.watermark('dbt_loaded_at', this) }}
       or user_id in (
           select user_id from {{ ref('stg_users') }}
           where dbt_loaded_at > {{ eventpipe.watermark('dbt_loaded_at', this) }}
       )
    {% endif %}

)

select
    e.event_id,
    e.event_type,
    {{ eventpipe.mart_timestamp('e.event_ts') }} as event_ts,
    e.event_date,
    e.event_hour,
    e.user_id,
    u.user_sk,
    e.session_id,
    e.product_id,
    p.product_sk,
    e.amount,
    e.currency,
    e.quantity,
    {{ eventpipe.mart_timestamp('e.ingested_at') }} as ingested_at,
    {{ eventpipe.mart_timestamp('e.dbt_loaded_at') }} as dbt_loaded_at
from events as e
left join {{ ref('dim_users') }} as u
    on e.user_id = u.user_id
   and e.event_ts >= u.valid_from
   and (u.valid_to is null or e.event_ts < u.valid_to)
left join {{ ref('dim_products') }} as p
    on e.product_id = p.product_id
order by e.event_date, e.event_ts
