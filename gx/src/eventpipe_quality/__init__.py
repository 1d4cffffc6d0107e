"""Data quality gates over the dbt staging and marts models, with Great Expectations 1.x.

`python -m eventpipe_quality run --suite staging|marts` validates, keeps the results (JSON per run, rows in
`<state_dir>/quality/results.duckdb`), builds offline Data Docs, logs every failure and alerts on critical ones.
"""

import logging

# GX narrates its plugin registry at INFO while importing: keep our JSON logs about the data, not GX's internals.
logging.getLogger("great_expectations").setLevel(logging.WARNING)
