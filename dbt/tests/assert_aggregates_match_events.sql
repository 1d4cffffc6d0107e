-- The per-event-type aggregates add up to the events: as many events and as much revenue per day.
with from_aggregates as (
    select event_date, sum(event_count) as events, sum(revenue) as revenue
    from {{ ref('int_event_aggregates') }}
    where grain = 'event_type_day'
    group by event_date
),
from_events as (
    select event_date, count(*) as events,
           coalesce(sum(case when event_type = 'purchase' then amount end), 0) as revenue
    from {{ ref('fact_events') }}
    group by event_date
)
select coalesce(a.event_date, e.event_date) as event_date, a.events, e.events, a.revenue, e.revenue
from from_aggregates as a
full outer join from_events as e on a.event_date = e.event_date
where a.events is null or e.events is null or a.events <> e.events or abs(a.revenue - e.revenue) > 0.0001
