"""Structured JSON logs for every component: one object per line with timestamp, level, component, message.

Usage::

    from eventpipe_common.logging import configure_logging, get_logger
    configure_logging("ingest")
    log = get_logger()
    log.info("published", records=500, job_id=job_id)
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_SECRET_KEYS = ("api_key", "password", "secret", "token", "authorization", "aws_secret_access_key")


def _rename_event_to_message(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    event_dict["message"] = event_dict.pop("event", "")
    return event_dict


def _redact_secrets(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Last line of defence: a field whose name looks secret never reaches the log in clear."""
    for key in list(event_dict):
        if any(marker in key.lower() for marker in _SECRET_KEYS):
            event_dict[key] = "***"
    return event_dict


def configure_logging(component: str, level: str = "INFO", stream: Any = None) -> None:
    """Route structlog and the standard library's logging to JSON lines on stderr (or `stream`)."""
    log_level = logging.getLevelName(level.upper())
    if not isinstance(log_level, int):
        log_level = logging.INFO
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        _redact_secrets,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.format_exc_info,
            _rename_event_to_message,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(log_level),
        logger_factory=structlog.PrintLoggerFactory(file=stream or sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(component=component)

    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                _rename_event_to_message,
                structlog.processors.JSONRenderer(),
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(log_level)


def get_logger(**initial: Any) -> Any:
    """A bound structlog logger; `initial` key-values are added to every line it writes."""
    return structlog.get_logger(**initial)


_INFO_BY_WRAPPER: dict[type, bool] = {}


def info_enabled() -> bool:
    """Whether `log.info` writes anything under structlog's configuration now: the success line of every request
    is filtered out at the default level (WARNING in production), but the lazy logger proxy assembles a bound
    logger (context, logger, wrapper) on every call before the filter drops it. A wrapper class that does not
    filter (structlog's default) counts as enabled."""
    wrapper = structlog.get_config()["wrapper_class"]
    enabled = _INFO_BY_WRAPPER.get(wrapper)
    if enabled is None:
        probe = wrapper(None, processors=[], context={})
        check = getattr(probe, "is_enabled_for", None)
        enabled = True if check is None else bool(check(logging.INFO))
        _INFO_BY_WRAPPER[wrapper] = enabled
    return enabled
