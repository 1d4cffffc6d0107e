{#- User traits as sent by signup and identify events: one row per trait event (a trait absent from an event is
    null here; int_user_versions carries the last known value forward). -#}
select
    user_id,
    {{ eventpipe.json_text('properties', 'email') }} as email,
    {{ eventpipe.json_text('properties', 'country') }} as country,
    {{ eventpipe.json_text('properties', 'plan') }} as plan,
    event_ts as changed_at,
    event_type as change_source,
    event_id,
    ingested_at,
    dbt_loaded_at
from {{ ref('stg_events') }}
where event_type in ('signup', 'identify')
  and user_id is not null
