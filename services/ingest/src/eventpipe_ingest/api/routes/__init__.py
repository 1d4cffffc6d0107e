"""One router per resource: ingest (POST events), status (a job's state), health (liveness, readiness, metrics)."""
