{#- Products with their latest attributes from product_updated events, plus the products that events name but
    no update described yet (is_inferred, attributes null), so every fact's product_id finds its row. -#}
{{ config(materialized='table', **eventpipe.marts_config()) }}

with updates as (

    select * from {{ ref('stg_products') }}

),

ranked as (

    select
        *,
        row_number() over (partition by product_id order by updated_at desc, event_id desc) as recency,
        min(updated_at) over (partition by product_id) as first_updated_at,
        count(*) over (partition by product_id) as update_count
    from updates

),

described as (

    select
        product_id,
        name,
        category,
        price,
        {{ eventpipe.mart_timestamp('first_updated_at') }} as first_updated_at,
        {{ eventpipe.mart_timestamp('updated_at') }} as last_updated_at,
        update_count,
        false as is_inferred
    from ranked
    where recency = 1

),

inferred as (

    select
        product_id,
        cast(null as {{ dbt.type_string() }}) as name,
        cast(null as {{ dbt.type_string() }}) as category,
        cast(null as double) as price,
        {{ eventpipe.mart_timestamp('cast(null as ' ~ dbt.type_timestamp() ~ ')') }} as first_updated_at,
        {{ eventpipe.mart_timestamp('cast(null as ' ~ dbt.type_timestamp() ~ ')') }} as last_updated_at,
        0 as update_count,
        true as is_inferred
    from {{ ref('stg_events') }}
    where product_id is not null
      and product_id not in (select product_id from described)
    group by product_id

)

select
    {{ eventpipe.surrogate_key(['product_id']) }} as product_sk,
    *
from (
    select * from described
    union all
    select * from inferred
) as products
