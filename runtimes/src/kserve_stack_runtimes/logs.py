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
from collections.abc import Callable
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

    def timestamp(self, created: float) -> str:
        second = int(created)
        if second != self._second:  # a line per request: format the date once a second
            self._second = second
            self._second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        return f"{self._second_text}.{int((created - second) * 1000):03d}Z"

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "ts": self.timestamp(record.created),
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


#: The handler :func:`configure` installed (None under a ``--log_config_file`` or without it).
_HANDLER: _BufferedHandler | None = None

#: Writes one line for ``logger`` at a level: ``(level, msg, request_id, fields)``.
LineWriter = Callable[[int, str, str, dict[str, Any]], None]


def direct_writer(logger: logging.Logger) -> LineWriter | None:
    """A writer of ``logger``'s lines straight to the JSON stream, or None.

    One access line per request through the ``logging`` machinery (a LogRecord, the handler
    chain, the formatter's walk over the record) costs about 25 us, a tenth of a whole request
    to this server. When logging is exactly as :func:`configure` set it up, so that nothing
    but our JSON handler would see the record, the same line is written directly: the caller
    checks the level first (``logger.isEnabledFor``). Under any other configuration (a
    ``--log_config_file``, handlers or filters added by the application) this returns None and
    the caller logs as usual.
    """
    handler = _HANDLER
    root = logging.getLogger()
    if handler is None or root.handlers != [handler] or root.filters:
        return None
    if len(handler.filters) != 1 or not isinstance(handler.filters[0], RequestIdFilter):
        return None
    formatter = handler.formatter
    if type(formatter) is not JsonFormatter:
        return None
    node: logging.Logger | None = logger
    while node is not None and node is not root:
        if node.handlers or node.filters or not node.propagate:
            return None
        node = node.parent
    stream = handler.stream
    lock = handler.lock
    name = logger.name

    def write(level: int, msg: str, request_id: str, fields: dict[str, Any]) -> None:
        if level < handler.level:
            return
        doc: dict[str, Any] = {
            "ts": formatter.timestamp(time.time()),
            "level": logging.getLevelName(level),
            "logger": name,
            "msg": msg,
            "request_id": request_id,
        }
        for key, value in fields.items():
            if key != "request_id":
                doc[key] = value
        line = orjson.dumps(doc, default=str).decode()
        if lock is None:
            stream.write(line + "\n")
            return
        with lock:
            stream.write(line + "\n")

    return write


def configure(level: str = "INFO", config_file: str | None = None) -> None:
    """Set up logging: a dictConfig file when given, JSON lines on stderr otherwise."""
    global _HANDLER  # noqa: PLW0603 - the one handler of this process's default logging
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
        _HANDLER = None
        return
    handler = _HANDLER = _BufferedHandler(_buffered_stderr())
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
