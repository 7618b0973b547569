"""Back-pressure of the HTTP/2 gRPC server, in process: a peer that sends calls but does not
read their answers stops being read once the answers fill the buffers, so they cannot pile up
in the server's memory; once the peer reads, every answer comes. A peer that reads but opens
no flow-control window has its further calls refused once the answers held for it pass the
server's limit; once it opens the windows, the answers of the calls taken come. A call's
bookkeeping (the end-of-call hook that metrics and the access log hang on) waits until its
answer is on the socket, and reports how the call ended."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import grpc
import hpack
import pytest
import uvloop
from h2_wire import CALLS, PREFACE, SIZE, Echo, calls, connected, echo, frame, frames
from kserve_stack_runtimes.transports.h2grpc import GrpcH2Server, Method

pytestmark = pytest.mark.data_plane


def test_a_peer_that_does_not_read_is_not_read_either() -> None:
    async def run() -> None:
        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, echo, False)},
            "127.0.0.1",
            0,
            max_message_bytes=1 << 20,
        )
        loop = asyncio.get_running_loop()
        async with connected(server, rcvbuf=64 * 1024) as sock:  # we read nothing
            # Our windows wide open, so that only TCP holds the server's answers back.
            preface = (
                PREFACE
                + frame(4, 0, 0, struct.pack(">HI", 4, 2**31 - 1))
                + frame(8, 0, 0, struct.pack(">I", 2**31 - 1 - 65535))
            )
            sending = asyncio.ensure_future(loop.sock_sendall(sock, preface + calls()))
            try:
                await _check(server, sock, sending)
            finally:
                sending.cancel()

    uvloop.run(run())  # the server's own loop


async def _check(server: GrpcH2Server, sock: socket.socket, sending: asyncio.Future[None]) -> None:
    loop = asyncio.get_running_loop()
    await asyncio.sleep(2)  # the server answers as fast as it can meanwhile
    (conn,) = server.connections
    assert conn.transport is not None
    buffered = conn.transport.get_write_buffer_size()
    # Without back-pressure the server reads on and buffers about 10 MB of answers here.
    assert buffered < 2 * 1024 * 1024, f"{buffered} bytes of answers buffered"
    assert not conn.transport.is_reading()
    answered, buf = 0, bytearray()
    while answered < CALLS:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout=30)
        assert chunk, f"connection closed after {answered} answers"
        buf += chunk
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            if buf[3] == 1 and buf[4] & 0x1:  # trailers: one call answered
                answered += 1
            del buf[: 9 + int.from_bytes(buf[:3], "big")]
    await asyncio.wait_for(sending, timeout=30)
    assert conn.transport.is_reading()


def test_calls_are_refused_while_a_peer_opens_no_window() -> None:
    limit, count = 1 << 20, 40  # 40 answers of 64 KiB: 2.5 MiB, over the 1 MiB limit

    async def run() -> None:
        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, echo, False)},
            "127.0.0.1",
            0,
            max_message_bytes=1 << 20,
            max_held_bytes=limit,
        )
        loop = asyncio.get_running_loop()
        async with connected(server) as sock:
            # Stream windows of 0: every answer waits for the peer's window.
            preface = PREFACE + frame(4, 0, 0, struct.pack(">HI", 4, 0))
            await loop.sock_sendall(sock, preface + calls(count))
            refused: set[int] = set()
            buf = bytearray()
            deadline = loop.time() + 30
            while len(refused) < count - limit // SIZE - 1:
                assert loop.time() < deadline, f"only {len(refused)} calls refused"
                buf += await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout=30)
                for ftype, _flags, stream_id, payload in frames(buf):
                    if ftype == 3 and payload == struct.pack(">I", 7):  # REFUSED_STREAM
                        refused.add(stream_id)
            (conn,) = server.connections
            held = sum(len(s.pending) for s in conn.blocked)
            assert held <= limit + SIZE + 5, f"{held} bytes held"
            # Open the windows: the calls taken are answered, the refused ones are not.
            await loop.sock_sendall(
                sock,
                frame(4, 0, 0, struct.pack(">HI", 4, 2**31 - 1))
                + frame(8, 0, 0, struct.pack(">I", 2**31 - 1 - 65535)),
            )
            answered: set[int] = set()
            taken = count - len(refused)
            while len(answered) < taken:
                buf += await asyncio.wait_for(loop.sock_recv(sock, 1 << 20), timeout=30)
                for ftype, flags, stream_id, _payload in frames(buf):
                    if ftype == 1 and flags & 0x1:  # trailers: one call answered
                        answered.add(stream_id)
            assert not answered & refused
            assert len(refused) >= count - limit // SIZE - 1

    uvloop.run(run())


def test_the_end_hook_runs_after_the_answer_is_written() -> None:
    # Metrics and the access line are written from it: the answer must not wait for them.
    async def run() -> None:
        seen: list[bytes] = []
        peer: list[socket.socket] = []

        def ended(_context: Any, _http_status: int) -> None:  # what reached the client by then
            try:
                seen.append(peer[0].recv(1 << 20, socket.MSG_PEEK | socket.MSG_DONTWAIT))
            except BlockingIOError:
                seen.append(b"")

        async def answer(request: bytes, context: Any) -> Echo:
            return Echo(b"answer")

        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, answer, False)}, "127.0.0.1", 0,
            max_message_bytes=1 << 20, on_call_end=ended,
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        async with connected(server) as sock:
            peer.append(sock)
            await loop.sock_sendall(sock, PREFACE + frame(4, 0, 0) + calls(1))
            deadline = loop.time() + 10
            while not seen:
                assert loop.time() < deadline, "the end hook never ran"
                await asyncio.sleep(0.01)
            # the whole answer, trailers included, was on the socket before the hook ran
            sent = frames(bytearray(seen[0]))
            assert any(ftype == 0 and b"answer" in payload for ftype, _, _, payload in sent)
            decoder = hpack.Decoder()
            blocks = [
                (flags, decoder.decode(block)) for ftype, flags, _, block in sent if ftype == 1
            ]
            assert blocks[-1] == (0x5, [("grpc-status", "0")]), sent  # trailers end the stream

    uvloop.run(run())


def test_every_call_reaches_the_end_hook_once_after_its_answer() -> None:
    # What the access log is written from: answered calls, calls answered without a handler
    # (unknown method, not gRPC), and a call the client resets before its request ended.
    async def run() -> None:
        ended: list[tuple[str, object, int]] = []
        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, echo, False)}, "127.0.0.1", 0,
            max_message_bytes=1 << 20,
            on_call_end=lambda context, http: ended.append((context.method, context.code(), http)),
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        encoder = hpack.Encoder()

        def call(stream_id: int, path: str, content_type: str, end: bool) -> bytes:
            headers = [(":method", "POST"), (":scheme", "http"), (":authority", "test"),
                       (":path", path), ("content-type", content_type)]  # fmt: skip
            body = b"\0" + struct.pack(">I", 2) + b"hi"
            return frame(1, 0x4, stream_id, encoder.encode(headers)) + frame(
                0, 0x1 if end else 0, stream_id, body
            )

        async with connected(server) as sock:
            await loop.sock_sendall(
                sock,
                PREFACE + frame(4, 0, 0)
                + call(1, "/test.Echo/Echo", "application/grpc", True)
                + call(3, "/test.Echo/Nope", "application/grpc", True)
                + call(5, "/test.Echo/Echo", "application/json", True)
                + call(7, "/test.Echo/Echo", "application/grpc", False)
                + frame(3, 0, 7, struct.pack(">I", 8)),  # RST_STREAM CANCEL
            )  # fmt: skip
            deadline = loop.time() + 10
            while len(ended) < 4:
                assert loop.time() < deadline, ended
                await asyncio.sleep(0.01)
            await asyncio.sleep(0.1)  # nothing is reported twice
            assert sorted(ended, key=str) == sorted(
                [
                    ("/test.Echo/Echo", grpc.StatusCode.OK, 200),
                    ("/test.Echo/Nope", grpc.StatusCode.UNIMPLEMENTED, 200),
                    ("/test.Echo/Echo", None, 415),
                    ("/test.Echo/Echo", None, 200),
                ],
                key=str,
            )

    uvloop.run(run())


def test_a_client_reset_at_its_deadline_ends_the_call_as_timed_out() -> None:
    # A gRPC client resets the call when its deadline passes, which may be before ours (it
    # rounds the grpc-timeout it sends up): that call timed out; a reset long before the
    # deadline is a cancel.
    async def run() -> None:
        ended: dict[int, object] = {}

        async def slow(request: bytes, context: Any) -> Echo:
            await asyncio.sleep(5)
            return Echo(b"late")

        server = GrpcH2Server(
            {"/test.Echo/Slow": Method(bytes, slow, False)}, "127.0.0.1", 0,
            max_message_bytes=1 << 20,
            on_call_end=lambda context, http: ended.setdefault(
                len(ended), (context.code(), context.status_name())
            ),
        )  # fmt: skip
        loop = asyncio.get_running_loop()
        encoder = hpack.Encoder()

        def call(stream_id: int, timeout: str) -> bytes:
            headers = [(":method", "POST"), (":scheme", "http"), (":authority", "test"),
                       (":path", "/test.Echo/Slow"), ("content-type", "application/grpc"),
                       ("grpc-timeout", timeout)]  # fmt: skip
            body = b"\0" + struct.pack(">I", 2) + b"hi"
            return frame(1, 0x4, stream_id, encoder.encode(headers)) + frame(0, 1, stream_id, body)

        cancel = struct.pack(">I", 8)
        async with connected(server) as sock:
            # deadline in 1 s; the client resets 7 ms before it (within its rounding: 1 %)
            await loop.sock_sendall(sock, PREFACE + frame(4, 0, 0) + call(1, "1S"))
            await asyncio.sleep(0.993)
            await loop.sock_sendall(sock, frame(3, 0, 1, cancel))
            # deadline in 10 s; reset at once
            await loop.sock_sendall(sock, call(3, "10S"))
            await asyncio.sleep(0.05)
            await loop.sock_sendall(sock, frame(3, 0, 3, cancel))
            deadline = loop.time() + 10
            while len(ended) < 2:
                assert loop.time() < deadline, ended
                await asyncio.sleep(0.01)
        assert ended == {
            0: (grpc.StatusCode.DEADLINE_EXCEEDED, "DEADLINE_EXCEEDED"),
            1: (None, "CANCELLED"),
        }

    uvloop.run(run())
