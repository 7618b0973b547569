"""An HTTP/1.1 server for the REST transport's ASGI app, on asyncio (uvloop) and httptools.

Why not uvicorn: per request it starts a task for the app, wraps the body in events and flow
control, and writes the status line and headers and then the body with two ``write`` calls: two
system calls and, on loopback, two wake-ups of the client. Profiling our REST path under load put
a quarter of the server's CPU in those writes. This server reads the whole request body first,
runs the app inline until it first waits (no task when the model's stages are plain functions, as
``h2grpc`` does for gRPC), and a response the app sends whole (its start, then its body without
``more_body``) leaves in one write. The requests read in one pass of the loop start at the end
of that pass, the connection served longest ago first (``turns`` says why).

What it implements, server side:

* keep-alive (HTTP/1.1 by default, HTTP/1.0 with ``Connection: keep-alive``), pipelined requests
  answered in order, idle connections closed after ``keep_alive_timeout`` seconds;
* request bodies sized by Content-Length or chunked, handed to the app as one ``http.request``
  event; ``Expect: 100-continue`` is answered when the request is next in line;
* a body over ``max_body`` bytes (declared or as it arrives) runs the app at once with the part
  that arrived and ``more_body`` set, so the app's own limit answers 413; the rest of the body is
  read and dropped and the connection kept (closed if the client still waits for a 100);
* responses sized by Content-Length, or chunked when the app streams without one; HEAD answers
  carry no body; ``connection: close`` on the last response of a connection;
* a malformed request gets 400 and the connection closes; an app that fails before it started
  its response gets 500, after that the connection closes;
* ``X-Forwarded-For`` and ``X-Forwarded-Proto`` set the client and scheme when the peer is on
  loopback (a sidecar proxy), as uvicorn does by default;
* graceful stop: stop listening, close idle connections, let requests in flight finish (up to a
  grace period), then close what is left.
"""

from __future__ import annotations

import asyncio
import http
import logging
import socket
import time
import urllib.parse
from collections import deque
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import httptools

from kserve_stack_runtimes.transports.inline import run_inline
from kserve_stack_runtimes.transports.shutdown import close_gracefully
from kserve_stack_runtimes.transports.turns import Turns

log = logging.getLogger("kserve_stack_runtimes.rest")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
App = Callable[
    [Scope, Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]

_ASGI = {"version": "3.0", "spec_version": "2.3"}
#: Longest request line plus headers; a longer one is a 400 (httptools has no limit of its own).
_MAX_HEAD = 64 * 1024


def _status_line(code: int) -> bytes:
    try:
        phrase = http.HTTPStatus(code).phrase
    except ValueError:
        phrase = ""
    return f"HTTP/1.1 {code} {phrase}\r\n".encode("latin-1")


_STATUS_LINES = {code: _status_line(code) for code in range(100, 600)}
_CONTINUE = b"HTTP/1.1 100 Continue\r\n\r\n"
_BAD_REQUEST = (
    b"HTTP/1.1 400 Bad Request\r\ncontent-type: application/json\r\n"
    b'content-length: 35\r\nconnection: close\r\n\r\n{"error":"Malformed HTTP request."}'
)
_SERVER_ERROR_BODY = b'{"error":"Internal server error."}'


def _is_loopback(host: str) -> bool:
    return host.startswith("127.") or host == "::1"


class _Request:
    """One request on a connection, from its headers to the end of its response."""

    __slots__ = (
        "body",
        "chunked",
        "complete",
        "conn",
        "disconnect",
        "expect_continue",
        "finished",
        "head",
        "keep_alive",
        "read",
        "running",
        "scope",
        "size",
        "started",
        "too_large",
    )

    def __init__(self, conn: _Connection, scope: Scope, keep_alive: bool) -> None:
        self.conn = conn
        self.scope = scope
        self.keep_alive = keep_alive
        self.head = scope["method"] == "HEAD"
        self.body: list[bytes] = []
        self.size = 0
        #: The whole body arrived (httptools' on_message_complete).
        self.complete = False
        #: The body is over the limit: what arrived is kept, the rest dropped.
        self.too_large = False
        self.expect_continue = False
        self.running = False
        #: The app got the body (its first receive()).
        self.read = False
        #: Response status and headers (``http.response.start``), not yet written.
        self.started: tuple[int, Any] | None = None
        #: The status line and headers are written; the body follows chunked or not.
        self.chunked: bool | None = None
        self.finished = False
        self.disconnect: asyncio.Future[None] | None = None

    async def receive(self) -> Message:
        if not self.read:
            self.read = True
            body = self.body[0] if len(self.body) == 1 else b"".join(self.body)
            self.body = []
            return {"type": "http.request", "body": body, "more_body": self.too_large}
        # After the body there is nothing more to read (the rest of a body over the limit is
        # dropped): wait for the end of the exchange.
        if not self.finished and not self.conn.closed and not self.too_large:
            if self.disconnect is None:
                self.disconnect = asyncio.get_running_loop().create_future()
            await self.disconnect
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        kind = message["type"]
        if kind == "http.response.start":
            if self.started is not None:
                raise RuntimeError("http.response.start sent twice")
            self.started = (message["status"], message.get("headers", ()))
            return
        if kind != "http.response.body" or self.started is None or self.finished:
            raise RuntimeError(f"unexpected ASGI message {kind!r} at this point of the response")
        conn = self.conn
        more = message.get("more_body", False)
        if conn.closed:
            self.finished = not more
            return
        if conn.write_paused:
            await conn.drain()
        body: bytes = message.get("body", b"")
        out = self._head(len(body), more) if self.chunked is None else b""
        if self.head:
            body = b""
        if self.chunked:
            if body:
                out += b"%x\r\n%b\r\n" % (len(body), body)
            if not more:
                out += b"0\r\n\r\n"
        else:
            out += body
        if out:
            conn.write(out)
        if not more:
            self.finished = True
            conn.response_done(self)

    def _head(self, first_body: int, more: bool) -> bytes:
        status, headers = self.started  # type: ignore[misc]
        parts = [_STATUS_LINES.get(status) or _status_line(status)]
        length_given = False
        for name, value in headers:
            if b"\r" in value or b"\n" in value or b"\r" in name or b"\n" in name:
                raise RuntimeError(f"response header {name!r} contains a line break")
            lower = name.lower()
            if lower == b"content-length":
                length_given = True
            elif lower == b"connection" and b"close" in value.lower():
                self.keep_alive = False
                continue  # written below, once
            parts += (name, b": ", value, b"\r\n")
        self.chunked = False
        if not length_given and status >= 200 and status not in (204, 304):
            if more:
                self.chunked = True
                parts.append(b"transfer-encoding: chunked\r\n")
            else:
                parts.append(b"content-length: %d\r\n" % first_body)
        if not self.keep_alive or self.conn.stopping:
            self.keep_alive = False
            parts.append(b"connection: close\r\n")
        parts.append(b"\r\n")
        return b"".join(parts)


class _Connection(asyncio.Protocol):
    def __init__(self, server: HttpServer) -> None:
        self.server = server
        self.turns = server.turns
        self.turn = 0  # see ``Turns``
        self.app = server.app
        self.max_body = server.max_body
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.client: tuple[str, int] | None = None
        self.local: tuple[str, int] | None = None
        self.closed = False
        self.stopping = False
        self.write_paused = False
        self.drain_waiter: asyncio.Future[None] | None = None
        #: Requests in arrival order; the first is the one being answered.
        self.queue: deque[_Request] = deque()
        self.last_active = time.monotonic()
        # Per request being parsed.
        self.head_size = 0
        self.url = b""
        self.headers: list[tuple[bytes, bytes]] = []
        self.content_length = -1
        self.expect_continue = False
        self.forwarded_for: bytes | None = None
        self.forwarded_proto: bytes | None = None

    # -- connection lifecycle ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            self.client = (str(peer[0]), int(peer[1]))
        local = transport.get_extra_info("sockname")
        if isinstance(local, tuple):
            self.local = (str(local[0]), int(local[1]))
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for request in self.queue:
            if request.disconnect is not None and not request.disconnect.done():
                request.disconnect.set_result(None)
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)

    def close(self) -> None:
        if not self.closed and self.transport is not None:
            self.closed = True
            self.transport.close()

    def write(self, data: bytes) -> None:
        if not self.closed and self.transport is not None:
            self.transport.write(data)

    def pause_writing(self) -> None:
        self.write_paused = True

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.drain_waiter is not None and not self.drain_waiter.done():
            self.drain_waiter.set_result(None)
        self.drain_waiter = None

    async def drain(self) -> None:
        if self.drain_waiter is None:
            self.drain_waiter = asyncio.get_running_loop().create_future()
        await self.drain_waiter

    def idle(self) -> bool:
        return not self.queue

    def stop(self) -> None:
        """Close now if idle; otherwise close after the response in progress."""
        self.stopping = True
        if not self.queue:
            self.close()

    # -- reading ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        self.last_active = time.monotonic()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            # No protocol switch here (WebSocket, h2c): answer what was asked, then close.
            self._stop_reading(None)
        except httptools.HttpParserError as exc:
            reason = str(exc.__context__ or exc)
            peer = f"{self.client[0]}:{self.client[1]}" if self.client else "-"
            log.warning("malformed HTTP request from %s: %s", peer, reason)
            self._stop_reading(_BAD_REQUEST)

    def _stop_reading(self, answer: bytes | None) -> None:
        """Read no more: answer the requests queued (then close), or ``answer`` and close."""
        if self.transport is not None:
            self.transport.pause_reading()
        queue = self.queue
        if queue and not queue[-1].complete and not queue[-1].running:
            queue.pop()  # the request being read can never be read to its end
        if queue:
            queue[-1].keep_alive = False
        else:
            if answer is not None:
                self.write(answer)
            self.close()

    def on_message_begin(self) -> None:
        self.head_size = 0
        self.url = b""
        self.headers = []
        self.content_length = -1
        self.expect_continue = False
        self.forwarded_for = None
        self.forwarded_proto = None

    def on_url(self, url: bytes) -> None:
        self.url += url
        self.head_size += len(url)
        if self.head_size > _MAX_HEAD:
            raise ValueError(f"request line and headers over {_MAX_HEAD} bytes")

    def on_header(self, name: bytes, value: bytes) -> None:
        self.head_size += len(name) + len(value)
        if self.head_size > _MAX_HEAD:
            raise ValueError(f"request line and headers over {_MAX_HEAD} bytes")
        name = name.lower()
        self.headers.append((name, value))
        if name == b"content-length":
            self.content_length = int(value) if value.isdigit() else -1
        elif name == b"expect":
            self.expect_continue = value.lower() == b"100-continue"
        elif name == b"x-forwarded-for":
            self.forwarded_for = value
        elif name == b"x-forwarded-proto":
            self.forwarded_proto = value

    def on_headers_complete(self) -> None:
        if self.closed:  # what follows a last request in the same read is not served
            return
        parser = self.parser
        url = self.url
        if url[:1] == b"/" and b"?" not in url:
            raw_path, query = url, b""
        else:
            parsed = httptools.parse_url(url)
            raw_path, query = parsed.path or b"/", parsed.query or b""
        path = raw_path.decode("latin-1")
        if "%" in path:
            path = urllib.parse.unquote(path)
        client, scheme = self.client, "http"
        if client is not None and _is_loopback(client[0]):
            if self.forwarded_for:
                client = (_forwarded_client(self.forwarded_for), 0)
            if self.forwarded_proto:
                scheme = self.forwarded_proto.decode("latin-1").strip().lower()
        scope = {
            "type": "http",
            "asgi": _ASGI,
            "http_version": parser.get_http_version(),
            "method": parser.get_method().decode("ascii"),
            "scheme": scheme,
            "path": path,
            "raw_path": raw_path,
            "query_string": query,
            "root_path": "",
            "headers": self.headers,
            "client": client,
            "server": self.local,
        }
        request = _Request(self, scope, parser.should_keep_alive())
        if self.content_length > self.max_body:
            request.too_large = True  # answered from the declared length, no 100 Continue
            if self.expect_continue:
                request.keep_alive = False  # the client may never send the body
        else:
            request.expect_continue = self.expect_continue
        self.queue.append(request)
        if len(self.queue) == 1:
            self._next_in_line(request)
        elif self.transport is not None:
            self.transport.pause_reading()  # pipelined: read on once the queue is answered

    def on_body(self, body: bytes) -> None:
        if self.closed:
            return
        request = self.queue[-1]
        if request.too_large:
            return
        request.size += len(body)
        request.body.append(body)
        if request.size > self.max_body:
            request.too_large = True
            if request is self.queue[0] and not request.running:
                self._run(request)

    def on_message_complete(self) -> None:
        if self.closed:
            return
        request = self.queue[-1]
        request.complete = True
        if request is not self.queue[0]:
            return
        if request.finished:  # answered early; the rest of its body is now read
            self._forget(request)
        elif not request.running:
            self._run(request)

    # -- answering ----------------------------------------------------------------------------
    def _next_in_line(self, request: _Request) -> None:
        """``request`` became the first of the queue: let its body come, or run it."""
        if request.expect_continue and not request.complete:
            self.write(_CONTINUE)
        if request.complete or request.too_large:
            self._run(request)

    def _run(self, request: _Request) -> None:
        request.running = True
        self.turns.add(self, self._start, request)

    def _start(self, request: _Request) -> None:
        if not self.closed:
            run_inline(self._serve(request))

    async def _serve(self, request: _Request) -> None:
        try:
            await self.app(request.scope, request.receive, request.send)
        except Exception as exc:
            log.error("unhandled error serving %s", request.scope["path"], exc_info=exc)
            self._fail(request)
        else:
            if not request.finished and not self.closed:
                log.error("the app returned without a complete response")
                self._fail(request)

    def _fail(self, request: _Request) -> None:
        if self.closed or request.finished:
            return
        if request.chunked is None:  # nothing written yet: a 500
            request.keep_alive = False
            request.started = (500, [(b"content-type", b"application/json")])
            self.write(request._head(len(_SERVER_ERROR_BODY), False) + _SERVER_ERROR_BODY)
            request.finished = True
            self.response_done(request)
        else:
            self.close()

    def response_done(self, request: _Request) -> None:
        self.last_active = time.monotonic()
        if request.disconnect is not None and not request.disconnect.done():
            request.disconnect.set_result(None)
        if self.closed:
            return
        if not request.keep_alive:
            self.close()
            return
        if request.complete:
            self._forget(request)
        # else: answered before its body ended; on_message_complete moves on

    def _forget(self, request: _Request) -> None:
        self.queue.popleft()
        if self.queue:
            self._next_in_line(self.queue[0])
            return
        if self.stopping:
            self.close()
        elif self.transport is not None and not self.closed:
            self.transport.resume_reading()


def _forwarded_client(value: bytes) -> str:
    """The client a chain of proxies reports: the last address that is not on loopback."""
    hosts = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
    for host in reversed(hosts):
        if not _is_loopback(host):
            return host
    return hosts[0] if hosts else ""


class HttpServer:
    """Serves the ASGI ``app`` over HTTP/1.1 on a bound, non-blocking listening socket."""

    def __init__(
        self,
        app: App,
        sock: socket.socket,
        *,
        max_body: int,
        keep_alive_timeout: float = 5.0,
    ) -> None:
        self.app = app
        self.sock = sock
        self.max_body = max_body
        self.keep_alive_timeout = keep_alive_timeout
        self.connections: set[_Connection] = set()
        self.turns = Turns(self.connections)
        self._server: asyncio.Server | None = None
        self._sweeper: asyncio.TimerHandle | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=self.sock, backlog=2048
        )
        self._sweeper = loop.call_later(1.0, self._sweep)

    def _sweep(self) -> None:
        """Close connections idle for longer than the keep-alive timeout (checked each second)."""
        now = time.monotonic()
        for conn in list(self.connections):
            if conn.idle() and now - conn.last_active > self.keep_alive_timeout:
                conn.close()
        self._sweeper = asyncio.get_running_loop().call_later(1.0, self._sweep)

    async def stop(self, grace: float) -> None:
        """Stop listening, close idle connections, give busy ones ``grace`` s, close the rest."""
        if self._sweeper is not None:
            self._sweeper.cancel()
        await close_gracefully(self._server, self.connections, _Connection.stop, grace)
