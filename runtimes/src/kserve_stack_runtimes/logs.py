"""Structured (JSON-lines) logging with the request id of the request being served."""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import io
import json
import logging
import logging.config
import sys
import time
from pathlib import Path
from typing import Any

import orjson

#: The id of the request being served by this task ("-" outside a request).
request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="-")

# Record attributes that are not ``extra`` fields.
_RESERVED = set(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` from the context of the task that logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, request_id and any ``extra`` fields."""

    def __init__(self) -> None:
        super().__init__()
        self._second = -1
        self._second_text = ""

    def format(self, record: logging.LogRecord) -> str:
        second = int(record.created)
        if second != self._second:  # a line per request: format the date once a second
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        doc: dict[str, Any] = {
            "ts": f"{self._second_text}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "request_id": getattr(record, "request_id", request_id_var.get()),
        }
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_"):
                doc[key] = value
        if record.exc_info:
            doc["exc_info"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


def configure(level: str = "INFO", config_file: str | None = None) -> None:
    """Set up logging: a dictConfig file when given, JSON lines on stderr otherwise."""
    if config_file:
        path = Path(config_file)
        text = path.read_text()
        if path.suffix in {".yaml", ".yml"}:
            import yaml  # noqa: PLC0415 - only needed for YAML configs

            config = yaml.safe_load(text)
        else:
            config = json.loads(text)
        # The server's loggers exist already (module level): keep them unless told otherwise.
        config.setdefault("disable_existing_loggers", False)
        logging.config.dictConfig(config)
        return
    handler = _BufferedHandler(_buffered_stderr())
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # The JSON lines carry neither the caller's file and line nor thread and process names:
    # skip looking them up for every record (the logging HOWTO's "Optimization" switches).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False


class _BufferedHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """A StreamHandler that leaves flushing to :func:`flush`: the stock one flushes after every
    record, which would be a write(2) per access-log line."""

    def flush(self) -> None:
        pass


_STREAM: io.TextIOWrapper | None = None


def _buffered_stderr() -> io.TextIOWrapper:
    """stderr with a block buffer: one write(2) per flush instead of one per log line.

    The server flushes it every 100 ms (:func:`flush`) and at exit, so lines are late by at most
    that much while the hot path never blocks on a syscall per access-log line.
    """
    global _STREAM  # noqa: PLW0603 - one process-wide stream
    if _STREAM is None:
        sys.stderr.flush()
        _STREAM = io.TextIOWrapper(
            io.BufferedWriter(io.FileIO(sys.stderr.fileno(), "w", closefd=False), 1 << 16),
            encoding="utf-8",
            errors="backslashreplace",
        )
        atexit.register(flush)
    return _STREAM


def flush() -> None:
    """Write out buffered log lines (called periodically by the server and at exit)."""
    if _STREAM is not None:
        with contextlib.suppress(OSError, ValueError):
            _STREAM.flush()
