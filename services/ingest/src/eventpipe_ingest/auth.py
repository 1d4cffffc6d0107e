"""API keys, stored hashed: only SHA-256 digests are configured, the key itself never leaves the client.

Format, one entry per line (a file, e.g. a Kubernetes Secret mounted as a file) or comma-separated
(the EVENTPIPE_INGEST_API_KEYS environment variable)::

    # comments and blank lines are ignored
    <name>:<sha256 hex of the key>

Make an entry: ``printf %s "$KEY" | sha256sum`` or ``python -m eventpipe_ingest.auth NAME`` (prints a new key
and its entry). Clients send ``Authorization: Bearer <key>`` or ``X-API-Key: <key>``. Logs carry the
key's name, never the key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from eventpipe_common.errors import ConfigurationError

_ENTRY = re.compile(r"^(?P<name>[A-Za-z0-9_.@-]{1,128}):(?P<digest>[0-9a-fA-F]{64})$")


@dataclass(frozen=True)
class ApiKeys:
    """Key name by SHA-256 digest (bytes)."""

    by_digest: dict[bytes, str]

    def __len__(self) -> int:
        return len(self.by_digest)

    def verify(self, key: str) -> str | None:
        """The name of the key, or None. Compares digests in constant time against every entry."""
        digest = hashlib.sha256(key.encode("utf-8")).digest()
        found: str | None = None
        for known, name in self.by_digest.items():
            if hmac.compare_digest(known, digest):
                found = name
        return found


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def parse_entries(text: str, source: str, separator: str = "\n") -> dict[bytes, str]:
    """Parse `name:sha256hex` entries; a bad entry is an error naming its source and line."""
    entries: dict[bytes, str] = {}
    for number, raw in enumerate(text.split(separator), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _ENTRY.match(line)
        if match is None:
            # Never echo the line: a misconfigured file may hold a clear key.
            raise ConfigurationError(f"{source}: entry {number} is not 'name:<64 hex digits of sha256>'",
                                     source=source, line=number)
        entries[bytes.fromhex(match["digest"])] = match["name"]
    return entries


def load_api_keys(file: Path | None, env_value: str | None) -> ApiKeys:
    """Keys from the file and the env var together."""
    entries: dict[bytes, str] = {}
    if file is not None:
        try:
            text = file.read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigurationError(f"cannot read API keys file {file}: {exc.strerror}",
                                     setting="ingest_api_keys_file") from exc
        entries.update(parse_entries(text, str(file)))
    if env_value:
        entries.update(parse_entries(env_value, "EVENTPIPE_INGEST_API_KEYS", separator=","))
    return ApiKeys(entries)


def main(argv: list[str]) -> int:
    """Print a new random key and its entry line: `python -m eventpipe_ingest.auth NAME`."""
    if len(argv) != 1 or not _ENTRY.match(f"{argv[0]}:{'0' * 64}"):
        print("usage: python -m eventpipe_ingest.auth NAME  (NAME: letters, digits, _ . @ -)", file=sys.stderr)
        return 2
    key = secrets.token_urlsafe(32)
    print(f"key:   {key}")
    print(f"entry: {argv[0]}:{hash_key(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
