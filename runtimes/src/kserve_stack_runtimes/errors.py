"""Every error the model server raises on purpose, and one table mapping each to HTTP/gRPC status.

Transports never guess a status: they look the exception class up in :data:`STATUS_TABLE`
(walking the MRO, so a user's subclass of :class:`InvalidInputError` is a 400 too). Anything that is
not a :class:`ServingError` is an internal failure: it is logged with its traceback and answered
with a 500 whose message carries no stack trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class GrpcCode(IntEnum):
    """The subset of gRPC status codes used here (values are the wire codes)."""

    OK = 0
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14


class ServingError(Exception):
    """Base class of the errors a client is told about in an ``{"error": "..."}`` body."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidInputError(ServingError):
    """The request body or a tensor in it is malformed (bad JSON, shape, datatype, ...)."""


class ModelNotFoundError(ServingError):
    """No model of that name (and version) is in the repository."""

    def __init__(self, name: str, version: str | None = None) -> None:
        what = f"{name!r}" if not version else f"{name!r} version {version!r}"
        super().__init__(f"Model with name {what} does not exist.")
        self.name = name


class ModelNotReadyError(ServingError):
    """The model exists but is not loaded (yet, or any more)."""

    def __init__(self, name: str) -> None:
        super().__init__(f"Model with name {name!r} is not ready.")
        self.name = name


class ServerNotReadyError(ServingError):
    """The server is shutting down and accepts no new inference work."""


class PayloadTooLargeError(ServingError):
    """The request body exceeds the configured limit (``--max_request_body_bytes``)."""


class NotImplementedByModelError(ServingError):
    """The model does not implement the requested verb (e.g. explain)."""


class RouteNotFoundError(ServingError):
    """No endpoint at that path."""


class MethodNotAllowedError(ServingError):
    """The path exists, the HTTP method does not."""


class UnsupportedMediaTypeError(ServingError):
    """The body's content type is not one the endpoint reads."""


class UpstreamError(ServingError):
    """A transformer's predictor answered with an error or could not be reached."""

    def __init__(self, message: str, http_status: int = 502) -> None:
        super().__init__(message)
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class Status:
    """The HTTP and gRPC status a class of error is answered with."""

    http: int
    grpc: GrpcCode


STATUS_TABLE: dict[type[BaseException], Status] = {
    InvalidInputError: Status(400, GrpcCode.INVALID_ARGUMENT),
    ModelNotFoundError: Status(404, GrpcCode.NOT_FOUND),
    RouteNotFoundError: Status(404, GrpcCode.NOT_FOUND),
    MethodNotAllowedError: Status(405, GrpcCode.UNIMPLEMENTED),
    PayloadTooLargeError: Status(413, GrpcCode.RESOURCE_EXHAUSTED),
    UnsupportedMediaTypeError: Status(415, GrpcCode.INVALID_ARGUMENT),
    NotImplementedByModelError: Status(501, GrpcCode.UNIMPLEMENTED),
    UpstreamError: Status(502, GrpcCode.UNAVAILABLE),
    ModelNotReadyError: Status(503, GrpcCode.UNAVAILABLE),
    ServerNotReadyError: Status(503, GrpcCode.UNAVAILABLE),
}

INTERNAL = Status(500, GrpcCode.INTERNAL)


def status_of(exc: BaseException) -> Status:
    """The status for ``exc``: the entry of its nearest class in :data:`STATUS_TABLE`."""
    if isinstance(exc, UpstreamError):
        return Status(exc.http_status, GrpcCode.UNAVAILABLE)
    for cls in type(exc).__mro__:
        status = STATUS_TABLE.get(cls)
        if status is not None:
            return status
    return INTERNAL


def public_message(exc: BaseException) -> str:
    """What the client is told: the message of a ServingError, a fixed text otherwise."""
    if isinstance(exc, ServingError):
        return exc.message
    return f"Internal server error ({type(exc).__name__}); see the server log."
