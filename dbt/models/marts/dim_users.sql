-- depends_on: {{ ref('stg_users') }}
{#- Users, SCD Type 2: one row per version of a user's traits (email, country, plan); valid_to is null and
    is_current true for the version in force. Incremental: a run rebuilds the versions of only the users who
    got new trait events since the last run (delete+insert by user_id), which also places late events
    correctly in the history; every other user's rows stay as they were. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='user_id',
    on_schema_change='append_new_columns',
    **eventpipe.marts_config(cluster_by=['user_id'])
) }}

with versions as (

    select * from {{ ref('int_user_versions') }}
    {% if is_incremental() %}
    where user_id in (
        select user_id from {{ ref('stg_users') }}
        where dbt_loaded_at > {{ eventpipe.watermark('user_loaded_at', this) }}
    )
    {% endif %}

)

select
    {{ eventpipe.surrogate_key(['user_id', 'valid_from']) }} as user_sk,
    user_id,
    email,
    country,
    plan,
    {{ eventpipe.mart_timestamp('valid_from') }} as valid_from,
    {{ eventpipe.mart_timestamp('valid_to') }} as valid_to,
    valid_to is null as is_current,
    version_number,
    source_event_id,
    {{ eventpipe.mart_timestamp('user_loaded_at') }} as user_loaded_at
from versions
