"""JSON logs: one object per line with time, level, logger, message and the request id.

Fields passed with `extra=` (the access log's method, path, status, duration_ms, operation...)
become keys of the object. The request id of the HTTP request being served is added to every
record logged inside it. Nothing here reads request headers, so credentials cannot end up in a log.
Under `serve --workers N` every line also says which process wrote it (`pid`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from aibridge_graphql.core.scope import current_request_id

# What every LogRecord has; anything else on a record came from `extra=`.
_STANDARD: Final = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)
TEXT_FORMAT: Final = "%(asctime)s %(levelname)s %(name)s: %(message)s"
TEXT_FORMAT_WITH_PID: Final = "%(asctime)s %(levelname)s %(name)s[%(process)d]: %(message)s"
# httpx logs every upstream URL at INFO, search filters included; metrics and spans cover those
# calls, so only its warnings are kept.
QUIET_LOGGERS: Final = ("httpx", "httpcore")


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object on one line (with the process id when `with_pid`)."""

    def __init__(self, *, with_pid: bool = False) -> None:
        super().__init__()
        self.with_pid = with_pid

    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        out: dict[str, Any] = {
            "time": stamp.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if self.with_pid:
            out["pid"] = record.process
        request_id = current_request_id()
        if request_id is not None:
            out["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = value
        if record.exc_info:
            out["exc_info"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def configure_logging(
    level: int, log_format: str, stream: TextIO | None = None, *, with_pid: bool = False
) -> None:
    """Send the process's logs to `stream` (stderr) as JSON lines, or as text when asked;
    `with_pid` when several processes write to the same stream."""
    handler = logging.StreamHandler(stream or sys.stderr)
    formatter: logging.Formatter
    if log_format == "json":
        formatter = JsonFormatter(with_pid=with_pid)
    else:
        formatter = logging.Formatter(TEXT_FORMAT_WITH_PID if with_pid else TEXT_FORMAT)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
