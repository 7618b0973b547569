"""Access logs: one line per REST request and per gRPC call, written after the answer left.

Both transports log the same fields, so one ``--access_log_format`` serves both and a log
pipeline sees one shape: ``status`` is the HTTP status (200 for a gRPC answer, whatever its
gRPC status), ``grpc_status`` the gRPC status name (``-`` for REST). Health probes and metric
scrapes are logged at DEBUG: they come every few seconds and would drown the log.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from kserve_stack_runtimes import logs
from kserve_stack_runtimes.settings import ServerSettings

access_log = logging.getLogger("kserve_stack_runtimes.access")

#: The keys an access line has (and ``--access_log_format`` may use).
FIELDS = (
    "client",
    "method",
    "path",
    "status",
    "grpc_status",
    "duration_ms",
    "request_id",
    "model",
    "protocol",
)


class AccessLog:
    """Writes access lines as structured fields, or in the operator's %-style format."""

    def __init__(self, settings: ServerSettings) -> None:
        self.enabled = settings.access_log
        self.format = settings.access_log_format
        # Made after logging is configured (at server start): the same lines, written cheaper
        # when nothing but the server's own JSON handler would see them.
        self._direct = logs.direct_writer(access_log)

    def level(self, probe: bool) -> int:
        """The level a line would be written at, or 0 if it would not be written (the caller
        then need not gather its fields)."""
        if not self.enabled:
            return 0
        level = logging.DEBUG if probe else logging.INFO
        return level if access_log.isEnabledFor(level) else 0

    def write(
        self,
        level: int,
        summary: str,
        *,
        client: str,
        method: str,
        path: str,
        status: int,
        grpc_status: str,
        started: float,
        request_id: str,
        model: str,
        protocol: str,
    ) -> None:
        """One line: ``summary`` with the fields (:data:`FIELDS`), or the operator's format
        over them; ``started`` is the ``time.perf_counter()`` at which the request came."""
        fields: dict[str, Any] = {
            "client": client,
            "method": method,
            "path": path,
            "status": status,
            "grpc_status": grpc_status,
            "duration_ms": round((time.perf_counter() - started) * 1e3, 3),
            "request_id": request_id,
            "model": model,
            "protocol": protocol,
        }
        direct = self._direct
        if self.format:
            line = self.format % fields
            if direct is None:
                access_log.log(level, line)
            else:  # as logged without extra fields: the request id of the current context
                direct(level, line, logs.request_id_var.get(), {})
        elif direct is None:
            access_log.log(level, summary, extra=fields)
        else:
            direct(level, summary, fields["request_id"], fields)
