-- SCD2 intervals of a user never overlap and leave no gaps: each version ends exactly where the next begins,
-- only the last one is open, and every interval is non-empty.
with ordered as (
    select
        user_id,
        user_sk,
        valid_from,
        valid_to,
        lead(valid_from) over (partition by user_id order by valid_from) as next_valid_from
    from {{ ref('dim_users') }}
)
select *
from ordered
where (next_valid_from is null and valid_to is not null)
   or (next_valid_from is not null and (valid_to is null or valid_to <> next_valid_from))
   or valid_to <= valid_from
