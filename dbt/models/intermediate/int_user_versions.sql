{#- The SCD Type 2 history of each user's traits, computed from the whole trait log:
    1. carry each trait's last known value forward (an identify event may send only some traits);
    2. several trait events at the same instant collapse to the state after the last of them (by event_id);
    3. keep only the instants where some trait changed; each opens a version valid until the next one. -#}
{%- set traits = ['email', 'country', 'plan'] -%}
{%- set history = "partition by user_id order by changed_at, event_id rows between unbounded preceding and current row" -%}

with trait_events as (

    select * from {{ ref('stg_users') }}

),

filled as (

    select
        user_id,
        changed_at,
        event_id,
        {% for trait in traits -%}
        {{ eventpipe.last_value_ignore_nulls(trait, history) }} as {{ trait }},
        {% endfor -%}
        row_number() over (partition by user_id, changed_at order by event_id desc) as rank_at_instant,
        max(dbt_loaded_at) over (partition by user_id) as user_loaded_at
    from trait_events

),

states as (

    select * from filled where rank_at_instant = 1

),

compared as (

    select
        *,
        row_number() over (partition by user_id order by changed_at) as state_number,
        {% for trait in traits -%}
        lag({{ trait }}) over (partition by user_id order by changed_at) as previous_{{ trait }}{{ "," if not loop.last }}
        {% endfor %}
    from states

),

changes as (

    select * from compared
    where state_number = 1
    {% for trait in traits -%}
       or {{ trait }} is distinct from previous_{{ trait }}
    {% endfor %}

)

select
    user_id,
    email,
    country,
    plan,
    changed_at as valid_from,
    lead(changed_at) over (partition by user_id order by changed_at) as valid_to,
    row_number() over (partition by user_id order by changed_at) as version_number,
    event_id as source_event_id,
    user_loaded_at
from changes
