"""The `eventpipe` command's exit codes, one meaning each (the table in services/cli/README.md).

Scripts branch on them as on kubectl's or gh's: 0 worked, 1 the thing failed, 2 the command line or the
configuration is wrong (click's own usage errors are 2 too), 3 there is no stack to talk to, 4 a wait ran out.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    """The command did what it was asked."""
    FAILED = 1
    """It ran and the operation failed: a query error, failed jobs or requests, a stack that crashed."""
    USAGE = 2
    """A bad option or argument (click's usage errors), a missing API key, an unknown component."""
    NO_STACK = 3
    """No running stack in the state folder (start one with `eventpipe up`)."""
    TIMEOUT = 4
    """A wait ran out of time: `wait`, `send --wait`, `up --detach`, `down`."""
    INTERRUPTED = 130
    """Ctrl-C (128 + SIGINT, as a shell reports it)."""
