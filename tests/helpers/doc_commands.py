"""Finding the shell commands the docs show: fenced ```bash/```sh blocks of the READMEs, and the command lines of
the stack's "Where to look" summary. Pure text functions; tests/docs/test_doc_commands.py runs what they find.

Convention (README.md, "Docs"): a command meant to be run is in a ```bash (or ```sh) block, one command per line
(a trailing backslash continues it; `for ... done` is one command); ```text blocks hold synopses and output.
Every fenced block has a language, so no command hides in an untagged block.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SHELL = frozenset({"bash", "sh", "shell"})
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")


@dataclass(frozen=True)
class Block:
    line: int
    """1-based line of the opening fence."""
    lang: str
    body: str


@dataclass(frozen=True)
class Command:
    where: str
    """`path:line` (or `where to look: label`), for failure messages."""
    text: str


def fenced_blocks(markdown: str) -> list[Block]:
    blocks: list[Block] = []
    lines = markdown.splitlines()
    index = 0
    while index < len(lines):
        match = FENCE.match(lines[index])
        if match is None:
            index += 1
            continue
        fence, start = match.group(2), index
        body: list[str] = []
        index += 1
        while index < len(lines) and not lines[index].strip().startswith(fence):
            body.append(lines[index])
            index += 1
        blocks.append(Block(start + 1, match.group(3).lower(), "\n".join(body)))
        index += 1
    return blocks


def split_commands(body: str) -> list[tuple[int, str]]:
    """(line offset in the block, command) for each logical command: continuations joined, loops kept whole."""
    out: list[tuple[int, str]] = []
    pending: list[str] = []
    start = 0
    depth = 0
    for offset, raw in enumerate(body.splitlines()):
        line = raw.rstrip()
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            start = offset
        pending.append(line)
        first = line.split("#", 1)[0].split()
        depth += sum(1 for word in first if word in ("for", "while", "until", "if"))
        depth -= sum(1 for word in first if word.rstrip(";") in ("done", "fi"))
        if line.endswith("\\") or depth > 0:
            continue
        out.append((start, "\n".join(pending)))
        pending = []
    if pending:
        out.append((start, "\n".join(pending)))
    return out


def readme_commands(path: str, markdown: str) -> list[Command]:
    commands: list[Command] = []
    for block in fenced_blocks(markdown):
        if block.lang in SHELL:
            commands.extend(Command(f"{path}:{block.line + 1 + offset}", text)
                            for offset, text in split_commands(block.body))
    return commands


def untagged_blocks(markdown: str) -> list[int]:
    """Lines of fenced blocks without a language (the convention above forbids them)."""
    return [block.line for block in fenced_blocks(markdown) if not block.lang]


def summary_commands(summary: str, eventpipe: str) -> list[Command]:
    """The command lines of a "Where to look" summary: values that call the eventpipe CLI."""
    commands = []
    for line in summary.splitlines():
        label, sep, value = line.strip().partition("  ")
        value = value.strip()
        if sep and value.startswith(eventpipe):
            commands.append(Command(f"where to look: {label}", value))
    return commands


def summary_urls(summary: str) -> list[tuple[str, str]]:
    """(label, url) of the summary's http URLs."""
    urls = []
    for line in summary.splitlines():
        label, sep, value = line.strip().partition("  ")
        value = value.strip()
        if sep and value.startswith("http://"):
            urls.append((label, value.split()[0]))
    return urls
