"""The HTTP API: routes (one module per resource), their dependencies and the error answers."""

# Every route's path starts with this (the routers carry it, so route templates in metrics are whole paths).
API_PREFIX = "/api/v1"
