"""A gRPC server written on asyncio (uvloop): HTTP/2 framing, HPACK and the gRPC wire format.

Why not ``grpc.aio``: its per-call cost here is about 0.3 ms of CPU before any handler runs
(completion-queue polling on another thread, handoffs through the GIL), more than a whole REST
request of this server. This server runs on the same event loop as the REST transport and costs a
few tens of microseconds per call: frames are parsed from one buffer, header blocks that leave
the HPACK table unchanged (what clients send once their table is warm) are decoded once and then
looked up in a cache, and the response (headers, message, trailers) leaves in one write. The
calls whose requests one read completes start together at the end of the loop's pass, in the
connection's turn (``turns`` says why), and their answers share a write.

What it implements (RFC 9113 and the gRPC over HTTP/2 spec), server side:

* connection preface, SETTINGS (and their ACK), PING, GOAWAY, RST_STREAM, PRIORITY (ignored),
  HEADERS with CONTINUATION and padding, DATA with padding;
* flow control both ways: the windows we advertise are replenished as data is consumed, and
  responses wait for the peer's window (and respect its SETTINGS_MAX_FRAME_SIZE);
* unary and server-streaming methods, request messages compressed with gzip or deflate,
  ``grpc-timeout`` deadlines (DEADLINE_EXCEEDED), a maximum request message size
  (RESOURCE_EXHAUSTED), status and percent-encoded ``grpc-message`` in trailers, trailers-only
  errors, UNIMPLEMENTED for unknown methods, HTTP 415 for a non-gRPC content type;
* graceful stop: GOAWAY, in-flight calls finish (up to a grace period), then connections close;
* back-pressure: while the peer does not read our answers (the transport's write buffer is over
  its high-water mark), its connection is not read either.

Responses are never compressed; the fields every answer repeats are sent by index once the
first answer has added them to the peer's HPACK table (``h2answers``).

Wheels compile this module, ``h2answers`` and ``grpc`` with mypyc (runtimes/setup.py): their
annotations become C types, so keep them exact (docs/runtimes, "Build").
"""

from __future__ import annotations

import asyncio
import base64
import logging
import socket
import struct
import time
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, NoReturn

import grpc
import hpack
from hpack.exceptions import HPACKError

from kserve_stack_runtimes.transports.h2answers import OK_TRAILERS, AnswerEncoder, literal
from kserve_stack_runtimes.transports.inline import run_inline
from kserve_stack_runtimes.transports.shutdown import close_gracefully
from kserve_stack_runtimes.transports.turns import Turns

log = logging.getLogger("kserve_stack_runtimes.grpc")

_PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

# Frame types and flags.
_DATA, _HEADERS, _PRIORITY, _RST_STREAM, _SETTINGS = 0, 1, 2, 3, 4
_PUSH_PROMISE, _PING, _GOAWAY, _WINDOW_UPDATE, _CONTINUATION = 5, 6, 7, 8, 9
_END_STREAM = 0x1
_ACK = 0x1
_END_HEADERS = 0x4
_PADDED = 0x8
_PRIORITY_FLAG = 0x20

# Error codes.
_NO_ERROR, _PROTOCOL_ERROR, _INTERNAL_ERROR, _FLOW_CONTROL_ERROR = 0, 1, 2, 3
_FRAME_SIZE_ERROR, _REFUSED_STREAM, _CANCEL, _COMPRESSION_ERROR = 6, 7, 8, 9

# What we advertise.
_MAX_CONCURRENT_STREAMS = 1000
_STREAM_WINDOW = 4 * 1024 * 1024
_CONNECTION_WINDOW = 16 * 1024 * 1024
_MAX_FRAME_SIZE_IN = 1024 * 1024
#: Request messages waiting for their calls' turn beyond which the connection is not read on.
_READ_AHEAD = 256 * 1024
_MAX_HEADER_LIST_SIZE = 64 * 1024
_DEFAULT_WINDOW = 65535
_MAX_WINDOW = 2**31 - 1
#: Answer bytes per connection that may wait for the peer's flow-control windows before new
#: calls on it are refused (REFUSED_STREAM): a client that asks and does not read cannot make
#: the server hold its answers without bound.
MAX_HELD_BYTES = 16 * 1024 * 1024

_TIMEOUT_UNITS = {"H": 3600.0, "M": 60.0, "S": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9}
# Headers that are part of the protocol, not the call's metadata.
_RESERVED = frozenset(
    {b"content-type", b"te", b"grpc-timeout", b"grpc-encoding", b"grpc-accept-encoding"}
)


def _frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id) + payload


def _percent_encode(message: str) -> bytes:
    out = bytearray()
    for b in message.encode("utf-8"):
        if 0x20 <= b <= 0x7E and b != 0x25:
            out.append(b)
        else:
            out += b"%%%02X" % b
    return bytes(out)


#: Longer status messages are cut, so that trailers always fit one frame (16 KiB at least).
_MAX_STATUS_MESSAGE = 4096


def _status_block(code: int, message: str) -> bytes:
    block = literal(b"grpc-status", str(code).encode())
    if message:
        if len(message) > _MAX_STATUS_MESSAGE:
            message = message[:_MAX_STATUS_MESSAGE] + "..."
        block += literal(b"grpc-message", _percent_encode(message))
    return block


class AbortError(Exception):
    """Raised by :meth:`RpcContext.abort`: ends the call with ``code`` and ``details``."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(details)
        self.code = code
        self.details = details


class RpcContext:
    """What a handler gets besides its request: the call's metadata, peer, deadline and abort;
    and what the server's end-of-call hook reads of it (status, fields). Made when the call's
    headers arrive."""

    __slots__ = ("_code", "_metadata", "_peer", "deadline", "fields", "method", "started")

    def __init__(
        self,
        metadata: list[tuple[str, str | bytes]],
        peer: str,
        deadline: float | None,
        method: str = "",
    ) -> None:
        self._metadata = metadata
        self._peer = peer
        #: ``time.monotonic()`` value at which the call's deadline passes, if it has one.
        self.deadline = deadline
        #: The call's path, ``/package.Service/Method``.
        self.method = method
        #: ``time.perf_counter()`` when the call's headers arrived.
        self.started = time.perf_counter()
        #: What the handler adds to the call's access log line (``model``, ``request_id``).
        self.fields: dict[str, str] = {}
        self._code: int | None = None

    def code(self) -> grpc.StatusCode | None:
        """The status the call ended with; None while it runs, or if it ended without an
        answer (the client cancelled it or the connection was lost); DEADLINE_EXCEEDED also
        when the client reset it as its deadline passed."""
        return None if self._code is None else _STATUS_BY_VALUE[self._code]

    def status_name(self) -> str:
        """The name of the status the call ended with, as metrics and logs show it:
        ``CANCELLED`` for a call that ended without an answer."""
        return "CANCELLED" if self._code is None else _STATUS_BY_VALUE[self._code].name

    def invocation_metadata(self) -> list[tuple[str, str | bytes]]:
        """The request's custom metadata: lower-case keys; ``-bin`` values are bytes."""
        return self._metadata

    def peer(self) -> str:
        return self._peer

    def time_remaining(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    async def abort(self, code: grpc.StatusCode, details: str) -> NoReturn:
        raise AbortError(code, details)


_STATUS_BY_VALUE = {code.value[0]: code for code in grpc.StatusCode}
#: Called once a call is over and its answer was written: its context and the HTTP status of
#: the answer (200 for every gRPC status; 415 for a request that was not gRPC).
CallEnded = Callable[[RpcContext, int], None]


Handler = Callable[[Any, RpcContext], Awaitable[Any]]
StreamHandler = Callable[[Any, RpcContext], AsyncIterator[Any]]


class Method:
    """One RPC: how to parse its request, and its handler (unary, or server-streaming)."""

    __slots__ = ("handler", "parse", "streaming")

    def __init__(
        self, parse: Callable[[bytes], Any], handler: Handler | StreamHandler, streaming: bool
    ) -> None:
        self.parse = parse
        self.handler = handler
        self.streaming = streaming


class _CallSetup:
    """What a request's header block says about the call (cached per identical block)."""

    __slots__ = ("bad_content_type", "encoding", "metadata", "path", "timeout")

    def __init__(self, headers: list[tuple[bytes, bytes]]) -> None:
        self.path = ""
        self.bad_content_type = True
        self.encoding = "identity"
        self.timeout: float | None = None
        self.metadata: list[tuple[str, str | bytes]] = []
        for name, value in headers:
            if name[:1] == b":":
                if name == b":path":
                    self.path = value.decode("latin-1")
            elif name == b"content-type":
                self.bad_content_type = not value.startswith(b"application/grpc")
            elif name == b"grpc-timeout":
                self.timeout = _parse_timeout(value)
            elif name == b"grpc-encoding":
                self.encoding = value.decode("latin-1")
            elif name not in _RESERVED:
                key = name.decode("latin-1")
                if key.endswith("-bin"):
                    self.metadata.append((key, _b64decode(value)))
                else:
                    self.metadata.append((key, value.decode("latin-1")))


def _b64decode(value: bytes) -> bytes:
    try:
        return base64.b64decode(value + b"=" * (-len(value) % 4))
    except ValueError:
        return b""


def _parse_timeout(value: bytes) -> float | None:
    text = value.decode("latin-1")
    unit = _TIMEOUT_UNITS.get(text[-1:])
    if unit is None or not text[:-1].isdigit():
        return None
    return int(text[:-1]) * unit


class _Stream:
    __slots__ = (
        "body",
        "called",
        "closed_remote",
        "context",
        "done",
        "headers_sent",
        "http_status",
        "id",
        "method",
        "pending",
        "recv_unacked",
        "send_window",
        "setup",
        "task",
        "timed_out",
        "timer",
        "trailers",
    )

    def __init__(
        self, stream_id: int, setup: _CallSetup, send_window: int, context: RpcContext
    ) -> None:
        self.id = stream_id
        self.setup = setup
        self.context = context
        #: The handler was started (it reports the call's end itself, when it returns).
        self.called = False
        self.http_status = 200
        self.method: Method | None = None
        self.body = bytearray()
        self.closed_remote = False
        self.done = False
        self.headers_sent = False
        self.pending = bytearray()
        self.trailers: bytes | None = None
        self.recv_unacked = 0
        self.send_window = send_window
        self.task: asyncio.Task[None] | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.timed_out = False


def _client_deadline_passed(stream: _Stream) -> bool:
    """Whether the call's deadline has (about) passed: clients round the ``grpc-timeout`` they
    send up (grpc-core to three significant figures), so theirs may come up to 1 % of the
    timeout before ours."""
    timeout, deadline = stream.setup.timeout, stream.context.deadline
    if timeout is None or deadline is None:
        return False
    return time.monotonic() >= deadline - timeout * 0.01 - 0.001


class _Connection(asyncio.Protocol):
    def __init__(self, server: GrpcH2Server) -> None:
        self.server = server
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.preface = True
        self.out: list[bytes] = []
        self.flush_scheduled = False
        #: Reading, or starting calls: what is written meanwhile leaves in one write at the end.
        self.batching = False
        #: While starting calls: the one being started is the last of them.
        self.last_in_batch = False
        #: Calls whose requests this read completed, to start in the connection's turn.
        self.ready: list[tuple[_Stream, bytes]] = []
        self.ready_bytes = 0
        self.turn_taken = False  # ``_start_calls`` is in line for a turn
        self.read_held = False  # not read on until the calls waiting for their turn start
        self.write_paused = False
        self.turn = 0  # see ``Turns``
        self.streams: dict[int, _Stream] = {}
        self.last_stream_id = 0
        self.decoder = hpack.Decoder(max_header_list_size=_MAX_HEADER_LIST_SIZE)
        self.encoder = AnswerEncoder()
        self.setup_cache: dict[bytes, _CallSetup] = {}
        self.continuation: tuple[int, int, bytearray] | None = None
        self.peer_window = _DEFAULT_WINDOW
        self.peer_max_frame = 16384
        self.send_window = _DEFAULT_WINDOW
        self.recv_unacked = 0
        self.blocked: list[_Stream] = []
        self.goaway_sent = False
        self.closed = False
        self.peer = "unknown"
        self.warned_held = False
        #: Calls that are over, whose end-of-call hook (metrics, access line) follows the next
        #: write.
        self.ended: list[_Stream] = []

    # -- connection lifecycle ----------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple):
            host = str(peer[0])  # as grpc formats peers: ipv4:1.2.3.4:5, ipv6:[::1]:5
            self.peer = f"ipv6:[{host}]:{peer[1]}" if ":" in host else f"ipv4:{host}:{peer[1]}"
        settings = struct.pack(
            ">HIHIHIHI",
            3, _MAX_CONCURRENT_STREAMS,
            4, _STREAM_WINDOW,
            5, _MAX_FRAME_SIZE_IN,
            6, _MAX_HEADER_LIST_SIZE,
        )  # fmt: skip
        self.out.append(_frame(_SETTINGS, 0, 0, settings))
        self.out.append(
            _frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", _CONNECTION_WINDOW - _DEFAULT_WINDOW))
        )
        self.flush()
        self.server.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        self.server.connections.discard(self)
        for stream in list(self.streams.values()):
            self._cancel(stream)
        self.streams.clear()
        if self.ended:
            self._run_ended()

    def pause_writing(self) -> None:
        # The peer reads our answers slower than it sends requests: read no more of them
        # until it catches up, so that answers cannot pile up in memory (back-pressure).
        self.write_paused = True
        if self.transport is not None and not self.closed:
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self.write_paused = False
        if self.transport is not None and not self.closed and not self.read_held:
            self.transport.resume_reading()

    def flush(self) -> None:
        if self.out and not self.closed and self.transport is not None:
            self.transport.write(b"".join(self.out))
        self.out.clear()
        if self.ended:
            self._run_ended()

    def _ended(self, stream: _Stream) -> None:
        if self.server.on_call_end is None:
            return
        self.ended.append(stream)
        if self.closed:
            self._run_ended()
        else:
            self.schedule_flush()  # while batching, the batch's own flush comes first

    def _run_ended(self) -> None:
        ended, self.ended = self.ended, []
        on_call_end = self.server.on_call_end
        assert on_call_end is not None  # nothing is queued without one
        for stream in ended:
            try:
                on_call_end(stream.context, stream.http_status)
            except Exception:
                log.exception("the end-of-call hook of the gRPC server failed")

    def schedule_flush(self) -> None:
        """Write at the end of this loop iteration: calls that finish together share a write."""
        if not self.flush_scheduled and not self.batching:
            self.flush_scheduled = True
            asyncio.get_running_loop().call_soon(self._scheduled_flush)

    def _scheduled_flush(self) -> None:
        self.flush_scheduled = False
        self.flush()

    def _connection_error(self, code: int, reason: str) -> None:
        log.warning("gRPC connection from %s closed: %s", self.peer, reason)
        self.out.append(_frame(_GOAWAY, 0, 0, struct.pack(">II", self.last_stream_id, code)))
        self.flush()
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def goaway(self) -> None:
        """Refuse new streams; close once the ones in flight are done."""
        if self.closed or self.goaway_sent:
            return
        self.goaway_sent = True
        self.out.append(_frame(_GOAWAY, 0, 0, struct.pack(">II", self.last_stream_id, _NO_ERROR)))
        self.flush()
        self._close_if_drained()

    def _close_if_drained(self) -> None:
        if self.goaway_sent and not self.streams and self.transport is not None:
            self.closed = True
            self.transport.close()

    # -- reading ------------------------------------------------------------------------------
    def data_received(self, data: bytes) -> None:
        buf = self.buf
        buf += data
        if self.preface:
            if len(buf) < len(_PREFACE):
                if not _PREFACE.startswith(bytes(buf)):
                    self._connection_error(_PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                return
            if buf[: len(_PREFACE)] != _PREFACE:
                self._connection_error(_PROTOCOL_ERROR, "not an HTTP/2 connection preface")
                return
            del buf[: len(_PREFACE)]
            self.preface = False
        pos = 0
        end = len(buf)
        self.batching = True
        while end - pos >= 9 and not self.closed:
            length = (buf[pos] << 16) | (buf[pos + 1] << 8) | buf[pos + 2]
            if length > _MAX_FRAME_SIZE_IN:
                self._connection_error(_FRAME_SIZE_ERROR, f"frame of {length} bytes")
                return
            if end - pos - 9 < length:
                break
            ftype = buf[pos + 3]
            flags = buf[pos + 4]
            stream_id = int.from_bytes(buf[pos + 5 : pos + 9], "big") & 0x7FFFFFFF
            payload = buf[pos + 9 : pos + 9 + length]  # a copy: buf is compacted after the read
            pos += 9 + length
            try:
                self._on_frame(ftype, flags, stream_id, payload)
            except BaseException:
                self.batching = False
                raise
        self.batching = False
        del buf[:pos]
        self.flush()
        if self.ready:
            if not self.turn_taken:
                self.turn_taken = True
                self.server.turns.add(self, self._start_calls, None)
            if self.turn_taken and self.ready_bytes >= _READ_AHEAD and not self.read_held:
                # The loop reads on while the socket has more: stop once that much waits, so
                # that a fast sender cannot queue more than its answers' back-pressure allows.
                self.read_held = True
                if self.transport is not None:
                    self.transport.pause_reading()

    def _start_calls(self, _: None) -> None:
        """Start the calls read so far; their answers leave in one write."""
        ready, self.ready = self.ready, []
        self.turn_taken = False
        self.ready_bytes = 0
        if self.read_held:
            self.read_held = False
            if not self.write_paused and not self.closed and self.transport is not None:
                self.transport.resume_reading()
        last = len(ready) - 1
        self.batching = True
        try:
            for i, (stream, message) in enumerate(ready):
                if stream.done or self.closed:  # cancelled or timed out while waiting its turn
                    continue
                if self.blocked and self._over_held_limit():  # as when its HEADERS came
                    self._settle(stream)
                    self._forget(stream)
                    self._refuse(stream.id)
                    continue
                self.last_in_batch = i == last
                stream.called = True
                stream.task = run_inline(self._call(stream, message))
        finally:
            self.batching = False
        self.flush()

    def _on_frame(self, ftype: int, flags: int, stream_id: int, frame: bytearray) -> None:
        if self.continuation is not None and ftype != _CONTINUATION:
            self._connection_error(_PROTOCOL_ERROR, "expected a CONTINUATION frame")
            return
        if ftype == _DATA:  # kept as it is: the message is built of it (often it is all of it)
            self._on_data(flags, stream_id, frame)
            return
        payload = bytes(frame)
        if ftype == _HEADERS:
            self._on_headers(flags, stream_id, payload)
        elif ftype == _CONTINUATION:
            self._on_continuation(flags, stream_id, payload)
        elif ftype == _WINDOW_UPDATE:
            self._on_window_update(stream_id, payload)
        elif ftype == _SETTINGS:
            if not flags & _ACK:
                self._on_settings(payload)
        elif ftype == _PING:
            if len(payload) != 8:
                self._connection_error(_FRAME_SIZE_ERROR, "PING of the wrong size")
            elif not flags & _ACK:
                self.out.append(_frame(_PING, _ACK, 0, payload))
        elif ftype == _RST_STREAM:
            stream = self.streams.pop(stream_id, None)
            if stream is not None:
                if not stream.done and _client_deadline_passed(stream):
                    # The client gave up at its deadline: the call timed out (as the client
                    # reports it), it was not cancelled.
                    stream.timed_out = True
                    stream.context._code = grpc.StatusCode.DEADLINE_EXCEEDED.value[0]
                self._cancel(stream)
                self._close_if_drained()
        elif ftype == _GOAWAY:
            pass  # the peer closes the connection when it is done with its streams
        elif ftype == _PUSH_PROMISE:
            self._connection_error(_PROTOCOL_ERROR, "PUSH_PROMISE sent to a server")
        # PRIORITY and unknown frame types are ignored.

    def _on_settings(self, payload: bytes) -> None:
        if len(payload) % 6:
            self._connection_error(_FRAME_SIZE_ERROR, "SETTINGS of the wrong size")
            return
        for i in range(0, len(payload), 6):
            key, value = struct.unpack_from(">HI", payload, i)
            if key == 1:
                self.encoder.peer_table_size(value)
            elif key == 4:
                if value > _MAX_WINDOW:
                    self._connection_error(_FLOW_CONTROL_ERROR, "initial window too large")
                    return
                delta = value - self.peer_window
                self.peer_window = value
                for stream in self.streams.values():
                    stream.send_window += delta
            elif key == 5:
                if not 16384 <= value <= 16777215:
                    self._connection_error(_PROTOCOL_ERROR, "bad SETTINGS_MAX_FRAME_SIZE")
                    return
                self.peer_max_frame = value
        self.out.append(_frame(_SETTINGS, _ACK, 0))
        self._unblock()

    def _on_window_update(self, stream_id: int, payload: bytes) -> None:
        if len(payload) != 4:
            self._connection_error(_FRAME_SIZE_ERROR, "WINDOW_UPDATE of the wrong size")
            return
        increment = int.from_bytes(payload, "big") & 0x7FFFFFFF
        if stream_id == 0:
            self.send_window += increment
            if self.send_window > _MAX_WINDOW:
                self._connection_error(_FLOW_CONTROL_ERROR, "connection window overflow")
                return
        else:
            stream = self.streams.get(stream_id)
            if stream is None:
                return
            stream.send_window += increment
        self._unblock()

    def _on_headers(self, flags: int, stream_id: int, payload: bytes) -> None:
        start, stop = 0, len(payload)
        if flags & _PADDED:
            if not payload:
                self._connection_error(_PROTOCOL_ERROR, "padded HEADERS without padding")
                return
            start, stop = 1, stop - payload[0]
        if flags & _PRIORITY_FLAG:
            start += 5
        if start > stop:
            self._connection_error(_PROTOCOL_ERROR, "HEADERS padding too long")
            return
        block = payload[start:stop]
        if flags & _END_HEADERS:
            self._on_header_block(flags, stream_id, block)
        else:
            self.continuation = (stream_id, flags, bytearray(block))

    def _on_continuation(self, flags: int, stream_id: int, payload: bytes) -> None:
        if self.continuation is None or self.continuation[0] != stream_id:
            self._connection_error(_PROTOCOL_ERROR, "unexpected CONTINUATION frame")
            return
        block = self.continuation[2]
        block += payload
        if len(block) > _MAX_HEADER_LIST_SIZE * 2:
            self._connection_error(_PROTOCOL_ERROR, "header block too large")
            return
        if flags & _END_HEADERS:
            first_flags = self.continuation[1]
            self.continuation = None
            self._on_header_block(first_flags, stream_id, bytes(block))

    def _decode(self, block: bytes) -> _CallSetup | None:
        setup = self.setup_cache.get(block)
        if setup is not None:
            return setup
        table = self.decoder.header_table
        # Typed Any: compiled (mypyc), an entry read as tuple[bytes, bytes] would be unboxed and
        # boxed again as a new tuple, and the identity check below would always fail.
        entries: Any = table.dynamic_entries
        first, count, maxsize = entries[0] if entries else None, len(entries), table.maxsize
        try:
            headers = self.decoder.decode(block, raw=True)
        except HPACKError as exc:
            self._connection_error(_COMPRESSION_ERROR, f"HPACK: {exc}")
            return None
        setup = _CallSetup(headers)  # type: ignore[arg-type]
        # A block that left the HPACK table as it was (indexed fields, literals not indexed:
        # what a client sends once its table is warm; nghttp2 and Envoy never index :path)
        # means the same headers every time it comes again until the table changes, so it is
        # looked up next time instead of decoded. Every entry added is a new tuple at the front.
        first_now = entries[0] if entries else None
        if first_now is first and len(entries) == count and table.maxsize == maxsize:
            if len(self.setup_cache) < 64:
                self.setup_cache[block] = setup
        else:
            self.setup_cache.clear()
        return setup

    def _on_header_block(self, flags: int, stream_id: int, block: bytes) -> None:
        setup = self._decode(block)  # always decoded: the HPACK table must stay in step
        if setup is None:
            return
        stream = self.streams.get(stream_id)
        if stream is not None:  # trailers from the client end its half of the stream
            if flags & _END_STREAM:
                self._end_of_request(stream)
            return
        if stream_id % 2 == 0 or stream_id <= self.last_stream_id:
            if stream_id <= self.last_stream_id and stream_id % 2:
                return  # a stream we already closed (for instance after an early reply)
            self._connection_error(_PROTOCOL_ERROR, f"bad stream id {stream_id}")
            return
        self.last_stream_id = stream_id
        if (
            self.goaway_sent
            or len(self.streams) >= _MAX_CONCURRENT_STREAMS
            or (self.blocked and self._over_held_limit())
        ):
            self._refuse(stream_id)
            return
        timeout = setup.timeout
        deadline = None if timeout is None else time.monotonic() + timeout
        context = RpcContext(setup.metadata, self.peer, deadline, setup.path)
        stream = _Stream(stream_id, setup, self.peer_window, context)
        self.streams[stream_id] = stream
        if setup.bad_content_type:
            block = self.encoder.block(literal(b":status", b"415"))
            self.out.append(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream_id, block))
            stream.http_status = 415
            self._finish(stream)
            return
        method = self.server.methods.get(setup.path)
        if method is None:
            self._reply_status(
                stream, grpc.StatusCode.UNIMPLEMENTED, f"Method not found: {setup.path}"
            )
            return
        stream.method = method
        if setup.timeout is not None:
            loop = asyncio.get_running_loop()
            stream.timer = loop.call_later(setup.timeout, self._deadline, stream)
        if flags & _END_STREAM:
            self._end_of_request(stream)

    def _on_data(self, flags: int, stream_id: int, payload: bytearray) -> None:
        size = len(payload)
        self.recv_unacked += size
        if self.recv_unacked >= _CONNECTION_WINDOW // 2:
            self.out.append(_frame(_WINDOW_UPDATE, 0, 0, struct.pack(">I", self.recv_unacked)))
            self.recv_unacked = 0
        stream = self.streams.get(stream_id)
        if stream is None or stream.closed_remote:
            if stream_id > self.last_stream_id or stream_id == 0:
                self._connection_error(_PROTOCOL_ERROR, f"DATA on idle stream {stream_id}")
            return
        if flags & _PADDED:
            if not payload or payload[0] >= size:
                self._connection_error(_PROTOCOL_ERROR, "DATA padding too long")
                return
            payload = payload[1 : size - payload[0]]
        if stream.method is not None and stream.task is None and not stream.done:
            if stream.body:
                stream.body += payload
            else:  # the usual first (often only) frame of a message: no copy
                stream.body = payload
            if len(stream.body) > self.server.max_message_bytes + 5:
                self._reply_status(
                    stream,
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"The request message is larger than {self.server.max_message_bytes} bytes.",
                )
                return
        if flags & _END_STREAM:
            self._end_of_request(stream)
        else:
            stream.recv_unacked += size
            if stream.recv_unacked >= _STREAM_WINDOW // 2:
                self.out.append(
                    _frame(_WINDOW_UPDATE, 0, stream_id, struct.pack(">I", stream.recv_unacked))
                )
                stream.recv_unacked = 0

    # -- calls --------------------------------------------------------------------------------
    def _end_of_request(self, stream: _Stream) -> None:
        stream.closed_remote = True
        if stream.done:
            self._forget(stream)
            return
        if stream.method is None or stream.task is not None:
            return
        messages = self._messages(stream)
        if messages is None:
            return
        if len(messages) != 1:
            self._reply_status(
                stream,
                grpc.StatusCode.INVALID_ARGUMENT if messages else grpc.StatusCode.INTERNAL,
                f"A unary request carries one message; this one had {len(messages)}.",
            )
            return
        stream.body = bytearray()
        self.ready.append((stream, messages[0]))
        self.ready_bytes += len(messages[0])

    async def _call(self, stream: _Stream, message: bytes) -> None:
        assert stream.method is not None
        runner = self._run_stream if stream.method.streaming else self._run_unary
        try:
            await runner(stream, message, stream.context)
        finally:  # the call is over: its end-of-call hook runs once its answer is written
            self._ended(stream)

    def _messages(self, stream: _Stream) -> list[bytes] | None:
        with memoryview(stream.body) as view:  # a message is copied once, out of the view
            return self._split(stream, view)

    def _split(self, stream: _Stream, body: memoryview) -> list[bytes] | None:
        out: list[bytes] = []
        pos = 0
        while pos < len(body):
            if len(body) - pos < 5:
                self._reply_status(stream, grpc.StatusCode.INTERNAL, "Truncated gRPC message.")
                return None
            compressed = body[pos]
            length = int.from_bytes(body[pos + 1 : pos + 5], "big")
            message = body[pos + 5 : pos + 5 + length].tobytes()
            if len(message) != length:
                self._reply_status(stream, grpc.StatusCode.INTERNAL, "Truncated gRPC message.")
                return None
            pos += 5 + length
            if compressed:
                encoding = stream.setup.encoding
                try:
                    if encoding == "gzip":
                        message = zlib.decompress(message, 16 + zlib.MAX_WBITS)
                    elif encoding == "deflate":
                        message = zlib.decompress(message)
                    else:
                        self._reply_status(
                            stream,
                            grpc.StatusCode.UNIMPLEMENTED,
                            f"Compression {encoding!r} is not supported; "
                            "use identity, gzip or deflate.",
                        )
                        return None
                except zlib.error:
                    self._reply_status(
                        stream, grpc.StatusCode.INTERNAL, "The message failed to decompress."
                    )
                    return None
                if len(message) > self.server.max_message_bytes:
                    self._reply_status(
                        stream,
                        grpc.StatusCode.RESOURCE_EXHAUSTED,
                        f"The request message is larger than "
                        f"{self.server.max_message_bytes} bytes.",
                    )
                    return None
            out.append(message)
        return out

    def _parse(self, stream: _Stream, message: bytes) -> Any:
        assert stream.method is not None
        try:
            return stream.method.parse(message)
        except Exception:
            self._reply_status(
                stream, grpc.StatusCode.INVALID_ARGUMENT, "The request message does not parse."
            )
            self.schedule_flush()
            return None

    async def _run_unary(self, stream: _Stream, message: bytes, context: RpcContext) -> None:
        request = self._parse(stream, message)
        if request is None:
            return
        assert stream.method is not None
        handler: Any = stream.method.handler
        try:
            response = await handler(request, context)
            # A message, or one already serialized (ModelInfer's answer: ``infer_wire``).
            data = response if isinstance(response, bytes) else response.SerializeToString()
        except BaseException as exc:
            self._call_failed(stream, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if stream.done or self.closed:
            return
        n = len(data)
        context._code = 0
        self._send(
            stream,
            bytes((0, (n >> 24) & 0xFF, (n >> 16) & 0xFF, (n >> 8) & 0xFF, n & 0xFF)) + data,
            OK_TRAILERS,
        )
        if self.batching and self.last_in_batch:
            # Nothing else started with it to answer in the same write: write now, so that the
            # call's unwinding (and freeing its request and answer) follows the answer.
            self.flush()
        else:
            self.schedule_flush()

    async def _run_stream(self, stream: _Stream, message: bytes, context: RpcContext) -> None:
        request = self._parse(stream, message)
        if request is None:
            return
        assert stream.method is not None
        handler: Any = stream.method.handler
        try:
            async for response in handler(request, context):
                if stream.done or self.closed:
                    return
                data = response.SerializeToString()
                self._send(stream, b"\x00" + struct.pack(">I", len(data)) + data, None)
                self.schedule_flush()
        except BaseException as exc:
            self._call_failed(stream, exc)
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            return
        if not stream.done and not self.closed:
            context._code = 0
            self._send(stream, b"", OK_TRAILERS)
            self.schedule_flush()

    def _call_failed(self, stream: _Stream, exc: BaseException) -> None:
        if stream.done or self.closed:
            return
        if isinstance(exc, AbortError):
            self._reply_status(stream, exc.code, exc.details)
        elif isinstance(exc, asyncio.CancelledError):
            if stream.timed_out:
                self._reply_status(stream, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded.")
            else:
                self._reply_status(stream, grpc.StatusCode.CANCELLED, "The call was cancelled.")
        else:
            log.error("unhandled error in gRPC call %s", stream.setup.path, exc_info=exc)
            self._reply_status(stream, grpc.StatusCode.UNKNOWN, "Internal server error.")
        self.schedule_flush()

    def _deadline(self, stream: _Stream) -> None:
        stream.timer = None
        if stream.done:
            return
        stream.timed_out = True
        if stream.task is not None:
            stream.task.cancel()
        else:
            self._reply_status(stream, grpc.StatusCode.DEADLINE_EXCEEDED, "Deadline exceeded.")
            self.schedule_flush()

    # -- writing ------------------------------------------------------------------------------
    def _reply_status(self, stream: _Stream, code: grpc.StatusCode, message: str) -> None:
        stream.context._code = code.value[0]
        block = _status_block(code.value[0], message)
        if stream.headers_sent:
            self._send(stream, b"", block)
        else:  # trailers-only response
            stream.headers_sent = True
            self.out.append(
                _frame(
                    _HEADERS,
                    _END_HEADERS | _END_STREAM,
                    stream.id,
                    self.encoder.headers() + block,
                )
            )
            self._finish(stream)

    def _send(self, stream: _Stream, data: bytes, trailers: bytes | None) -> None:
        out = self.out
        if not stream.headers_sent:
            stream.headers_sent = True
            out.append(_frame(_HEADERS, _END_HEADERS, stream.id, self.encoder.headers()))
        if trailers is not None:
            stream.trailers = trailers
        n = len(data)
        if (
            not stream.pending
            and n <= stream.send_window
            and n <= self.send_window
            and n <= self.peer_max_frame
        ):
            if n:
                out.append(_frame(_DATA, 0, stream.id, data))
                stream.send_window -= n
                self.send_window -= n
        else:
            stream.pending += data
            self._drain(stream)
            if stream.pending:
                return
        if stream.trailers is not None:
            self._end_stream(stream)

    def _drain(self, stream: _Stream) -> None:
        pending = stream.pending
        while pending:
            n = min(len(pending), stream.send_window, self.send_window, self.peer_max_frame)
            if n <= 0:
                if stream not in self.blocked:
                    self.blocked.append(stream)
                return
            self.out.append(_frame(_DATA, 0, stream.id, bytes(pending[:n])))
            del pending[:n]
            stream.send_window -= n
            self.send_window -= n

    def _settle(self, stream: _Stream) -> None:
        """The stream is answered, refused or cancelled: no deadline runs for it any more."""
        stream.done = True
        if stream.timer is not None:
            stream.timer.cancel()
            stream.timer = None

    def _refuse(self, stream_id: int) -> None:
        # Refused before any processing: gRPC clients may retry such a call elsewhere.
        self.out.append(_frame(_RST_STREAM, 0, stream_id, struct.pack(">I", _REFUSED_STREAM)))

    def _over_held_limit(self) -> bool:
        """More answer bytes wait for the peer's flow-control windows than the server keeps
        per connection: new calls are refused until the peer takes some."""
        held = sum(len(stream.pending) for stream in self.blocked if not stream.done)
        over = held > self.server.max_held_bytes
        if over and not self.warned_held:
            self.warned_held = True
            log.warning(
                "gRPC connection from %s: %d bytes of answers wait for the client's "
                "flow-control window; refusing new calls until it reads",
                self.peer,
                held,
            )
        return over

    def _unblock(self) -> None:
        if not self.blocked:
            return
        blocked, self.blocked = self.blocked, []
        for stream in blocked:
            if stream.done:
                continue
            self._drain(stream)
            if not stream.pending and stream.trailers is not None:
                self._end_stream(stream)

    def _end_stream(self, stream: _Stream) -> None:
        """The answer's data is all sent: its trailers close our half of the stream."""
        trailers, stream.trailers = stream.trailers, None
        assert trailers is not None
        block = self.encoder.block(trailers)
        self.out.append(_frame(_HEADERS, _END_HEADERS | _END_STREAM, stream.id, block))
        self._finish(stream)

    def _finish(self, stream: _Stream) -> None:
        """Our half of the stream is closed: the call is over."""
        self._settle(stream)
        if not stream.closed_remote:
            # Replied before the request ended (an error): tell the client to stop sending.
            self.out.append(_frame(_RST_STREAM, 0, stream.id, struct.pack(">I", _NO_ERROR)))
        self._forget(stream)
        if not stream.called:
            self._ended(stream)

    def _forget(self, stream: _Stream) -> None:
        self.streams.pop(stream.id, None)
        self._close_if_drained()

    def _cancel(self, stream: _Stream) -> None:
        self._settle(stream)
        if stream.task is not None and not stream.task.done():
            stream.task.cancel()
        if not stream.called:
            self._ended(stream)


class GrpcH2Server:
    """Listens on ``host:port`` and serves ``methods`` (``/package.Service/Method`` -> Method)."""

    def __init__(
        self,
        methods: dict[str, Method],
        host: str,
        port: int,
        *,
        max_message_bytes: int,
        reuse_port: bool = False,
        max_held_bytes: int = MAX_HELD_BYTES,
        on_call_end: CallEnded | None = None,
    ) -> None:
        self.methods = methods
        self.on_call_end = on_call_end
        self.connections: set[_Connection] = set()
        self.turns = Turns(self.connections)
        self.max_message_bytes = max_message_bytes
        self.max_held_bytes = max_held_bytes
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        self.sock.bind((host, port))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._server = await loop.create_server(
            lambda: _Connection(self), sock=self.sock, backlog=2048
        )

    def active_calls(self) -> int:
        return sum(len(c.streams) for c in self.connections)

    async def stop(self, grace: float) -> None:
        """Stop listening, send GOAWAY, let calls in flight finish for ``grace`` s, then close."""
        await close_gracefully(self._server, self.connections, _Connection.goaway, grace)
