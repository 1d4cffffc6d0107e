"""`eventpipe up`: start the local pipeline as child processes, watch them, stop them cleanly.

Start order: kinesalite (with the stream created), consumer, ingest, transform loop. Each child runs in its own
process group with its output in `<state>/logs/<name>.log`; Ctrl-C or SIGTERM stops them in reverse order, by
PID, SIGTERM first (the consumer commits its in-flight batch), SIGKILL after a grace period. A crashed child is
restarted with backoff (supervisor.RestartPolicy); a crash loop stops the stack. Everything binds 127.0.0.1.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from eventpipe_cli import locations, monitoring
from eventpipe_cli.state import StatePaths, ensure_dev_key, write_json
from eventpipe_cli.supervisor import GiveUp, LetExit, Restart, RestartPolicy, stop_order

HOST = "127.0.0.1"


class StackError(RuntimeError):
    """The stack cannot start or keep running; the message says which component and where its log is."""


@dataclass(frozen=True)
class StackConfig:
    """Everything `up` decides: ports, names, intervals. Defaults are the README's local stack."""

    state_dir: Path
    ingest_port: int = 8000
    ingest_metrics_port: int = 9104
    """Ingest's /metrics, off the API port (as in the pods the operator makes)."""
    kinesis_port: int = 4567
    consumer_metrics_port: int = 9102
    shards: int = 2
    stream_name: str = "eventpipe-shop"
    namespace: str = "shop"
    schema_path: Path = field(default_factory=locations.shop_schema)
    commit_interval: float = 2.0
    transform_interval: float = 10.0
    transform_settle: float = 3.0
    analytics_python: Path = field(default_factory=locations.analytics_python)
    start_timeout: float = 90.0
    transform: bool = True
    """Run the transform loop (dbt + GX); benchmarks of the ingest-to-Iceberg path turn it off."""
    persist_stream: bool = True
    """Keep kinesalite's data in <state>/kinesis so a second `up` resumes; off: in memory (faster)."""
    monitoring: bool = True
    """Start Prometheus and the Streamlit dashboard (eventpipe_cli.monitoring) when they are installed."""
    prometheus_port: int = 9090
    dashboard_port: int = 8501
    transform_metrics_port: int = 9103
    airflow: bool = False
    """Run Airflow (airflow_stack.py) instead of the light transform loop."""
    airflow_port: int = 8080


@dataclass(frozen=True)
class ComponentSpec:
    """How to start one child and how to tell it is ready (a TCP port or an HTTP URL answering 200)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    port: int | None = None
    ready_url: str | None = None


def pipeline_env(config: StackConfig, paths: StatePaths) -> dict[str, str]:
    """The EVENTPIPE_* settings every service of the local stack shares (eventpipe_common.settings)."""
    return {
        "EVENTPIPE_STATE_DIR": str(paths.root),
        "EVENTPIPE_PIPELINE_NAME": config.namespace,
        "EVENTPIPE_NAMESPACE": config.namespace,
        "EVENTPIPE_STREAM_NAME": config.stream_name,
        "EVENTPIPE_KINESIS_ENDPOINT_URL": f"http://{HOST}:{config.kinesis_port}",
        "EVENTPIPE_SCHEMA_PATH": str(config.schema_path),
        "AWS_ACCESS_KEY_ID": os.environ.get("AWS_ACCESS_KEY_ID", "local"),
        "AWS_SECRET_ACCESS_KEY": os.environ.get("AWS_SECRET_ACCESS_KEY", "local"),
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "PYTHONUNBUFFERED": "1",
    }


def listening_ports(config: StackConfig) -> dict[str, int]:
    """Every port the stack's servers listen on, by the `up` option that sets it."""
    ports = {"ingest-port": config.ingest_port, "ingest-metrics-port": config.ingest_metrics_port,
             "kinesis-port": config.kinesis_port, "metrics-port": config.consumer_metrics_port}
    if config.transform and config.airflow:
        ports["airflow-port"] = config.airflow_port
    elif config.transform:
        ports["transform-metrics-port"] = config.transform_metrics_port
    if config.monitoring:
        ports |= {"prometheus-port": config.prometheus_port, "dashboard-port": config.dashboard_port}
    return ports


def port_clashes(config: StackConfig) -> list[str]:
    """Options given the same port: two servers cannot share one, and the one that loses would crash-loop (or take
    the port whenever the winner restarts) instead of failing at once."""
    by_port: dict[int, list[str]] = {}
    for option, port in listening_ports(config).items():
        by_port.setdefault(port, []).append(f"--{option}")
    return [f"{', '.join(options)}: {port}" for port, options in sorted(by_port.items()) if len(options) > 1]


def plan_components(config: StackConfig, paths: StatePaths, kinesalite: Path,
                    python: str = sys.executable) -> list[ComponentSpec]:
    """The children of `up`, in start order. Pure: builds argv and environments only."""
    base = {**os.environ, **pipeline_env(config, paths)}
    storage = ["--path", str(paths.kinesis)] if config.persist_stream else []
    specs = [
        ComponentSpec(
            "kinesalite",
            [str(kinesalite), "--host", HOST, "--port", str(config.kinesis_port), *storage,
             "--shardLimit", "100", "--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0"],
            dict(base), port=config.kinesis_port),
        ComponentSpec(
            "consumer", [python, "-m", "eventpipe_consumer", "run"],
            {**base, "EVENTPIPE_CONSUMER_METRICS_HOST": HOST,
             "EVENTPIPE_CONSUMER_METRICS_PORT": str(config.consumer_metrics_port),
             "EVENTPIPE_CONSUMER_COMMIT_INTERVAL_SECONDS": str(config.commit_interval),
             "EVENTPIPE_CONSUMER_WORKER_ID": "local-consumer"},
            port=config.consumer_metrics_port),
        ComponentSpec(
            "ingest", [python, "-m", "eventpipe_ingest"],
            {**base, "EVENTPIPE_INGEST_HOST": HOST, "EVENTPIPE_INGEST_PORT": str(config.ingest_port),
             "EVENTPIPE_INGEST_METRICS_HOST": HOST, "EVENTPIPE_INGEST_METRICS_PORT": str(config.ingest_metrics_port),
             "EVENTPIPE_INGEST_API_KEYS_FILE": str(paths.api_keys)},
            port=config.ingest_port, ready_url=f"http://{HOST}:{config.ingest_port}/api/v1/ready"),
    ]
    if config.transform and config.airflow:
        from eventpipe_cli import airflow_stack

        env = {**base, **airflow_stack.airflow_env(paths, config.namespace, config.analytics_python,
                                                   config.airflow_port)}
        for component in airflow_stack.COMPONENTS:
            port = config.airflow_port if component == "api-server" else None
            specs.append(ComponentSpec(f"airflow-{component}", airflow_stack.argv(component, config.airflow_port),
                                       env, port=port,
                                       ready_url=f"http://{HOST}:{port}/api/v2/monitor/health" if port else None))
    elif config.transform:
        specs.append(ComponentSpec(
            "transform", [python, "-m", "eventpipe_cli.transform_loop", "--state-dir", str(paths.root),
                          "--interval", str(config.transform_interval), "--settle", str(config.transform_settle),
                          "--analytics-python", str(config.analytics_python),
                          "--metrics-port", str(config.transform_metrics_port)],
            dict(base)))
    if config.monitoring:
        specs.extend(monitoring.components(config, paths, base))
    return specs


def urls(config: StackConfig) -> dict[str, str]:
    return {
        "ingest": f"http://{HOST}:{config.ingest_port}/api/v1/ingest",
        "api docs": f"http://{HOST}:{config.ingest_port}/api/v1/docs",
        "ingest metrics": f"http://{HOST}:{config.ingest_metrics_port}/metrics",
        "consumer metrics": f"http://{HOST}:{config.consumer_metrics_port}/metrics",
        "kinesis": f"http://{HOST}:{config.kinesis_port}",
        **(monitoring.urls(config) if config.monitoring else {}),
    }


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
        return True


def _is_ready(spec: ComponentSpec) -> bool:
    if spec.ready_url is not None:
        try:
            with urllib.request.urlopen(spec.ready_url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False
    if spec.port is not None:
        try:
            with socket.create_connection((HOST, spec.port), timeout=0.5):
                return True
        except OSError:
            return False
    return True


def create_stream(endpoint: str, name: str, shards: int, timeout: float = 30.0) -> None:
    """Create the stream unless it exists (a resumed stack), then wait until it is ACTIVE."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("kinesis", endpoint_url=endpoint, region_name=os.environ.get("AWS_DEFAULT_REGION",
                                                                                           "us-east-1"),
                          aws_access_key_id=os.environ.get("AWS_ACCESS_KEY_ID", "local"),
                          aws_secret_access_key=os.environ.get("AWS_SECRET_ACCESS_KEY", "local"))
    try:
        client.create_stream(StreamName=name, ShardCount=shards)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ResourceInUseException":
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = client.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamStatus"]
        if status == "ACTIVE":
            return
        time.sleep(0.2)
    raise StackError(f"stream {name!r} did not become ACTIVE within {timeout}s")


@dataclass
class Child:
    spec: ComponentSpec
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None
    restarts: list[float] = field(default_factory=list)
    restart_at: float | None = None
    _log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = open(self.log_path, "ab")
        self._log.write(f"--- eventpipe up: starting {self.spec.name} at {time.strftime('%FT%TZ', time.gmtime())}"
                        f" ---\n".encode())
        self._log.flush()
        self.proc = subprocess.Popen(self.spec.argv, stdout=self._log, stderr=subprocess.STDOUT, env=self.spec.env,
                                     stdin=subprocess.DEVNULL, start_new_session=True)

    def exit_code(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def stop(self, grace: float) -> None:
        """SIGTERM the child's process group, SIGKILL it after `grace` seconds."""
        if self.proc is not None and self.proc.poll() is None:
            _signal_group(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                _signal_group(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=grace)
        if self._log is not None:
            self._log.close()
            self._log = None


def _signal_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except ProcessLookupError:
        return


@dataclass
class Stack:
    """The running children of one `up`."""

    config: StackConfig
    paths: StatePaths
    specs: Sequence[ComponentSpec]
    say: Callable[[str], None] = print
    policy: RestartPolicy = field(default_factory=RestartPolicy)
    children: dict[str, Child] = field(default_factory=dict)
    stopping: bool = False
    _lock: IO[str] | None = None

    def acquire(self) -> None:
        """One `up` per state folder: a second one fails here instead of fighting over ports and files."""
        self.paths.create()
        self._lock = open(self.paths.lock, "w")
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise StackError(f"another `eventpipe up` is running on {self.paths.root} "
                             f"(see {self.paths.stack}); stop it first") from exc
        clashes = port_clashes(self.config)
        if clashes:
            raise StackError(f"one port for two servers: {'; '.join(clashes)}; give each its own")
        busy = [f"{spec.name} port {spec.port}" for spec in self.specs
                if spec.port is not None and not port_is_free(spec.port)]
        if busy:
            raise StackError(f"ports in use on {HOST}: {', '.join(busy)}; choose others (see `eventpipe up --help`)")

    def start(self) -> None:
        ensure_dev_key(self.paths)
        for spec in self.specs:
            child = Child(spec, self.paths.log(spec.name))
            self.children[spec.name] = child
            self.say(f"starting {spec.name} (log: {child.log_path})")
            if spec.name == "prometheus":
                monitoring.write_prometheus_config(self.config, self.paths)
            child.start()
            self._wait_ready(child)
            if spec.name == "kinesalite":
                create_stream(f"http://{HOST}:{self.config.kinesis_port}", self.config.stream_name,
                              self.config.shards)
            self.write_status()

    def _wait_ready(self, child: Child) -> None:
        deadline = time.monotonic() + self.config.start_timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise StackError("interrupted while starting")
            code = child.exit_code()
            if code is not None:
                raise StackError(f"{child.spec.name} exited with code {code} while starting; "
                                 f"log: {child.log_path}\n{tail(child.log_path)}")
            if _is_ready(child.spec):
                return
            time.sleep(0.2)
        raise StackError(f"{child.spec.name} was not ready within {self.config.start_timeout:.0f}s; "
                         f"log: {child.log_path}\n{tail(child.log_path)}")

    def write_status(self) -> None:
        write_json(self.paths.stack, {
            "pid": os.getpid(),
            "started_at": time.strftime("%FT%TZ", time.gmtime()),
            "config": {"ingest_port": self.config.ingest_port, "kinesis_port": self.config.kinesis_port,
                       "consumer_metrics_port": self.config.consumer_metrics_port,
                       "stream_name": self.config.stream_name, "namespace": self.config.namespace,
                       "shards": self.config.shards, "schema_path": str(self.config.schema_path)},
            "urls": urls(self.config),
            "planned": [spec.name for spec in self.specs],
            "components": {name: {"pid": child.proc.pid if child.proc else None, "log": str(child.log_path),
                                  "restarts": len(child.restarts), "port": child.spec.port}
                           for name, child in self.children.items()},
        })

    def supervise_once(self, now: float) -> None:
        """One round of watching: restart what crashed (with backoff) or give up on a crash loop."""
        for name, child in self.children.items():
            if child.restart_at is not None:
                if now >= child.restart_at:
                    child.restart_at = None
                    child.restarts.append(now)
                    self.say(f"restarting {name}")
                    child.start()
                    self.write_status()
                continue
            code = child.exit_code()
            if code is None:
                continue
            action = self.policy.decide(name, code, child.restarts, now, self.stopping)
            if isinstance(action, GiveUp):
                raise StackError(f"{action.reason}: {child.log_path}\n{tail(child.log_path)}")
            if isinstance(action, Restart):
                self.say(f"{name} exited with code {code}; restarting in {action.delay:.0f}s "
                         f"(log: {child.log_path})")
                child.restart_at = now + action.delay
            if isinstance(action, LetExit):
                continue

    def stop(self, grace: float = 20.0) -> None:
        self.stopping = True
        for name in stop_order([spec.name for spec in self.specs]):
            child = self.children.get(name)
            if child is not None:
                self.say(f"stopping {name}")
                child.stop(grace)
        if self._lock is not None:
            self.paths.stack.unlink(missing_ok=True)
            self._lock.close()
            self._lock = None


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"(no log: {exc})"


def run(stack: Stack, on_ready: Callable[[], None] | None = None) -> int:
    """Start, supervise until Ctrl-C/SIGTERM, stop. Returns the process exit code."""

    def request_stop(signum: int, _frame: Any) -> None:
        if not stack.stopping:
            stack.say(f"received {signal.Signals(signum).name}: stopping")
        stack.stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        stack.acquire()
        stack.start()
        if on_ready is not None:
            on_ready()
        while not stack.stopping:
            stack.supervise_once(time.monotonic())
            time.sleep(0.5)
    except StackError as exc:
        stack.say(f"error: {exc}")
        code = 1
    finally:
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
