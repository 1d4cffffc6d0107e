"""Where the local stack finds the repository's pieces: the shop schema, the analytics venv, kinesalite.

The CLI is installed editable from the repository (envs/services.txt), so the repository root is found from
this file; EVENTPIPE_REPO_ROOT overrides it (e.g. when the package is installed elsewhere).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path


def repo_root() -> Path:
    override = os.environ.get("EVENTPIPE_REPO_ROOT")
    if override:
        return Path(override).resolve()
    return Path(__file__).resolve().parents[4]


def shop_schema() -> Path:
    return repo_root() / "examples" / "shop-schema.json"


def analytics_python() -> Path:
    """The analytics virtualenv's interpreter (dbt + GX live there: their pins clash with the services')."""
    override = os.environ.get("EVENTPIPE_ANALYTICS_PYTHON")
    if override:
        return Path(override)
    return repo_root() / ".venvs" / "analytics" / "bin" / "python"


def kinesalite_bin() -> Path:
    """kinesalite from npm, installed (once, cached) by scripts/tools.sh."""
    out = subprocess.run([str(repo_root() / "scripts" / "tools.sh"), "node"], check=True, capture_output=True,
                         text=True)
    return Path(out.stdout.strip().splitlines()[-1]) / "kinesalite"
