"""The dashboard's tests run in its own virtualenv (.venvs/dashboard); the package is dashboard/src."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
