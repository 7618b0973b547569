"""Access lines written past the logging machinery are the lines it would have written, and
that shortcut is taken only while nothing else would have seen them."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from kserve_stack_runtimes import logs
from kserve_stack_runtimes.settings import ServerSettings
from kserve_stack_runtimes.transports.access import FIELDS, AccessLog, access_log

LINE = {
    "client": "127.0.0.1:5000", "method": "POST", "path": "/v2/models/m/infer", "status": 200,
    "grpc_status": "-", "started": 0.0, "request_id": "rid-1", "model": "m", "protocol": "v2",
}  # fmt: skip


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    """Logging as the server sets it up, into a string: pytest's own capturing handlers,
    which it adds around each test, are set aside meanwhile."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    logs.configure("INFO")
    assert logs._HANDLER is not None
    out = io.StringIO()
    logs._HANDLER.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        logs._HANDLER = None


def _only_ours() -> None:
    assert logs._HANDLER is not None
    logging.getLogger().handlers[:] = [logs._HANDLER]


def _lines(out: io.StringIO) -> list[dict[str, object]]:
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    for line in lines:
        assert line.pop("ts")
    return lines


@pytest.mark.parametrize("fmt", [None, "%(method)s %(path)s %(status)s"])
def test_direct_lines_equal_the_logging_path(stream: io.StringIO, fmt: str | None) -> None:
    _only_ours()
    settings = ServerSettings(access_log_format=fmt)
    direct = AccessLog(settings)
    assert direct._direct is not None
    direct.write(logging.INFO, "POST /v2/models/m/infer 200", **LINE)
    slow = AccessLog(settings)
    slow._direct = None
    slow.write(logging.INFO, "POST /v2/models/m/infer 200", **LINE)
    first, second = _lines(stream)
    for line in (first, second):  # durations differ: they are measured at each write
        assert line.pop("duration_ms", 0.0) >= 0
    assert first == second and list(first) == list(second)
    if fmt is None:  # every field an access line has, as --access_log_format knows them
        assert set(first) - {"level", "logger", "msg"} == set(FIELDS) - {"duration_ms"}


def test_no_shortcut_when_something_else_would_see_the_line(stream: io.StringIO) -> None:
    _only_ours()
    assert logs.direct_writer(access_log) is not None
    seen: list[logging.LogRecord] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record)

    collect = Collect()
    access_log.addHandler(collect)
    try:
        assert logs.direct_writer(access_log) is None
        AccessLog(ServerSettings()).write(logging.INFO, "line", **LINE)
        assert len(seen) == 1 and len(_lines(stream)) == 1
    finally:
        access_log.removeHandler(collect)
    logging.getLogger().addFilter(logging.Filter("elsewhere"))
    try:
        assert logs.direct_writer(access_log) is None
    finally:
        logging.getLogger().filters.clear()
    logging.getLogger().addHandler(collect)
    try:
        assert logs.direct_writer(access_log) is None
    finally:
        logging.getLogger().removeHandler(collect)
