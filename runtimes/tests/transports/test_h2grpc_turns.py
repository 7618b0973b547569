"""The order in which the gRPC server starts calls that one pass of its loop reads from several
connections: the connection whose last call started longest ago first (transports/turns.py)."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import pytest
import uvloop
from h2_wire import PREFACE, Echo, calls, frame, frames
from kserve_stack_runtimes.transports.h2grpc import GrpcH2Server, Method

pytestmark = pytest.mark.data_plane


async def _answered(sock: socket.socket, stream_id: int) -> None:
    """Read ``sock`` until the trailers of ``stream_id`` came."""
    buf = bytearray()
    while True:
        chunk = await asyncio.wait_for(asyncio.get_running_loop().sock_recv(sock, 65536), 10)
        assert chunk, "the server closed the connection"
        buf += chunk
        for ftype, flags, sid, _ in frames(buf):
            if ftype == 1 and flags & 0x1 and sid == stream_id:
                return


def test_calls_read_together_start_longest_served_connection_first() -> None:
    started: list[bytes] = []

    async def record(request: bytes, context: Any) -> Echo:
        started.append(request)
        return Echo(request)

    async def run() -> None:
        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, record, False)},
            "127.0.0.1",
            0,
            max_message_bytes=1024,
        )
        await server.start()
        loop = asyncio.get_running_loop()
        socks: dict[str, socket.socket] = {}
        try:
            for name in "abc":  # a, b, c each make a call, one after the other
                sock = socks[name] = socket.socket()
                sock.setblocking(False)
                await loop.sock_connect(sock, ("127.0.0.1", server.port))
                first = PREFACE + frame(4, 0, 0, struct.pack(">HI", 4, 65535))
                await loop.sock_sendall(sock, first + calls(1, 1, name.encode()))
                await _answered(sock, 1)
            started.clear()
            for name in "cba":  # sent without yielding: the server reads all three in one pass
                socks[name].send(calls(1, 3, name.encode() + b"2"))
            for sock in socks.values():
                await _answered(sock, 3)
            assert started == [b"a2", b"b2", b"c2"]
        finally:
            for sock in socks.values():
                sock.close()
            await server.stop(grace=0)

    uvloop.run(run())
