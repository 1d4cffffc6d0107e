"""The docs tests' stack handle (what tests/docs/conftest.py yields): run a command from the look-alike folder."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.helpers.servers import REPO_ROOT, stack_logs

EVENTPIPE = Path(sys.executable).parent / "eventpipe"


@dataclass(frozen=True)
class DocsStack:
    root: Path
    """The repository look-alike the commands run in."""
    state: Path
    up_output: str
    """What `eventpipe up --detach` printed (its "Where to look" summary)."""
    env: dict[str, str]

    def run(self, command: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["bash", "-c", command], cwd=self.root, env=self.env, capture_output=True, text=True,
                              timeout=timeout)

    def logs(self) -> str:
        return stack_logs(self.state / "logs" / "up.log", self.state)


def repository_lookalike(root: Path) -> Path:
    root.mkdir()
    for entry in REPO_ROOT.iterdir():
        if entry.name not in (".eventpipe", ".git"):
            (root / entry.name).symlink_to(entry)
    return root
