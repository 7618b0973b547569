"""How the gRPC server encodes its answers' header blocks (transports/h2answers.py): the fields
every answer repeats go into the peer's HPACK table once and are sent by index after that; a
peer that allows a smaller table is told so at the start of the next block, and below what the
fields need nothing is indexed. Each block is decoded by hpack's decoder playing the peer."""

from __future__ import annotations

import asyncio
import socket
import struct
from typing import Any

import hpack
import pytest
import uvloop
from h2_wire import PREFACE, calls, connected, echo, frame, frames
from kserve_stack_runtimes.transports.h2answers import OK_TRAILERS, AnswerEncoder, literal
from kserve_stack_runtimes.transports.h2grpc import GrpcH2Server, Method

pytestmark = pytest.mark.data_plane

HEADERS = {":status": "200", "content-type": "application/grpc",
           "grpc-accept-encoding": "identity,deflate,gzip"}  # fmt: skip


def _peer(table_size: int = 4096) -> hpack.Decoder:
    decoder = hpack.Decoder()
    decoder.max_allowed_table_size = table_size  # what it told us in SETTINGS
    decoder.header_table_size = table_size
    return decoder


def test_repeated_fields_are_sent_by_index_after_the_first_answer() -> None:
    encoder, peer = AnswerEncoder(), _peer()
    sizes = []
    for _ in range(3):
        headers, trailers = encoder.headers(), encoder.block(OK_TRAILERS)
        assert dict(peer.decode(headers)) == HEADERS
        assert dict(peer.decode(trailers)) == {"grpc-status": "0"}
        sizes.append((len(headers), len(trailers)))
        assert encoder.steady  # from the first answer on, the blocks no longer change
    assert sizes[1:] == [(3, 1), (3, 1)], sizes
    assert sizes[0][0] > 60  # the first answer carries the literals
    # :status 200 (static 8), content-type (64), grpc-accept-encoding (63); grpc-status 0 (62)
    assert (encoder.headers(), encoder.block(OK_TRAILERS)) == (b"\x88\xc0\xbf", b"\xbe")


def test_answers_interleaved_on_streams_keep_the_table_in_step() -> None:
    encoder, peer = AnswerEncoder(), _peer()
    blocks = [encoder.headers(), encoder.headers(), encoder.block(OK_TRAILERS)]
    error = literal(b"grpc-status", b"5") + literal(b"grpc-message", b"not found")
    blocks += [encoder.headers() + error, encoder.block(OK_TRAILERS), encoder.headers()]
    decoded = [dict(peer.decode(block)) for block in blocks]
    assert decoded[0] == decoded[1] == decoded[5] == HEADERS
    assert decoded[2] == decoded[4] == {"grpc-status": "0"}
    assert decoded[3] == {**HEADERS, "grpc-status": "5", "grpc-message": "not found"}


@pytest.mark.parametrize("size", [0, 100, 177, 1000])
def test_a_smaller_peer_table_is_announced_before_the_next_block(size: int) -> None:
    encoder, peer = AnswerEncoder(), _peer()
    assert dict(peer.decode(encoder.headers())) == HEADERS  # two entries added
    encoder.peer_table_size(size)  # the peer's decoder shrinks to ``size`` at our ACK
    assert not encoder.steady  # the next block must start with the update
    peer.max_allowed_table_size = size
    peer.header_table_size = size
    trailers = encoder.block(OK_TRAILERS)
    assert trailers[0] & 0xE0 == 0x20  # a dynamic table size update starts the block
    assert dict(peer.decode(trailers)) == {"grpc-status": "0"}
    for _ in range(2):  # references only what the smaller table still holds
        assert dict(peer.decode(encoder.headers())) == HEADERS
        assert dict(peer.decode(encoder.block(OK_TRAILERS))) == {"grpc-status": "0"}
    assert not encoder.size_update  # announced once
    assert encoder.steady == (size >= 177)  # the three entries need 177 bytes


def test_a_larger_peer_table_changes_nothing() -> None:
    encoder = AnswerEncoder()
    encoder.peer_table_size(65536)
    assert not encoder.size_update
    assert dict(_peer().decode(encoder.headers())) == HEADERS


def test_server_answers_a_peer_without_a_dynamic_table() -> None:
    """nghttp2 fails the connection when a peer that lowered its table size gets a block that
    does not start by saying so (h2load --header-table-size=0 failed every call before)."""

    async def run() -> None:
        server = GrpcH2Server(
            {"/test.Echo/Echo": Method(bytes, echo, False)}, "127.0.0.1", 0, max_message_bytes=1024
        )
        loop = asyncio.get_running_loop()
        async with connected(server) as sock:
            settings = frame(4, 0, 0, struct.pack(">HI", 1, 0))  # SETTINGS_HEADER_TABLE_SIZE 0
            await loop.sock_sendall(sock, PREFACE + settings + calls(3, 1, b"hello"))
            blocks = await _header_blocks(sock, answers=3)
        peer = _peer(0)
        assert blocks[0][0] == 0x20  # size update to 0 before anything else
        decoded = [dict(peer.decode(block)) for block in blocks]
        assert decoded[0::2] == [HEADERS] * 3
        assert decoded[1::2] == [{"grpc-status": "0"}] * 3

    uvloop.run(run())


async def _header_blocks(sock: socket.socket, answers: int) -> list[bytes]:
    """The answers' header blocks (headers, then trailers), until ``answers`` trailers came."""
    buf, blocks, ended = bytearray(), [], 0
    loop: Any = asyncio.get_running_loop()
    while ended < answers:
        chunk = await asyncio.wait_for(loop.sock_recv(sock, 65536), 10)
        assert chunk, "the server closed the connection"
        buf += chunk
        for ftype, flags, _, payload in frames(buf):
            if ftype == 1:
                blocks.append(payload)
                ended += flags & 0x1
    return blocks
