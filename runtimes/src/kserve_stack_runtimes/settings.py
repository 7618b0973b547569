"""The server's settings: one object, built once by the command line (or code)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """How the model server listens, logs and shuts down."""

    #: Address both listeners bind (``--host``).
    host: str = "0.0.0.0"
    #: REST (V1, V2, metrics) port (``--http_port``).
    http_port: int = 8080
    #: gRPC (Open Inference Protocol, health) port (``--grpc_port``).
    grpc_port: int = 8081
    #: Serve gRPC too (``--enable_grpc``).
    enable_grpc: bool = True
    #: Worker processes sharing the ports with SO_REUSEPORT (``--workers``).
    workers: int = 1
    #: KServe's ``--max_threads``: accepted for compatibility, unused (gRPC runs on the loop).
    max_threads: int = 4
    #: Threads of the loop's default executor (``asyncio.to_thread``) (``--max_asyncio_workers``).
    max_asyncio_workers: int | None = None
    #: Serve ``/docs`` (a page describing ``/openapi.json``) (``--enable_docs_url``).
    enable_docs_url: bool = False
    #: A logging dictConfig file, JSON or YAML (``--log_config_file``).
    log_config_file: str | None = None
    #: Set up logging at all (``--configure_logging``).
    configure_logging: bool = True
    #: %-style format of access log lines; None logs structured JSON (``--access_log_format``).
    access_log_format: str | None = None
    #: Log access lines at all (``--enable_access_log``).
    access_log: bool = True
    #: Log each request's stage latencies (``--enable_latency_logging``).
    enable_latency_logging: bool = False
    #: Largest accepted request body in bytes, larger is a 413 (``--max_request_body_bytes``).
    max_request_body_bytes: int = 64 * 1024 * 1024
    #: Longest wait for in-flight requests after SIGTERM (``--graceful_shutdown_timeout``).
    graceful_shutdown_timeout: float = 30.0
    #: Log level of the server's loggers (``--log_level``).
    log_level: str = "INFO"
