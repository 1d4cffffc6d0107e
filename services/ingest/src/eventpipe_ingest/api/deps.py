"""What the routes depend on: the services built in the lifespan, and the API key check.

The key check is a plain function, `authenticate`, called by the ingest route itself: FastAPI's dependencies
(two security schemes and the function that combines them) cost a visible share of an ingest request's CPU
(docs/benchmarks.md, W2), and the hot route needs only two header lookups. `client_name` wraps the same check
as FastAPI dependencies for the other routes, which also declares the security schemes in the OpenAPI spec.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import eventpipe_core
from eventpipe_common.jobstore import JobStore, JobWriter
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from eventpipe_ingest.api.errors import ApiError
from eventpipe_ingest.auth import ApiKeys
from eventpipe_ingest.metrics import IngestMetrics
from eventpipe_ingest.publisher import KinesisPublisher
from eventpipe_ingest.settings import IngestSettings


@dataclass
class Services:
    """What the routes need, built by the factory and the lifespan (app.state.services)."""

    settings: IngestSettings
    metrics: IngestMetrics
    api_keys: ApiKeys
    schema: eventpipe_core.Schema | None
    retry_after: dict[str, str]  # the Retry-After header of 429 and 503 answers
    store: JobStore | None = None
    writer: JobWriter | None = None
    publisher: KinesisPublisher | None = None
    kinesis: Any = None  # the aiobotocore Kinesis client (readiness, ListShards)
    in_flight: int = 0
    body_bytes_in_flight: int = 0  # decoded bytes of the requests being processed

    def not_ready(self) -> ApiError:
        return ApiError(503, "not_ready", "the service is starting", self.retry_after)

    def require_writer(self) -> JobWriter:
        if self.writer is None:
            raise self.not_ready()
        return self.writer

    def require_publisher(self) -> KinesisPublisher:
        if self.publisher is None:
            raise self.not_ready()
        return self.publisher

    def require_store(self) -> JobStore:
        if self.store is None:
            raise self.not_ready()
        return self.store


def services_of(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


def authenticate(services: Services, x_api_key: str | None, authorization: str | None) -> str:
    """The name of the caller's API key; 401 without a valid one. The key itself is never logged."""
    if not services.settings.ingest_auth_enabled:
        return "anonymous"
    key = x_api_key
    if not key and authorization:
        scheme, _, credentials = authorization.partition(" ")
        key = credentials.strip() if scheme.lower() == "bearer" else None
    name = services.api_keys.verify(key) if key else None
    if name is None:
        raise ApiError(401, "unauthorized", "a valid API key is required "
                       "(Authorization: Bearer <key> or X-API-Key: <key>)", {"WWW-Authenticate": "Bearer"})
    return name


bearer = HTTPBearer(auto_error=False, description="Authorization: Bearer <API key>")
header_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="The API key in X-API-Key.")


async def client_name(request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer),
                      x_api_key: str | None = Depends(header_key)) -> str:
    """`authenticate` as FastAPI dependencies, which also declare the security schemes in the spec."""
    return authenticate(services_of(request), x_api_key,
                        f"Bearer {credentials.credentials}" if credentials else None)
