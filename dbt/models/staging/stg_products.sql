{#- Product attributes as sent by product_updated events: one row per update. -#}
select
    product_id,
    {{ eventpipe.json_text('properties', 'name') }} as name,
    {{ eventpipe.json_text('properties', 'category') }} as category,
    {{ dbt.safe_cast(eventpipe.json_text('properties', 'price'), 'double') }} as price,
    event_ts as updated_at,
    event_id,
    dbt_loaded_at
from {{ ref('stg_events') }}
where event_type = 'product_updated'
  and product_id is not null
