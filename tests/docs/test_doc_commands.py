"""Every shell command the docs show runs: the ```bash blocks of README.md and the component READMEs, and the
command lines of the stack's "Where to look" summary, found in the files and in the output at test time, run with
bash from a copy of the repository's layout (tests/docs/conftest.py) against a running local stack on free ports.
A command fails the test on a non-zero exit or a Python traceback in its output.

Commands that cannot run in a test are listed in NOT_RUN below, each with the reason and where it is tested
instead; every entry must still match a command in the docs (no stale entries), and nothing else is skipped.
"""

from __future__ import annotations

import re
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from tests.helpers.doc_commands import Command, readme_commands, summary_commands, summary_urls, untagged_blocks
from tests.helpers.docs_stack import EVENTPIPE, DocsStack
from tests.helpers.servers import REPO_ROOT

NOT_RUN: dict[str, str] = {
    r"^make run\b": "stays in the foreground until Ctrl-C on the default ports (8000, 4567, 9102...); its steps "
                    "(up, wait, send --wait, wait --modelled, status, query, where) are what this test runs, on "
                    "free ports",
    r"^make test\b": "the whole suite, this test included (CI runs it)",
    r"^make kind-(up|down)\b": "needs Docker and kind, which the CI machine does not have (scripts/cluster.sh is "
                               "the Docker-free cluster, tested by the cluster stage)",
    r"^for i in services operator analytics": "docker build and push to an EKS registry ($REGISTRY): needs Docker "
                                              "and a registry; the images stage builds the same Dockerfiles",
    r"^kubectl ": "needs a Kubernetes cluster: the cluster stage (tests/cluster) applies the example pipelines on a "
                  "real node; the machine runs one node at a time, so not beside this stack",
    r"^helm (install|pull) ": "needs a Kubernetes cluster (or a chart registry): the cluster stage installs the "
                              "chart on a real node; tests/monitoring renders it with helm template",
    r"^scripts/images\.sh ": "builds the container images with podman (minutes, gigabytes): the images stage",
    r"^scripts/cluster\.sh ": "starts or stops the machine's single Kubernetes node: the cluster stage",
    r"^source \"\$\(scripts/cluster\.sh env\)\"": "needs the node `scripts/cluster.sh up` starts: the cluster stage",
    r"eventpipe up --airflow": "stays in the foreground until Ctrl-C on port 8080: tests/cli/test_airflow_stack.py "
                               "starts the Airflow stack on free ports",
    r"streamlit run dashboard/app\.py": "a server in the foreground on port 8501: tests/dashboard serves the same "
                                        "app on a free port and drives it with Chromium",
    r"python -m eventpipe_ingest( |$)": "a server in the foreground on 127.0.0.1:8000: this test's stack runs the "
                                        "same argv on a free port (eventpipe_cli.stack.plan_components)",
}

TRACEBACK = "Traceback (most recent call last)"


def doc_files() -> list[Path]:
    listed = subprocess.run(["git", "ls-files", "*README.md"], cwd=REPO_ROOT, capture_output=True, text=True,
                            check=True).stdout.split()
    # Component READMEs first: their commands (dbt build, GX) run while no new traffic arrives, so they do not
    # race the stack's own transform loop for dbt's DuckDB file; then README.md, whose `send` adds traffic.
    return sorted((REPO_ROOT / name for name in listed), key=lambda p: (p.name == "README.md" and
                                                                        p.parent == REPO_ROOT, str(p)))


def all_readme_commands() -> list[Command]:
    return [cmd for path in doc_files()
            for cmd in readme_commands(str(path.relative_to(REPO_ROOT)), path.read_text(encoding="utf-8"))]


def reason_not_run(command: str) -> str | None:
    first = command.strip()
    for pattern, reason in NOT_RUN.items():
        if re.search(pattern, first):
            return reason
    return None


def check(stack: DocsStack, command: Command) -> str | None:
    """None when the command worked; otherwise what went wrong."""
    done = stack.run(command.text)
    output = done.stdout + done.stderr
    if done.returncode != 0 or TRACEBACK in output:
        return f"{command.where}: `{command.text}` exited {done.returncode}\n{output[-3000:]}"
    return None


def test_every_fenced_block_has_a_language() -> None:
    """An untagged block could hold a command that no test would find."""
    missing = {str(path.relative_to(REPO_ROOT)): lines for path in doc_files()
               if (lines := untagged_blocks(path.read_text(encoding="utf-8")))}
    assert not missing, f"fenced blocks without a language (```bash, ```text, ```json...): {missing}"


def test_every_not_run_entry_matches_a_documented_command() -> None:
    commands = [cmd.text for cmd in all_readme_commands()]
    stale = [pattern for pattern in NOT_RUN if not any(re.search(pattern, c.strip()) for c in commands)]
    assert not stale, f"NOT_RUN entries that match no command of the docs any more: {stale}"
    assert len(commands) >= 20, commands  # the extraction found the READMEs' commands


def test_every_command_is_run_or_says_why_not() -> None:
    """The commands NOT_RUN leaves out, with their reasons (shown by `pytest -rA`); at least ten others run."""
    skipped = [(c.where, c.text.splitlines()[0], reason) for c in all_readme_commands()
               if (reason := reason_not_run(c.text)) is not None]
    for where, text, reason in skipped:
        print(f"not run: {where}: {text} -- {reason}")
    assert len(all_readme_commands()) - len(skipped) >= 10


@pytest.mark.timeout(1200)
@pytest.mark.parametrize("command", [c for c in all_readme_commands() if reason_not_run(c.text) is None],
                         ids=lambda c: c.where)
def test_readme_command_runs_against_a_stack(docs_stack: DocsStack, command: Command) -> None:
    problem = check(docs_stack, command)
    assert problem is None, problem + "\n" + docs_stack.logs()


@pytest.mark.timeout(1200)
def test_where_to_look_commands_and_urls_work(docs_stack: DocsStack) -> None:
    where = docs_stack.run(f"{EVENTPIPE} where --state-dir .eventpipe")
    assert where.returncode == 0, where.stdout + where.stderr
    for summary in (docs_stack.up_output, where.stdout):
        assert "Where to look" in summary, summary
        commands = summary_commands(summary, str(EVENTPIPE))
        assert {c.where for c in commands} >= {"where to look: pipeline status", "where to look: a query to try",
                                               "where to look: raw events", "where to look: more traffic"}, summary
        failures = [problem for command in commands if (problem := check(docs_stack, command)) is not None]
        assert not failures, "\n\n".join(failures) + "\n" + docs_stack.logs()
        urls = summary_urls(summary)
        assert {label for label, _ in urls} >= {"API docs (OpenAPI)", "ingest metrics", "consumer metrics"}, summary
        broken = []
        for label, url in urls:
            try:
                with urllib.request.urlopen(url, timeout=10) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            if status != 200:
                broken.append(f"{label}: {url} answered {status}")
        assert not broken, broken


@pytest.mark.parametrize("sql", ["select * from warehouse.marts.dim_users limit 5",
                                 "select event_ts, ingested_at from raw_events limit 3"])
def test_timestamptz_columns_reach_python(docs_stack: DocsStack, sql: str) -> None:
    """The first failure a new user met: DuckDB needs pytz to hand TIMESTAMPTZ values to Python."""
    done = docs_stack.run(f"{EVENTPIPE} query -o json \"{sql}\"")
    assert done.returncode == 0 and TRACEBACK not in done.stderr, done.stdout + done.stderr
    assert '"rows": [{' in done.stdout, done.stdout
