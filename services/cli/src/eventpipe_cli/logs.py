"""`eventpipe logs [component] [-f]`: the local stack's logs (one file per component in <state>/logs).

Pure reading here; the command prints. Following polls the files' sizes (no inotify: the same code works on
every platform) and starts over when a file shrinks (a new `up` truncating it is not expected, but cheap to
handle).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eventpipe_cli.state import StatePaths


def components(paths: StatePaths) -> dict[str, Path]:
    """The logs there are, by component name (`consumer` for logs/consumer.log), sorted by name."""
    if not paths.logs.is_dir():
        return {}
    return {path.stem: path for path in sorted(paths.logs.glob("*.log"))}


def last_lines(path: Path, count: int | None) -> tuple[list[str], int]:
    """The file's last `count` lines (all when None) and the offset its end was at."""
    data = path.read_bytes()
    lines = data.decode("utf-8", errors="replace").splitlines()
    return (lines if count is None else lines[-count:] if count > 0 else []), len(data)


@dataclass
class Follower:
    """New complete lines of several files since the offsets given, one poll at a time."""

    offsets: dict[str, int]
    files: dict[str, Path]
    partial: dict[str, bytes] = field(default_factory=dict)

    def poll(self) -> list[tuple[str, str]]:
        out: list[tuple[str, str]] = []
        for name, path in self.files.items():
            try:
                size = path.stat().st_size
            except FileNotFoundError:
                continue
            offset = self.offsets.get(name, 0)
            if size < offset:
                offset, self.partial[name] = 0, b""
            if size == offset:
                continue
            with open(path, "rb") as handle:
                handle.seek(offset)
                chunk = self.partial.get(name, b"") + handle.read(size - offset)
            self.offsets[name] = size
            *complete, rest = chunk.split(b"\n")
            self.partial[name] = rest
            out.extend((name, line.decode("utf-8", errors="replace")) for line in complete)
        return out


def follow(follower: Follower, emit: Callable[[str, str], None], keep_going: Callable[[], bool],
           interval: float = 0.3) -> None:
    """Emit new lines until keep_going() says stop (the stack stopped), then emit what is left."""
    while keep_going():
        for name, line in follower.poll():
            emit(name, line)
        time.sleep(interval)
    for name, line in follower.poll():
        emit(name, line)
