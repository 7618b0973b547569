"""The gRPC server's HTTP/2 and gRPC wire handling, against a real server process.

Clients are grpcio (the reference C-core implementation) and, for what a library would never
send, raw HTTP/2 frames over a socket. The model is async and can be told to wait, so calls
overlap, outlive their deadline or get cancelled while the server is working on them.
"""

from __future__ import annotations

import signal
import socket
import struct
import threading
import time
from collections.abc import Iterator

import grpc
import hpack
import httpx
import numpy as np
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from runtimes_support import ServerProcess

# Triton's client registers the same proto file (package "inference") in protobuf's default
# pool, so these tests use its generated modules rather than ours: one pool, one definition.
from tritonclient.grpc import service_pb2 as pb
from tritonclient.grpc import service_pb2_grpc as pb_grpc

pytestmark = pytest.mark.data_plane

MAX_BODY = 4_000_000

SLOW_ECHO = """
import asyncio
import numpy as np
from kserve_stack_runtimes.model import Model
from kserve_stack_runtimes.protocol.v2 import InferTensor

class SlowEcho(Model):
    async def predict(self, payload, headers):
        wait = (payload.parameters or {}).get("sleep")
        if wait:
            await asyncio.sleep(float(wait))
        tag = headers.get("x-tag", "").encode()
        out = [InferTensor("out_" + t.name, t.data, t.datatype) for t in payload.inputs]
        return out + [InferTensor("tag", np.array([tag], dtype=object), "BYTES")]
"""


def _serve(tmp_path_factory: pytest.TempPathFactory) -> ServerProcess:
    d = tmp_path_factory.mktemp("slow-echo")
    (d / "echo.py").write_text(SLOW_ECHO)
    server = ServerProcess(
        [
            "custom",
            "--model_name=echo",
            f"--model_class={d}/echo.py:SlowEcho",
            f"--max_request_body_bytes={MAX_BODY}",
            "--graceful_shutdown_timeout=10",
        ]
    )
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    s = _serve(tmp_path_factory)
    yield s
    assert s.stop() == 0
    logs = s.log_path.read_text(errors="replace")
    assert "Traceback" not in logs, logs


@pytest.fixture(scope="module")
def stub(server: ServerProcess) -> Iterator[pb_grpc.GRPCInferenceServiceStub]:
    options = [("grpc.max_receive_message_length", -1), ("grpc.max_send_message_length", -1)]
    with grpc.insecure_channel(server.grpc_target, options=options) as channel:
        yield pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]


def _request(data: np.ndarray, sleep: float = 0.0) -> pb.ModelInferRequest:
    req = pb.ModelInferRequest(model_name="echo")
    req.inputs.add(name="x", datatype="FP32", shape=list(data.shape))
    req.raw_input_contents.append(data.astype("<f4").tobytes())
    if sleep:
        req.parameters["sleep"].double_param = sleep
    return req


def _output(reply: pb.ModelInferResponse, name: str = "out_x") -> np.ndarray:
    i = [o.name for o in reply.outputs].index(name)
    return np.frombuffer(reply.raw_output_contents[i], dtype="<f4").reshape(
        list(reply.outputs[i].shape)
    )


def test_large_tensors_cross_flow_control_both_ways(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    # 3.2 MB each way: many DATA frames, beyond every initial window (64 KiB), both directions.
    data = np.arange(800_000, dtype=np.float32).reshape(1000, 800)
    reply = stub.ModelInfer(_request(data), timeout=30)
    assert np.array_equal(_output(reply), data)


@pytest.mark.parametrize("datatype", ["FP32", "FP64", "INT64"])
def test_large_typed_contents_both_ways(
    stub: pb_grpc.GRPCInferenceServiceStub, datatype: str
) -> None:
    # Typed contents (not raw) in and out: answered in typed contents, values unchanged.
    dtype = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}[datatype]
    data = (np.arange(150_528) - 75_000).astype(dtype).reshape(1, 3, 224, 224) / 3
    data = data.astype(dtype)
    req = pb.ModelInferRequest(model_name="echo")
    tensor = req.inputs.add(name="x", datatype=datatype, shape=list(data.shape))
    field = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents"}
    getattr(tensor.contents, field[datatype]).extend(data.reshape(-1).tolist())
    reply = stub.ModelInfer(req, timeout=30)
    assert not reply.raw_output_contents
    out = reply.outputs[[o.name for o in reply.outputs].index("out_x")]
    assert out.datatype == datatype and list(out.shape) == list(data.shape)
    assert np.array_equal(np.array(getattr(out.contents, field[datatype]), dtype), data.ravel())


def test_concurrent_calls_on_one_connection(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    futures = [
        stub.ModelInfer.future(_request(np.full((1, 4), i, np.float32), 0.05 * (i % 3)), timeout=30)
        for i in range(64)
    ]
    for i, future in enumerate(futures):
        assert _output(future.result()).tolist() == [[float(i)] * 4]


def test_metadata_reaches_the_model(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    reply = stub.ModelInfer(_request(np.ones((1, 1))), metadata=[("x-tag", "hello")], timeout=10)
    assert reply.outputs[1].name == "tag"
    assert reply.raw_output_contents[1] == struct.pack("<I", 5) + b"hello"


def test_gzip_compressed_request(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    data = np.zeros((100, 100), np.float32)
    reply = stub.ModelInfer(_request(data), compression=grpc.Compression.Gzip, timeout=10)
    assert np.array_equal(_output(reply), data)


def test_deadline_exceeded_while_the_model_works(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    started = time.monotonic()
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(_request(np.ones((1, 1)), sleep=3), timeout=0.3)
    assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert time.monotonic() - started < 2.5
    assert _output(stub.ModelInfer(_request(np.ones((1, 1))), timeout=10)).tolist() == [[1.0]]


def test_client_cancel_leaves_the_server_serving(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    future = stub.ModelInfer.future(_request(np.ones((1, 1)), sleep=2), timeout=10)
    time.sleep(0.2)
    assert future.cancel()
    assert _output(stub.ModelInfer(_request(np.ones((1, 1)) * 3), timeout=10)).tolist() == [[3.0]]


def test_calls_that_end_early_are_counted_and_leave_no_call_in_flight(
    server: ServerProcess, stub: pb_grpc.GRPCInferenceServiceStub
) -> None:
    # The in-flight gauge and the request counter are settled once a call is over: also for a
    # call past its deadline (the client's deadline and ours race: either way it is counted
    # as DEADLINE_EXCEEDED), one the client cancels and one that succeeds.
    with pytest.raises(grpc.RpcError):
        stub.ModelInfer(_request(np.ones((1, 1)), sleep=3), timeout=0.2)
    future = stub.ModelInfer.future(_request(np.ones((1, 1)), sleep=2), timeout=10)
    time.sleep(0.2)
    assert future.cancel()
    stub.ModelInfer(_request(np.ones((1, 1))), timeout=10)

    def metrics() -> str:
        return httpx.get(f"{server.url}/metrics", timeout=5).text

    deadline = time.monotonic() + 10
    while 'kserve_stack_inflight_requests{protocol="grpc-v2"} 0.0' not in metrics():
        assert time.monotonic() < deadline, metrics()
        time.sleep(0.1)
    text = metrics()
    assert 'kserve_stack_requests_total{model="echo",protocol="grpc-v2",status="OK"}' in text
    assert 'kserve_stack_requests_total{model="echo",protocol="grpc-v2",status="CANCELLED"}' in (
        text
    )
    # counted with the status its answer had (the client that gave up sees the same)
    assert (
        'kserve_stack_requests_total{model="echo",protocol="grpc-v2",status="DEADLINE_EXCEEDED"}'
        in text
    )


def test_message_over_the_limit_is_resource_exhausted(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    data = np.zeros(MAX_BODY // 4 + 10, np.float32).reshape(1, -1)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(_request(data), timeout=30)
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert str(MAX_BODY) in (info.value.details() or "")


def test_unknown_method_and_garbage_request(server: ServerProcess) -> None:
    with grpc.insecure_channel(server.grpc_target) as channel:
        nope = channel.unary_unary("/inference.GRPCInferenceService/Nope")
        with pytest.raises(grpc.RpcError) as info:
            nope(b"", timeout=10)
        assert info.value.code() == grpc.StatusCode.UNIMPLEMENTED
        infer = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        with pytest.raises(grpc.RpcError) as info:
            infer(b"\xff\xff\xff", timeout=10)
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_errors_carry_non_ascii_messages(stub: pb_grpc.GRPCInferenceServiceStub) -> None:
    req = pb.ModelInferRequest(model_name="modèle-inconnu")
    req.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(req, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    assert "modèle-inconnu" in (info.value.details() or "")


def _frame(ftype: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    n = len(payload)
    return struct.pack(">BHBBI", n >> 16, n & 0xFFFF, ftype, flags, stream_id) + payload


def _read_frames(sock: socket.socket, until_type: int) -> list[tuple[int, int, int, bytes]]:
    buf = b""
    frames = []
    sock.settimeout(5)
    while True:
        while len(buf) >= 9 and len(buf) >= 9 + int.from_bytes(buf[:3], "big"):
            n = int.from_bytes(buf[:3], "big")
            sid = int.from_bytes(buf[5:9], "big") & 0x7FFFFFFF
            frames.append((buf[3], buf[4], sid, buf[9 : 9 + n]))
            buf = buf[9 + n :]
            if frames[-1][0] == until_type:
                return frames
        chunk = sock.recv(65536)
        if not chunk:
            return frames
        buf += chunk


def test_raw_http2_ping_and_bad_preface(server: ServerProcess) -> None:
    with socket.create_connection(("127.0.0.1", server.grpc_port)) as sock:
        sock.sendall(
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0) + _frame(6, 0, 0, b"abcdefgh")
        )
        frames = _read_frames(sock, until_type=6)
        assert frames[0][0] == 4  # the server's SETTINGS come first
        assert frames[-1] == (6, 1, 0, b"abcdefgh")  # PING ACK with the same payload
    with socket.create_connection(("127.0.0.1", server.grpc_port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        frames = _read_frames(sock, until_type=7)
        assert frames[-1][0] == 7  # GOAWAY
        assert int.from_bytes(frames[-1][3][4:8], "big") == 1  # PROTOCOL_ERROR
        assert sock.recv(10) == b""  # and the connection is closed


def test_sigterm_drains_calls_and_health_watch_follows(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    server = _serve(tmp_path_factory)
    try:
        with grpc.insecure_channel(server.grpc_target) as channel:
            health = health_pb2_grpc.HealthStub(channel)
            statuses: list[int] = []
            watch = health.Watch(health_pb2.HealthCheckRequest(service=""), timeout=30)

            def follow() -> None:
                try:
                    for reply in watch:
                        statuses.append(reply.status)
                except grpc.RpcError:
                    pass

            follower = threading.Thread(target=follow)
            follower.start()
            stub = pb_grpc.GRPCInferenceServiceStub(channel)  # type: ignore[no-untyped-call]
            slow = stub.ModelInfer.future(_request(np.ones((1, 2)), sleep=1.0), timeout=30)
            time.sleep(0.3)
            server.proc.send_signal(signal.SIGTERM)
            assert _output(slow.result()).tolist() == [[1.0, 1.0]]  # in flight: completes
            follower.join(15)
            assert statuses[:2] == [
                health_pb2.HealthCheckResponse.SERVING,
                health_pb2.HealthCheckResponse.NOT_SERVING,
            ]
        assert server.proc.wait(20) == 0
    finally:
        server.stop()


def test_long_error_message_is_cut_to_fit_the_trailers(
    stub: pb_grpc.GRPCInferenceServiceStub,
) -> None:
    req = pb.ModelInferRequest(model_name="m" * 20_000)
    req.inputs.add(name="x", datatype="FP32", shape=[1]).contents.fp32_contents.append(1.0)
    with pytest.raises(grpc.RpcError) as info:
        stub.ModelInfer(req, timeout=10)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND
    details = info.value.details() or ""
    assert details.endswith("...") and 4000 < len(details) < 4200


def test_repeated_header_blocks_follow_the_hpack_table(server: ServerProcess) -> None:
    """A header block that leaves the HPACK table unchanged is decoded once and then looked up;
    once the table changes, the same bytes name other headers and must be decoded again."""
    message = _request(np.ones((1, 1))).SerializeToString()
    body = b"\0" + struct.pack(">I", len(message)) + message
    encoder, decoder = hpack.Encoder(), hpack.Decoder()

    def headers(tag: str) -> list[tuple[str, str]]:
        return [
            (":method", "POST"),
            (":scheme", "http"),
            # Never indexed, as nghttp2 (h2load, Envoy) sends :path: the block is not all indexed.
            hpack.NeverIndexedHeaderTuple(":path", "/inference.GRPCInferenceService/ModelInfer"),
            (":authority", "test"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-tag", tag),
        ]

    with socket.create_connection(("127.0.0.1", server.grpc_port)) as sock:
        sock.settimeout(10)
        sock.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + _frame(4, 0, 0))
        buf = bytearray()

        def call(stream_id: int, block: bytes) -> bytes:
            sock.sendall(_frame(1, 0x4, stream_id, block) + _frame(0, 0x1, stream_id, body))
            data = b""
            while True:
                while len(buf) < 9 or len(buf) < 9 + int.from_bytes(buf[:3], "big"):
                    chunk = sock.recv(65536)
                    assert chunk, "connection closed"
                    buf.extend(chunk)
                n = int.from_bytes(buf[:3], "big")
                ftype, flags, sid = buf[3], buf[4], int.from_bytes(buf[5:9], "big")
                payload = bytes(buf[9 : 9 + n])
                del buf[: 9 + n]
                if sid != stream_id:
                    continue
                if ftype == 0:
                    data += payload
                elif ftype == 1:
                    fields = dict(decoder.decode(payload))
                    if flags & 0x1:  # the trailers
                        assert fields["grpc-status"] == "0", fields
                        reply = pb.ModelInferResponse.FromString(data[5:])
                        tag = reply.raw_output_contents[1]
                        return tag[4:]

        assert call(1, encoder.encode(headers("one"))) == b"one"  # adds to the table
        repeated = encoder.encode(headers("one"))  # indexed fields and the literal :path
        assert call(3, repeated) == b"one"
        assert call(5, repeated) == b"one"  # looked up
        assert call(7, encoder.encode(headers("two"))) == b"two"  # x-tag: two goes in front
        # The same bytes now also carry x-tag: two (the index "one" had), which wins.
        assert call(9, repeated) == b"two"
