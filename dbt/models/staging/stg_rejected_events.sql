{#- What the pipeline refused, for quality reporting. A table (rebuilt each run) so readers need no iceberg
    extension; the rejected table is small by design. -#}
{{ config(materialized='table') }}

select
    raw,
    reasons,
    line,
    source,
    job_id,
    shard_id,
    sequence_number,
    rejected_at,
    cast(rejected_at as date) as rejected_date
from {{ source('eventpipe', 'raw_events_rejected') }}
