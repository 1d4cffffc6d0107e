"""`python -m eventpipe_operator` (the image's entry point) parses its flags and documents them."""

from __future__ import annotations

import subprocess
import sys


def test_help_lists_the_flags() -> None:
    out = subprocess.run([sys.executable, "-m", "eventpipe_operator", "--help"], capture_output=True, text=True,
                         check=True, timeout=60)
    for flag in ("--namespace", "--standalone", "--liveness"):
        assert flag in out.stdout


def test_unknown_flag_is_refused() -> None:
    out = subprocess.run([sys.executable, "-m", "eventpipe_operator", "--bogus"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 2 and "unrecognized arguments: --bogus" in out.stderr
