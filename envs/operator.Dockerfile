# syntax=docker/dockerfile:1.7
# The operator image, ghcr.io/eventpipe/operator:<version>: kopf, the manifest builders and eventpipe_common (no
# Rust core: the operator checks pipeline schemas in pure Python). Build from the repository root:
#   docker build -f envs/operator.Dockerfile -t ghcr.io/eventpipe/operator:0.1.0 .
# It installs envs/operator.txt without its "tests and dev tools" part (local packages non-editable), plus the
# PostgreSQL driver for a SQL catalog. Runs as UID 10001 with a read-only root filesystem (the chart mounts an
# emptyDir on /tmp).

FROM python:3.11-slim-bookworm AS build
# A CA bundle for a TLS-inspecting proxy, when the build needs one (scripts/images.sh passes the host's, mounted).
ARG SSL_CERT_FILE
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python3 -m venv /opt/venv && python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==0.13.9"
WORKDIR /src
# Third-party dependencies first (a layer that survives source changes), then the local packages.
COPY envs/operator.txt envs/operator.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/operator.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt "psycopg2-binary>=2.9"
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/common/src services/common/src
COPY operator/pyproject.toml operator/pyproject.toml
COPY operator/src operator/src
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/operator.txt > /tmp/image.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt "psycopg2-binary>=2.9"

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-operator" \
      org.opencontainers.image.description="Kubernetes operator for EventPipeline resources (kopf)" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# checkov:skip=CKV_DOCKER_2:kopf serves /healthz only with --liveness, which the chart passes and probes; Kubernetes ignores HEALTHCHECK.
USER 10001:10001
# 8080: the operator's /metrics; 8081: kopf's liveness endpoint (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["python", "-m", "eventpipe_operator"]
