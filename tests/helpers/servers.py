"""Start and stop the real servers the tests talk to, on 127.0.0.1, each stopped by its PID.

Standard library only, so every virtualenv's test suite can import it (the root conftest.py does).
Tools are installed by scripts/tools.sh into ~/.cache/eventpipe; this module calls it when needed.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


# Below the kernel's ephemeral range (ip_local_port_range starts at 32768): no client connection and no other
# bind(0) takes one of these between free_port() and the server's own bind (or its rebind after a restart).
LISTEN_PORTS = range(20000, 32768)
_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on, never handed out before in this process: the servers of one stack never share one
    (in CI a SIGKILLed ingest came back to find its port answered by a Prometheus client's server: bind(0) had
    most likely given two of the stack's servers the same number, as it does about once in 2,000 stacks here)."""
    rng = random.Random()
    for _ in range(1000):
        port = rng.choice(LISTEN_PORTS)
        if port in _handed_out:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((host, port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port on {host} in {LISTEN_PORTS.start}-{LISTEN_PORTS.stop - 1}")


def wait_for_port(port: int, timeout: float = 30.0, proc: subprocess.Popen[bytes] | None = None,
                  host: str = "127.0.0.1") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with code {proc.returncode} before listening on {port}")
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listened on {host}:{port} within {timeout}s")


@dataclass
class ServerProcess:
    """A server we started; `stop()` ends exactly that process (and its group) by PID."""

    name: str
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path
    cleanup: list[Path] = field(default_factory=list)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=timeout)
        for path in self.cleanup:
            shutil.rmtree(path, ignore_errors=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


def start_process(name: str, argv: list[str], port: int, *, env: dict[str, str] | None = None,
                  timeout: float = 30.0, cwd: Path | None = None, host: str = "127.0.0.1") -> ServerProcess:
    log_dir = Path(tempfile.mkdtemp(prefix=f"eventpipe-{name}-log-"))
    log_path = log_dir / f"{name}.log"
    with open(log_path, "wb") as log_file:
        proc = subprocess.Popen(argv, stdout=log_file, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                start_new_session=True)
    server = ServerProcess(name, proc, port, log_path, cleanup=[log_dir])
    try:
        wait_for_port(port, timeout, proc, host)
    except Exception as exc:
        tail = server.log_tail()
        server.stop()
        raise RuntimeError(f"{name} did not start: {exc}\n{tail}") from exc
    return server


def _tool_dir(kind: str) -> Path:
    out = subprocess.run([str(REPO_ROOT / "scripts" / "tools.sh"), kind], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip().splitlines()[-1])


def start_kinesalite(shard_limit: int = 100, host: str = "127.0.0.1") -> ServerProcess:
    """A real Kinesis API server (kinesalite, in memory) on 127.0.0.1 (or the cluster's bridge address).

    Endpoint: http://<host>:<port>.
    """
    port = free_port(host)
    binary = _tool_dir("node") / "kinesalite"
    argv = [str(binary), "--host", host, "--port", str(port), "--shardLimit", str(shard_limit),
            "--createStreamMs", "0", "--deleteStreamMs", "0", "--updateStreamMs", "0"]
    return start_process("kinesalite", argv, port, host=host)


def start_postgres(host: str = "127.0.0.1", clients: str | None = None) -> tuple[ServerProcess, str]:
    """A real PostgreSQL server in a temporary data dir on 127.0.0.1; returns it and a SQLAlchemy DSN.

    PostgreSQL refuses to run as root, so when we are root the server runs as the `postgres` system user.
    `host` and `clients` (a CIDR let in without a password, e.g. the pods of scripts/cluster.sh) serve a cluster.
    """
    bindir = _tool_dir("postgres")
    data = Path(tempfile.mkdtemp(prefix="eventpipe-pg-"))
    port = free_port(host)
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(data, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-U", "eventpipe", "--auth=trust",
                    "--no-sync", "-E", "UTF8"], check=True, capture_output=True)
    if clients is not None:
        with open(data / "pg_hba.conf", "a") as hba:
            hba.write(f"host all all {clients} trust\n")
    argv = [*as_user, str(bindir / "postgres"), "-D", str(data), "-h", host, "-p", str(port),
            "-k", str(data), "-c", "fsync=off", "-c", "max_connections=200"]
    server = start_process("postgres", argv, port, host=host)
    server.cleanup.append(data)
    dsn = f"postgresql+psycopg://eventpipe@{host}:{port}/postgres"
    return server, dsn


def start_moto(python: str | None = None, host: str = "127.0.0.1") -> ServerProcess:
    """moto's server (S3, DynamoDB) on 127.0.0.1 from the current virtualenv. Not for Kinesis: see DEVELOPERS.md."""
    port = free_port(host)
    bindir = Path(python or sys.executable).parent
    server = start_process("moto", [str(bindir / "moto_server"), "-H", host, "-p", str(port)], port, host=host)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://{host}:{port}/moto-api/", timeout=1)
            break
        except (urllib.error.URLError, OSError):
            time.sleep(0.1)
    return server


def stack_env(**extra: str) -> dict[str, str]:
    """The environment the tests run `eventpipe up` and the CLI with: local AWS credentials (kinesalite and moto
    take any) and the analytics virtualenv for dbt and GX; `extra` wins."""
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local",
           "AWS_DEFAULT_REGION": "us-east-1", **extra}
    env.setdefault("EVENTPIPE_ANALYTICS_PYTHON", str(REPO_ROOT / ".venvs" / "analytics" / "bin" / "python"))
    return env


def stack_logs(up_log: Path, state_dir: Path, lines: int = 30) -> str:
    """The last lines of `eventpipe up`'s own log and of each component's log in its state folder (for failures)."""
    parts = []
    for path in [up_log, *sorted((state_dir / "logs").glob("*.log"))]:
        try:
            tail = path.read_text(errors="replace").splitlines()[-lines:]
        except OSError as exc:
            tail = [f"(no log: {exc})"]
        parts.append(f"== {path.name} ==\n" + "\n".join(tail))
    return "\n".join(parts)
