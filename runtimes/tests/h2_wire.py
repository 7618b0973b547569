"""Test support: HTTP/2 frames written by hand, to drive the gRPC server below any client."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import struct
from collections.abc import AsyncIterator
from typing import Any

import hpack
from kserve_stack_runtimes.transports.h2grpc import GrpcH2Server

CALLS, SIZE = 200, 64 * 1024  # 12.8 MB of answers


class Echo:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def SerializeToString(self) -> bytes:  # noqa: N802 (protobuf's name)
        return self.data


async def echo(request: bytes, context: Any) -> Echo:
    return Echo(request)


def frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id) + payload


def calls(count: int = CALLS, first_id: int = 1, message: bytes = b"x" * SIZE) -> bytes:
    """``count`` Echo calls of ``message``, on streams from ``first_id`` on."""
    body = b"\0" + struct.pack(">I", len(message)) + message
    encoder = hpack.Encoder()
    headers = [(":method", "POST"), (":scheme", "http"), (":authority", "test"),
               (":path", "/test.Echo/Echo"), ("content-type", "application/grpc"),
               ("te", "trailers")]  # fmt: skip
    return b"".join(
        frame(1, 0x4, first_id + 2 * i, encoder.encode(headers))
        + frame(0, 0x1, first_id + 2 * i, body)
        for i in range(count)
    )


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


@contextlib.asynccontextmanager
async def connected(server: GrpcH2Server, rcvbuf: int = 0) -> AsyncIterator[socket.socket]:
    """``server`` started, and a non-blocking socket connected to it; both closed after."""
    await server.start()
    sock = socket.socket()
    try:
        if rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", server.port))
        yield sock
    finally:
        sock.close()
        await server.stop(grace=0)


def frames(buf: bytearray) -> list[tuple[int, int, int, bytes]]:
    """The complete frames at the start of ``buf`` (taken out of it)."""
    out = []
    while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
        n = int.from_bytes(buf[:3], "big")
        stream_id = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
        out.append((buf[3], buf[4], stream_id, bytes(buf[9 : 9 + n])))
        del buf[: 9 + n]
    return out
