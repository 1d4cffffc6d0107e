"""Every wait of the CLI shows itself: a spinner on a terminal, a line per change of state elsewhere.

Spinners and progress go to stderr, so `-o json` and `-o csv` on stdout stay clean for pipes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from rich.console import Console


@contextmanager
def waiting(console: Console, what: str) -> Iterator[Callable[[str], None]]:
    """Show `what` while the block runs; the yielded function reports progress ("3/4 components up")."""
    if console.is_terminal:
        with console.status(f"{what}…") as status:
            yield lambda detail: status.update(f"{what}… {detail}")
        return
    console.print(f"{what}…")
    last = [""]

    def update(detail: str) -> None:
        if detail and detail != last[0]:
            console.print(f"  {detail}")
            last[0] = detail

    yield update
