"""eventpipe ingest: the REST entry point of a pipeline (validate with the Rust core, publish to Kinesis).

Run: ``python -m eventpipe_ingest`` (uvicorn, EVENTPIPE_INGEST_HOST / EVENTPIPE_INGEST_PORT, default
127.0.0.1:8000). Settings: eventpipe_ingest.settings.IngestSettings (EVENTPIPE_* environment variables).

API keys are configured hashed, never in clear:

- ``EVENTPIPE_INGEST_API_KEYS_FILE``: a file (e.g. a mounted Kubernetes Secret) with one ``name:sha256hex``
  entry per line (``#`` comments and blank lines ignored), sha256hex = hex SHA-256 of the key's UTF-8 bytes;
- ``EVENTPIPE_INGEST_API_KEYS``: the same entries, comma-separated;
- ``python -m eventpipe_ingest.auth NAME`` prints a new key and its entry line.

Clients send ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``; logs carry the key's name only.
``EVENTPIPE_INGEST_AUTH_ENABLED=false`` turns auth off (local experiments only).
"""
