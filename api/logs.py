"""Logs: one structured line per request, and the process's own messages, as JSON or as text.

Every request is logged once, after its response, with a request id (the client's `X-Request-ID`
when it sends a sane one, else a new one, echoed in the response), the method, the route template
(never the raw path: payment and sign-in codes travel in paths), the status, the duration and the
principal that authenticated. Tokens, payment codes, card codes and sign-in codes are never
logged: nothing here reads headers other than X-Request-ID, bodies or raw paths.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

LOG_FORMATS = ("console", "json")
DEFAULT_LOG_FORMAT = "console"
DEFAULT_LOG_LEVEL = "info"
REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")  # a client's id is echoed only if it is this plain
REQUEST_LOGGER = "jindou.request"
# Libraries whose per-call lines drown what a person needs (the demo's tokens, the bench's table).
CHATTY_LOGGERS = ("httpx", "httpcore", "uvicorn.access", "uvicorn.error")
_RECORD_FIELDS = set(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _extra(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in vars(record).items() if k not in _RECORD_FIELDS}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        } | _extra(record)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)-7s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        extra = " ".join(f"{k}={v}" for k, v in _extra(record).items())
        text = super().format(record)
        return f"{text} {extra}" if extra else text


def configure_logging(level: str = DEFAULT_LOG_LEVEL, log_format: str = DEFAULT_LOG_FORMAT, *, quiet: bool = False) -> None:
    """`quiet` (the demo, the bench): only warnings from libraries and no request lines."""
    if log_format not in LOG_FORMATS:
        raise ValueError(f"JINDOU_LOG_FORMAT must be one of {', '.join(LOG_FORMATS)}, not {log_format!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if log_format == "json" else ConsoleFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    logging.getLogger(REQUEST_LOGGER).setLevel(logging.WARNING if quiet else level.upper())


def request_id_from(headers: list[tuple[bytes, bytes]]) -> str:
    for name, value in headers:
        if name == b"x-request-id":
            candidate = value.decode("latin-1")
            if REQUEST_ID_PATTERN.match(candidate):
                return candidate
    return uuid.uuid4().hex


def log_request(*, request_id: str, method: str, route: str, status: int, duration_s: float,
                principal_id: str | None) -> None:
    logger = logging.getLogger(REQUEST_LOGGER)
    if not logger.isEnabledFor(logging.INFO):
        return
    logger.info(
        "%s %s %s", method, route, status,
        extra={"request_id": request_id, "method": method, "route": route, "status": status,
               "duration_ms": round(duration_s * 1000, 2), "principal_id": principal_id},
    )
