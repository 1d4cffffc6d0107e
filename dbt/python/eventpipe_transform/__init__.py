"""eventpipe_transform: runs the dbt project (dbt/) over the pipeline's Iceberg tables.

`python -m eventpipe_transform build` resolves the tables' current metadata files through pyiceberg, hands them
to dbt as vars and runs `dbt build`; the local stack and Airflow call exactly that command.
"""
