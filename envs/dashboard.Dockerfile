# syntax=docker/dockerfile:1.7
# The dashboard image, ghcr.io/eventpipe/dashboard:<version>: the dashboard/ app and its environment
# (envs/dashboard.txt without its "tests and dev tools" part, local packages non-editable; the Rust core wheel when
# the env file says "# needs: eventpipe_core"). Build from the repository root:
#   docker build -f envs/dashboard.Dockerfile -t ghcr.io/eventpipe/dashboard:0.1.0 .
# Runs as UID 10001 with a read-only root filesystem (HOME and /tmp are emptyDirs).

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
COPY envs/dashboard.txt envs/dashboard.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/dashboard.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt
COPY --from=core /wheels /wheels
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/common/src services/common/src
COPY dashboard dashboard
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/dashboard.txt > /tmp/image.txt \
 && if grep -q '^# needs: eventpipe_core' envs/dashboard.txt; then echo /wheels/eventpipe_core-*.whl >> /tmp/image.txt; fi \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-dashboard" \
      org.opencontainers.image.description="eventpipe dashboard over the warehouse and the pipeline's tables" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
COPY dashboard /opt/eventpipe/dashboard
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    EVENTPIPE_STATE_DIR=/var/lib/eventpipe
WORKDIR /opt/eventpipe/dashboard
USER 10001:10001
EXPOSE 8501
CMD ["python", "-m", "eventpipe_dashboard"]
