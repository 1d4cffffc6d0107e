"""Airflow DAG file: one DAG per eventpipe pipeline (DAG id eventpipe_<pipeline>).

Thin on purpose: the definitions are read (ConfigMaps or a folder, EVENTPIPE_DAGS_SOURCE) and the DAGs built by
the installed, tested `eventpipe_dags` package at every parse, so a new or deleted pipeline needs no new file.
"""

from eventpipe_dags.factory import build_dags

globals().update(build_dags())
