"""The common exception style of the Python components.

Every error a component raises on purpose derives from `EventpipeError`; it carries a stable machine-readable
`code` and keyword `details` (field, line, ...) so that logs and HTTP answers can show *where* and *what*.
The Rust core raises its own hierarchy (`eventpipe_core.EventpipeError`); services wrap it when they add context.
"""

from __future__ import annotations

from typing import Any


class EventpipeError(Exception):
    """Base of every deliberate error in the Python components."""

    code: str = "eventpipe_error"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view for logs and API error bodies."""
        return {"code": self.code, "message": self.message, **self.details}


class ConfigurationError(EventpipeError):
    """A setting is missing or invalid; the message names the setting."""

    code = "configuration_error"


class DependencyUnavailableError(EventpipeError):
    """A server the component needs (stream, catalog, store) did not answer."""

    code = "dependency_unavailable"
