"""eventpipe's Airflow 3 DAG factory: one DAG per EventPipeline, built from the operator's DAG definitions.

The DAG file in dags/ only calls `eventpipe_dags.factory.build_dags`; everything else lives here, installed in
the airflow image, so the DAG processor, the workers and the triggerer import the same tested code.
"""
