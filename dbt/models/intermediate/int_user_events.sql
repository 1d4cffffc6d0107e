{#- Every event, with the traits its user had at the event's time (null for anonymous events and for events
    before the user's first signup/identify). -#}
select
    e.event_id,
    e.event_type,
    e.event_ts,
    e.event_date,
    e.event_hour,
    e.user_id,
    e.session_id,
    e.product_id,
    e.amount,
    e.currency,
    e.quantity,
    v.email,
    v.country,
    v.plan,
    v.valid_from as user_version_valid_from,
    e.ingested_at,
    e.dbt_loaded_at
from {{ ref('stg_events') }} as e
left join {{ ref('int_user_versions') }} as v
    on e.user_id = v.user_id
   and e.event_ts >= v.valid_from
   and (v.valid_to is null or e.event_ts < v.valid_to)
