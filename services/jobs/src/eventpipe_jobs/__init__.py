"""The job store: one row per ingest request, written by ingest and counted by the consumer.

Modules: `schema` (the states, the rows and the tables), `store` (`JobStore`, every read and write),
`writer` (`JobWriter`, ingest's group commit), and the two fast write paths `sqlite_fast` and `pg_fast`.
"""
