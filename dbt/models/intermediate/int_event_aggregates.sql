{#- Daily activity at two grains, in one table told apart by `grain`:
    'user_day' (per identified user and day) and 'event_type_day' (per event type and day).
    Revenue sums purchase amounts as sent (in the event's currency). -#}
{{ config(materialized='table') }}

with events as (

    select * from {{ ref('int_user_events') }}

),

per_user_day as (

    select
        'user_day' as grain,
        event_date,
        user_id,
        cast(null as {{ dbt.type_string() }}) as event_type,
        count(*) as event_count,
        count(distinct session_id) as session_count,
        count(distinct user_id) as user_count,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchase_count,
        coalesce(sum(case when event_type = 'purchase' then amount end), 0) as revenue
    from events
    where user_id is not null
    group by event_date, user_id

),

per_event_type_day as (

    select
        'event_type_day' as grain,
        event_date,
        cast(null as {{ dbt.type_string() }}) as user_id,
        event_type,
        count(*) as event_count,
        count(distinct session_id) as session_count,
        count(distinct user_id) as user_count,
        sum(case when event_type = 'purchase' then 1 else 0 end) as purchase_count,
        coalesce(sum(case when event_type = 'purchase' then amount end), 0) as revenue
    from events
    group by event_date, event_type

),

unioned as (

    select * from per_user_day
    union all
    select * from per_event_type_day

)

select
    {{ eventpipe.surrogate_key(['grain', 'event_date', 'user_id', 'event_type']) }} as aggregate_key,
    grain,
    event_date,
    user_id,
    event_type,
    event_count,
    session_count,
    user_count,
    purchase_count,
    cast(revenue as double) as revenue
from unioned
