"""eventpipe ingest service."""
