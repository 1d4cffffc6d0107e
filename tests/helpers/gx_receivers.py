"""What the GX tests' alert receivers (tests/gx/conftest.py) record: the webhook's bodies, the SMTP server's
messages, and the credentials the SMTP server requires."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

SMTP_USER = "quality-bot"
SMTP_PASSWORD = "smtp-Pa55-never-logged"


@dataclass
class WebhookReceiver:
    """A Slack-compatible incoming webhook: a real HTTP server that records each JSON body POSTed to it."""

    url: str
    bodies: list[dict[str, Any]] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    status: int = 200
    received: threading.Event = field(default_factory=threading.Event)

    def clear(self) -> None:
        self.bodies.clear()
        self.paths.clear()
        self.status = 200
        self.received.clear()


@dataclass
class MailReceiver:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    logins: list[str] = field(default_factory=list)

    def clear(self) -> None:
        self.messages.clear()
        self.logins.clear()
