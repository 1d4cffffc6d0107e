# syntax=docker/dockerfile:1.7
# The dashboard image, ghcr.io/eventpipe/dashboard:<version>: the Streamlit app of dashboard/ and its environment
# (envs/dashboard.txt without its "tests and dev tools" part, the local package non-editable). Build from the
# repository root:
#   docker build -f envs/dashboard.Dockerfile -t ghcr.io/eventpipe/dashboard:0.1.0 .
# Runs as UID 10001 with a read-only root filesystem (HOME=/tmp is an emptyDir). The default command is the one the
# chart's Deployment gives (helm/eventpipe-operator/templates/dashboard.yaml): `streamlit run dashboard/app.py`
# from /opt/eventpipe, serving /_stcore/health and the pages on port 8501 of the pod's address.

FROM python:3.11-slim-bookworm AS build
# A CA bundle for a TLS-inspecting proxy, when the build needs one (scripts/images.sh passes the host's, mounted).
ARG SSL_CERT_FILE
ARG PIP_CERT
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy
RUN python3 -m venv /opt/venv && python3 -m venv /opt/uv && /opt/uv/bin/pip install "uv==0.13.9"
WORKDIR /src
# Third-party dependencies first (a layer that survives source changes), then the local package.
COPY envs/dashboard.txt envs/dashboard.txt
RUN sed -e '/^# tests and dev tools/,$d' -e '/^-e /d' envs/dashboard.txt > /tmp/deps.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/deps.txt
COPY dashboard/pyproject.toml dashboard/pyproject.toml
COPY dashboard/src dashboard/src
RUN sed -e '/^# tests and dev tools/,$d' -e 's/^-e //' envs/dashboard.txt > /tmp/image.txt \
 && /opt/uv/bin/uv pip install --python /opt/venv/bin/python -r /tmp/image.txt
# Smaller: no pip at run time, and the test suites and C headers that pandas, numpy and pyarrow ship (~90 MB).
WORKDIR /opt/venv/lib/python3.11/site-packages
RUN /opt/uv/bin/uv pip uninstall --python /opt/venv/bin/python pip \
 && rm -rf pandas/tests pyarrow/tests pyarrow/include \
 && find numpy -type d -name tests -prune -exec rm -rf {} +

FROM python:3.11-slim-bookworm
LABEL org.opencontainers.image.title="eventpipe-dashboard" \
      org.opencontainers.image.description="eventpipe dashboard over the warehouse and the pipeline's tables" \
      org.opencontainers.image.source="https://github.com/eventpipe/eventpipe"
RUN groupadd --gid 10001 eventpipe \
 && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin eventpipe
COPY --from=build /opt/venv /opt/venv
COPY dashboard/app.py /opt/eventpipe/dashboard/app.py
COPY dashboard/views /opt/eventpipe/dashboard/views
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    EVENTPIPE_STATE_DIR=/var/lib/eventpipe \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false \
    STREAMLIT_SERVER_HEADLESS=true
WORKDIR /opt/eventpipe
USER 10001:10001
EXPOSE 8501
# Streamlit's own health endpoint (Kubernetes uses the chart's probes; this is for docker/podman runs).
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "dashboard/app.py", "--server.address=0.0.0.0", "--server.port=8501", \
     "--server.headless=true", "--browser.gatherUsageStats=false"]
