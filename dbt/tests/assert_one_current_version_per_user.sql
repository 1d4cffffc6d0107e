-- Exactly one current version per user in dim_users, and it is the one without valid_to.
select user_id, count(*) as versions, sum(case when is_current then 1 else 0 end) as current_versions
from {{ ref('dim_users') }}
group by user_id
having sum(case when is_current then 1 else 0 end) <> 1
    or sum(case when is_current and valid_to is not null then 1 else 0 end) > 0
