-- Revenue is never negative: no purchase with a negative amount, no aggregate with negative revenue.
select 'fact_events' as relation, event_id as row_key, amount as value
from {{ ref('fact_events') }}
where event_type = 'purchase' and amount < 0
union all
select 'int_event_aggregates', aggregate_key, revenue
from {{ ref('int_event_aggregates') }}
where revenue < 0
