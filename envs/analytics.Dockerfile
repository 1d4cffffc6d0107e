# syntax=docker/dockerfile:1.7
# The analytics image, ghcr.io/eventpipe/analytics:<version>: what the DAG tasks and CronJobs run — dbt
# (`python -m eventpipe_transform`), the Great Expectations gates (`python -m eventpipe_quality`), DuckDB with its
# iceberg/avro extensions (offline wheels), and Iceberg table maintenance (`python -m eventpipe_consumer
# maintenance`). Build from the repository root:
#   docker build -f envs/analytics.Dockerfile -t ghcr.io/eventpipe/analytics:0.1.0 .
# It installs envs/analytics.txt without its "tests and dev tools" part (local packages non-editable) plus the
# consumer package for maintenance; the Rust core wheel comes from `core` as in envs/services.Dockerfile.
# Runs as UID 10001 with a read-only root filesystem: dbt's target/ and logs/ and the warehouse live under
# EVENTPIPE_STATE_DIR (an emptyDir or volume).

ARG CORE_IMAGE=core-build

FROM rust:1.95-slim-bookworm AS core-build
# hadolint ignore=DL3008
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/maturin && /opt/maturin/bin/pip install --no-cache-dir "maturin==1.16.0"
WORKDIR /src/rust
COPY rust/ ./
RUN /opt/maturin/bin/maturin build --release --manifest-path python/Cargo.toml --interpreter python3 --out /wheels

# The wheel's stage, chosen by CORE_IMAGE: core-build above, or an image holding a prebuilt wheel.
# checkov:skip=CKV_DOCKER_7:The base is a build argument naming a stage or the prebuilt-wheel image, never a registry tag.
# hadolint ignore=DL3006
FROM ${CORE_IMAGE} AS core

FROM python:3.11-slim-bookworm AS build
# A CA bundle for a TLS-inspecting proxy, when the build needs one (scripts/images.sh passes the host's, mounted).
ARG SSL_CERT_FILE
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python3 -m venv /opt/venv && python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==0.13.9"
WORKDIR /src
# Third-party dependencies first (a layer that survives source changes), then the local packages.
COPY envs/analytics.txt envs/analytics.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/analytics.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt
COPY --from=core /wheels /wheels
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/common/src services/common/src
COPY services/consumer/pyproject.toml services/consumer/pyproject.toml
COPY services/consumer/src services/consumer/src
COPY gx/pyproject.toml gx/pyproject.toml
COPY gx/src gx/src
COPY dbt/python dbt/python
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/analytics.txt > /tmp/image.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt ./services/consumer \
      /wheels/eventpipe_core-*.whl

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-analytics" \
      org.opencontainers.image.description="eventpipe dbt models, Great Expectations gates and Iceberg table maintenance" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
COPY dbt/dbt_project.yml dbt/profiles.yml /opt/eventpipe/dbt/
COPY dbt/macros /opt/eventpipe/dbt/macros
COPY dbt/models /opt/eventpipe/dbt/models
COPY dbt/tests /opt/eventpipe/dbt/tests
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    DBT_SEND_ANONYMOUS_USAGE_STATS=false \
    GX_ANALYTICS_ENABLED=false \
    EVENTPIPE_STATE_DIR=/var/lib/eventpipe \
    EVENTPIPE_DBT_PROJECT_DIR=/opt/eventpipe/dbt
# checkov:skip=CKV_DOCKER_2:Batch image (the DAG's dbt and GX task pods): no server to check.
USER 10001:10001
CMD ["python", "-m", "eventpipe_transform", "--help"]
