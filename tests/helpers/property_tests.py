"""The property tests of the suite and docs/properties.md's index of them, read as data (pure text functions).

A property test is a test function whose docstring starts with `Property N:` (PLAN's numbering); the index lists
each as a table row `| N | title | what is checked | `path::function` |`.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

DOCSTRING = re.compile(r"^Property (\d+):\s*(.*)", re.DOTALL)
ROW = re.compile(r"^\|\s*(\d+)\s*\|.*\|\s*`([^`]+::[^`]+)`\s*\|\s*$")


def property_tests(tests_root: Path) -> dict[tuple[int, str], str]:
    """{(N, "tests/x/test_y.py::test_z"): the docstring's first sentence} for every `Property N:` test."""
    found: dict[tuple[int, str], str] = {}
    for path in sorted(tests_root.rglob("test_*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) or not node.name.startswith("test"):
                continue
            match = DOCSTRING.match(ast.get_docstring(node) or "")
            if match is None:
                continue
            test_id = f"{path.relative_to(tests_root.parent).as_posix()}::{node.name}"
            found[(int(match.group(1)), test_id)] = " ".join(match.group(2).split())
    return found


def indexed(markdown: str) -> set[tuple[int, str]]:
    """The (N, test id) pairs docs/properties.md lists."""
    return {(int(m.group(1)), m.group(2)) for line in markdown.splitlines() if (m := ROW.match(line.strip()))}
