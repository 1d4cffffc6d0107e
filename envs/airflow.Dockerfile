# syntax=docker/dockerfile:1.7
# The airflow image, ghcr.io/eventpipe/airflow:<version>: Airflow 3 (scheduler, api-server, dag-processor,
# triggerer) with the cncf-kubernetes provider, the DAG factory package (dags/python) and the DAGs (dags/). dbt
# and GX are not here: tasks run them in the analytics image (KubernetesPodOperator). Build from the repo root:
#   docker build -f envs/airflow.Dockerfile -t ghcr.io/eventpipe/airflow:0.1.0 .
# It installs envs/airflow.txt without its "tests and dev tools" part (local packages non-editable). Runs as UID
# 10001 with a read-only root filesystem: AIRFLOW_HOME (logs, the default config) is a volume or emptyDir.

FROM python:3.11-slim-bookworm AS build
# A CA bundle for a TLS-inspecting proxy, when the build needs one (scripts/images.sh passes the host's, mounted).
ARG SSL_CERT_FILE
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python3 -m venv /opt/venv && python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==0.13.9"
WORKDIR /src
# Third-party dependencies first (a layer that survives source changes), then the local packages.
COPY envs/airflow.txt envs/airflow.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/airflow.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt
COPY services/common/pyproject.toml services/common/pyproject.toml
COPY services/common/src services/common/src
COPY dags/python dags/python
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/airflow.txt > /tmp/image.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt
# No pip at run time (the image installs nothing once built).
RUN /opt/uv/bin/uv pip uninstall --python /opt/venv/bin/python pip

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-airflow" \
      org.opencontainers.image.description="Airflow 3 with the eventpipe DAG factory and DAGs" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
COPY dags/eventpipe_pipelines.py /opt/eventpipe/dags/
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    AIRFLOW_HOME=/var/lib/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/eventpipe/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False
# checkov:skip=CKV_DOCKER_2:One image runs Airflow's api-server, scheduler and workers; each deployment probes its own component, and Kubernetes ignores HEALTHCHECK.
USER 10001:10001
EXPOSE 8080
ENTRYPOINT ["airflow"]
CMD ["version"]
