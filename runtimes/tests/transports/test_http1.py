"""The HTTP/1.1 server (transports/http1.py) in-process, with a small ASGI app and raw sockets.

What a client library would hide is written out by hand: pipelined requests, chunked bodies,
``Expect: 100-continue``, bodies over the limit, malformed requests, HEAD, idle timeouts.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from kserve_stack_runtimes.transports.http1 import HttpServer

MAX_BODY = 1000
#: The paths of the requests the app was called for, in the order it was called.
started: list[str] = []


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    message = await receive()
    path = scope["path"]
    started.append(path)
    if path == "/slow":
        await asyncio.sleep(0.2)
    if path == "/fail":
        raise RuntimeError("boom")
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for part in (b"one,", b"two,", b"three"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    status = 413 if message["more_body"] else 200  # more_body: over the limit, the rest dropped
    body = json.dumps(
        {
            "method": scope["method"],
            "path": path,
            "query": scope["query_string"].decode(),
            "body": message["body"].decode(),
            "client": scope["client"][0],
            "scheme": scope["scheme"],
        }
    ).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


Connect = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


@pytest.fixture
async def server() -> AsyncIterator[HttpServer]:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.setblocking(False)
    srv = HttpServer(app, sock, max_body=MAX_BODY, keep_alive_timeout=0.2)
    await srv.start()
    yield srv
    await srv.stop(grace=1.0)


@pytest.fixture
async def connect(server: HttpServer) -> AsyncIterator[Connect]:
    """Opens client connections to ``server``; all are closed at the end of the test."""
    writers: list[asyncio.StreamWriter] = []

    async def open_one() -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        reader, writer = await asyncio.open_connection("127.0.0.1", server.sock.getsockname()[1])
        writers.append(writer)
        return reader, writer

    yield open_one
    for writer in writers:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n"))[:-2], 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, body
            body += chunk[:-2]
    return status, headers, b""


async def read_json(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], Any]:
    status, headers, _ = await read_response(reader)
    body = await reader.readexactly(int(headers["content-length"]))
    return status, headers, json.loads(body)


async def closed(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(), 5) == b""


async def test_pipelined_requests_are_answered_in_order(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(
        b"POST /slow HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\na"
        b"GET /b%20c?d=1 HTTP/1.1\r\nHost: x\r\n\r\n"
        b"POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"
    )
    answers = [(await read_json(reader))[2] for _ in range(3)]
    assert [(a["path"], a["body"]) for a in answers] == [
        ("/slow", "a"),
        ("/b c", ""),
        ("/c", "abcde"),
    ]
    assert answers[1]["query"] == "d=1" and answers[1]["method"] == "GET"
    writer.write(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")  # the connection is kept
    assert (await read_json(reader))[2]["path"] == "/again"


async def test_requests_read_together_start_longest_served_connection_first(
    connect: Connect,
) -> None:
    """Epoll's order of ready connections is not the order their requests came in: a pass's
    requests start with the connection whose last request started longest ago."""
    connections = {name: await connect() for name in "abc"}
    for name, (reader, writer) in connections.items():  # served a, b, c, one by one
        writer.write(f"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        await read_json(reader)
    started.clear()
    for name in "cba":  # sent without yielding: the server reads all three in one pass
        connections[name][1].write(f"GET /{name}/again HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    for reader, _ in connections.values():
        await read_json(reader)
    assert started == ["/a/again", "/b/again", "/c/again"]
    reader, writer = connections["a"]  # a alone: b and c have now waited longest
    writer.write(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_json(reader)
    started.clear()
    for name in "acb":
        connections[name][1].write(f"GET /{name} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    for reader, _ in connections.values():
        await read_json(reader)
    assert started == ["/b", "/c", "/a"]


async def test_http10_and_connection_close_end_the_connection(
    connect: Connect, caplog: pytest.LogCaptureFixture
) -> None:
    for request in (
        b"GET /a HTTP/1.0\r\n\r\n",
        # What follows the last request of a connection is not served.
        b"GET /a HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\nGET /fail HTTP/1.1\r\n\r\n",
    ):
        reader, writer = await connect()
        writer.write(request)
        status, headers, _ = await read_json(reader)
        assert status == 200 and headers["connection"] == "close"
        assert await closed(reader)
    assert "/fail" not in caplog.text  # never ran


async def test_expect_100_continue(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n"
    )
    assert await reader.readuntil(b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
    writer.write(b"xyz")
    assert (await read_json(reader))[2]["body"] == "xyz"
    # Declared over the limit: answered at once, no 100, and closed (the body may never come).
    writer.write(
        b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    )
    status, headers, _ = await read_json(reader)
    assert status == 413 and headers["connection"] == "close"
    assert await closed(reader)


async def test_body_over_the_limit_is_answered_early_and_dropped(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"POST /big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
    writer.write(b"258\r\n" + b"a" * 600 + b"\r\n" + b"258\r\n" + b"b" * 600 + b"\r\n")
    status, _, doc = await read_json(reader)  # before the body ended
    assert status == 413 and len(doc["body"]) == 1200
    writer.write(b"258\r\n" + b"c" * 600 + b"\r\n0\r\n\r\n")  # the rest is read and dropped
    writer.write(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n")
    assert (await read_json(reader))[2]["path"] == "/next"


@pytest.mark.parametrize(
    "request_bytes",
    [b"NOT HTTP\r\n\r\n", b"GET / HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n"],
    ids=["garbage", "head-over-64KiB"],
)
async def test_malformed_requests_get_400_and_close(connect: Connect, request_bytes: bytes) -> None:
    reader, writer = await connect()
    writer.write(request_bytes)
    status, headers, doc = await read_json(reader)
    assert status == 400 and headers["connection"] == "close" and doc["error"]
    assert await closed(reader)


async def test_head_answers_carry_no_body(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, _ = await read_response(reader)
    assert status == 200 and int(headers["content-length"]) > 0
    assert (await read_json(reader))[2]["path"] == "/g"  # the next answer follows at once


async def test_app_errors_and_streams(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"GET /fail HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, doc = await read_json(reader)
    assert status == 500 and doc == {"error": "Internal server error."}
    assert headers["connection"] == "close" and await closed(reader)
    reader, writer = await connect()
    writer.write(b"GET /stream HTTP/1.1\r\nHost: x\r\n\r\n")
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["transfer-encoding"] == "chunked"
    assert body == b"one,two,three"


async def test_forwarded_headers_from_a_loopback_proxy(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(
        b"GET /f HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: 203.0.113.7, 127.0.0.6\r\n"
        b"X-Forwarded-Proto: https\r\n\r\n"
    )
    doc = (await read_json(reader))[2]
    assert doc["client"] == "203.0.113.7" and doc["scheme"] == "https"


async def test_upgrade_requests_are_answered_then_closed(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"GET /u HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
    assert (await read_json(reader))[2]["path"] == "/u"
    assert await closed(reader)


async def test_idle_connections_are_closed(connect: Connect) -> None:
    reader, writer = await connect()
    writer.write(b"GET /i HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_json(reader)
    assert await closed(reader)  # keep_alive_timeout 0.2 s; checked every second


async def test_stop_finishes_requests_in_flight(server: HttpServer, connect: Connect) -> None:
    idle_reader, _ = await connect()
    reader, writer = await connect()
    writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(server.stop(grace=2.0))
    assert await closed(idle_reader)
    status, headers, _ = await read_json(reader)
    assert status == 200 and headers["connection"] == "close"
    await stopping
    assert not server.connections
