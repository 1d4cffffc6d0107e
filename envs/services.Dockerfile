# syntax=docker/dockerfile:1.7
# The services image, ghcr.io/eventpipe/services:<version>: ingest and consumer in one image (the operator picks
# the command: `python -m eventpipe_ingest` or `python -m eventpipe_consumer run`). Build from the repository root:
#   docker build -f envs/services.Dockerfile -t ghcr.io/eventpipe/services:0.1.0 .
# (scripts/images.sh builds it with podman on a machine without Docker.)
# It installs envs/services.txt without its "tests and dev tools" part (local packages non-editable).
# Stages: core-build compiles the Rust core into an abi3 wheel (maturin, release); `core` is that stage, or an
# image holding a prebuilt /wheels/eventpipe_core-*.whl (--build-arg CORE_IMAGE=..., what scripts/images.sh passes
# so the wheel cached by scripts/build-core.sh is not compiled twice); build installs the packages into a venv;
# the runtime stage is slim, runs as UID 10001 and works with a read-only root filesystem (state and /tmp are
# emptyDirs mounted by the operator).

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
COPY envs/services.txt envs/services.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/services.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt
COPY --from=core /wheels /wheels
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/common/src services/common/src
COPY services/ingest/pyproject.toml services/ingest/pyproject.toml
COPY services/ingest/src services/ingest/src
COPY services/consumer/pyproject.toml services/consumer/pyproject.toml
COPY services/consumer/src services/consumer/src
COPY services/cli/pyproject.toml services/cli/pyproject.toml
COPY services/cli/src services/cli/src
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/services.txt > /tmp/image.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt /wheels/eventpipe_core-*.whl

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-services" \
      org.opencontainers.image.description="eventpipe ingest (REST -> Kinesis) and consumer (Kinesis -> Iceberg)" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    EVENTPIPE_STATE_DIR=/var/lib/eventpipe
# checkov:skip=CKV_DOCKER_2:One image runs ingest (port 8000) or the consumer (9102); the operator's builders give each pod its own probes, and Kubernetes ignores HEALTHCHECK.
USER 10001:10001
# 8000: ingest HTTP (/api/v1/...); 9102: consumer /metrics.
EXPOSE 8000 9102
CMD ["python", "-m", "eventpipe_ingest"]
