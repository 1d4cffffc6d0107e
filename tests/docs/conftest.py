"""One local stack for the docs tests, started as a user would (`eventpipe up --detach`) in a folder that looks
like the repository: every top-level entry of the repository is a symlink there, and `.eventpipe` is the stack's
own state folder. So the READMEs' commands run as written, from that folder, against this stack."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests.helpers.docs_stack import EVENTPIPE, DocsStack, repository_lookalike
from tests.helpers.servers import free_port, stack_env


@pytest.fixture(scope="session")
def docs_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocsStack]:
    root = repository_lookalike(tmp_path_factory.mktemp("docs") / "eventpipe")
    state = root / ".eventpipe"
    env = stack_env()
    ports = [("--ingest-port", free_port()), ("--kinesis-port", free_port()), ("--ingest-metrics-port", free_port()),
             ("--metrics-port", free_port()), ("--transform-metrics-port", free_port())]
    up = subprocess.run(
        [str(EVENTPIPE), "up", "--detach", "--state-dir", str(state), *(f"{k}={v}" for k, v in ports),
         "--no-monitoring", "--commit-interval", "1", "--transform-interval", "1", "--transform-settle", "2",
         "--timeout", "240"], cwd=root, env=env, capture_output=True, text=True, timeout=300)
    stack = DocsStack(root, state, up.stdout, env)
    try:
        assert up.returncode == 0, f"up --detach: {up.returncode}\n{up.stdout}\n{up.stderr}\n{stack.logs()}"
        # What `make run` does next: sample traffic, then wait until dbt and GX ran on it.
        sent = subprocess.run([str(EVENTPIPE), "send", "--state-dir", str(state), "--count", "2000",
                               "--duplicates", "0.02", "--invalid", "0.01", "--wait", "--timeout", "300"],
                              cwd=root, env=env, capture_output=True, text=True, timeout=400)
        assert sent.returncode == 0, f"{sent.stdout}\n{sent.stderr}\n{stack.logs()}"
        modelled = subprocess.run([str(EVENTPIPE), "wait", "--state-dir", str(state), "--modelled",
                                   "--timeout", "600"], cwd=root, env=env, capture_output=True, text=True,
                                  timeout=700)
        assert modelled.returncode == 0, f"{modelled.stdout}\n{modelled.stderr}\n{stack.logs()}"
        yield stack
    finally:
        down = subprocess.run([str(EVENTPIPE), "down", "--state-dir", str(state)], env=env, capture_output=True,
                              text=True, timeout=200)
        assert down.returncode == 0, f"{down.stdout}\n{down.stderr}"
        shutil.rmtree(state, ignore_errors=True)
