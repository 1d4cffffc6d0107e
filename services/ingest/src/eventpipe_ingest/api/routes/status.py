"""GET /status/{job_id}: a job's state and counts, from the job store."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Depends, Path, Request

from eventpipe_ingest.api import API_PREFIX
from eventpipe_ingest.api.deps import client_name, services_of
from eventpipe_ingest.api.errors import ApiError
from eventpipe_ingest.models import JobStatus, Problem

router = APIRouter(prefix=API_PREFIX)


@router.get("/status/{job_id}", response_model=JobStatus, tags=["jobs"], operation_id="getJobStatus",
            responses={401: {"model": Problem, "description": "Missing or invalid API key."},
                       422: {"model": Problem, "description": "The job id is not one (e.g. over 64 characters)."},
                       404: {"model": Problem, "description": "Unknown job id."},
                       503: {"model": Problem, "description": "The job store is unavailable."}})
async def status(request: Request, job_id: str = Path(max_length=64),
                 client: str = Depends(client_name)) -> JobStatus:
    """The state of a job: accepted, published, committed or failed, with its counts."""
    services = services_of(request)
    store = services.require_store()
    try:
        job = await asyncio.to_thread(store.get, job_id)
    except Exception as exc:
        services.metrics.job_store_errors.labels("get").inc()
        raise ApiError(503, "dependency_unavailable", "the job store is unavailable",
                       services.retry_after) from exc
    if job is None:
        raise ApiError(404, "not_found", f"no job {job_id!r}", job_id=job_id)
    return JobStatus(job_id=job.job_id, state=job.state, received=job.received, accepted=job.accepted,
                     rejected=job.rejected, duplicates=job.duplicates, committed=job.committed,
                     reason=job.reason, created_at=job.created_at, updated_at=job.updated_at)
