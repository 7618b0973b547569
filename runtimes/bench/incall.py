"""CPU per call in process, warm and on cold caches: our V2 REST and V2 gRPC transports fed the
benchmark's own requests without sockets, on the benchmark's model, in one process.

Why: `bench.py` times round trips, which this shared VM moves by +-10-15 % between runs, and
`work.py` counts instructions, which say nothing about caches. At concurrency 1 the server sleeps
between calls and its vCPU halts, so each call starts on cold caches and costs about twice its
warm CPU; this measures that case too, repeatably: between calls a sweep writes one byte of
every cache line of a `--sweep-mib` buffer (16 MiB: beyond both vCPUs' L2, not the host's L3).

Method: one data plane with the model (a scikit-learn LogisticRegression, 4 features, batch of
1) serves a gRPC connection and an HTTP/1.1 connection, each given a transport that only
records what is written. Each call's bytes go to the connection's ``data_received`` (h2load's
HPACK header block and DATA for gRPC, its request for REST); "to write" is the time until the
answer is written, "call" until the call's work after the write (counting, the access line) is
done, and "predict" the model's own ``predict`` inside it. Protocols alternate in batches of 200
calls, `--rounds` (40) batches each; each figure is the median of the batches' medians. Ours is
the build in BENCH_OURS_BUILD (`make bench-runtimes-incall` builds the wheel); the editable
sources otherwise. Logging is configured as the server does, its lines written to /dev/null.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import struct
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import hpack
import numpy as np
import uvloop
from bench import V2_BODY, grpc_message, train
from kserve_stack_runtimes import logs
from kserve_stack_runtimes.dataplane import DataPlane
from kserve_stack_runtimes.metrics import Metrics
from kserve_stack_runtimes.predictors.sklearn import SKLearnModel
from kserve_stack_runtimes.repository import ModelRepository
from kserve_stack_runtimes.settings import ServerSettings
from kserve_stack_runtimes.transports import h2grpc, http1
from kserve_stack_runtimes.transports.access import AccessLog
from kserve_stack_runtimes.transports.grpc import GrpcServer
from kserve_stack_runtimes.transports.rest import RestApp

BATCH = 200
#: The request headers h2load sends for a gRPC call (`bench.py`: GRPC_HEADERS).
GRPC_REQUEST_HEADERS = [
    (":method", "POST"),
    (":scheme", "http"),
    (":authority", "127.0.0.1:8081"),
    (":path", "/inference.GRPCInferenceService/ModelInfer"),
    ("content-type", "application/grpc"),
    ("te", "trailers"),
    ("user-agent", "h2load nghttp2/1.52.0"),
]


class RecordingTransport(asyncio.Transport):
    """Keeps the time of the last write (the answer leaving) and nothing else."""

    def __init__(self) -> None:
        super().__init__()
        self.written_at = 0
        self.writes = 0
        self.closed = False

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self.written_at = time.perf_counter_ns()
        self.writes += 1

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 40000) if name == "peername" else default

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.closed = True


def _frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
    head = struct.pack(">BHBBI", len(payload) >> 16, len(payload) & 0xFFFF, kind, flags, stream)
    return head + payload


class Caller:
    """Feeds one connection its protocol's calls and times them."""

    def __init__(self, conn: asyncio.Protocol, make_call: Callable[[], bytes]) -> None:
        self.conn, self.make_call = conn, make_call
        self.transport = RecordingTransport()
        conn.connection_made(self.transport)

    def call(self) -> tuple[int, int]:
        data = self.make_call()
        writes = self.transport.writes
        start = time.perf_counter_ns()
        self.conn.data_received(data)
        end = time.perf_counter_ns()
        if self.transport.writes == writes or self.transport.closed:
            raise SystemExit(
                "a call was not answered or its connection closed: the transports changed under "
                "this tool"
            )
        return self.transport.written_at - start, end - start


def grpc_caller(server: GrpcServer) -> Caller:
    encoder = hpack.Encoder()
    body = b"\x00" + struct.pack(">I", len(message := grpc_message())) + message
    stream = -1

    def make_call() -> bytes:
        nonlocal stream
        stream += 2
        block = encoder.encode(GRPC_REQUEST_HEADERS)
        return _frame(1, 0x4, stream, block) + _frame(0, 0x1, stream, body)

    caller = Caller(h2grpc._Connection(server.server), make_call)
    # The preface and empty SETTINGS; the window that h2load opens (its -W default, 1 GiB).
    caller.conn.data_received(
        h2grpc._PREFACE + _frame(4, 0, 0, b"") + _frame(8, 0, 0, struct.pack(">I", 1 << 30))
    )
    return caller


def rest_caller(server: http1.HttpServer) -> Caller:
    body = V2_BODY.encode()
    request = (
        b"POST /v2/models/iris/infer HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n"
        b"User-Agent: h2load nghttp2/1.52.0\r\nAccept: */*\r\ncontent-type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    return Caller(http1._Connection(server), lambda: request)


async def measure(rounds: int, sweep_mib: int) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-incall-") as work:  # loaded, then gone
        model = SKLearnModel("iris", train(Path(work)).parent)
        model.load()
    predict_ns: list[int] = []
    estimator = model._model

    class TimedEstimator:  # the model's own predict, timed inside the call
        def predict(self, x: np.ndarray[Any, Any]) -> Any:
            t = time.perf_counter_ns()
            result = estimator.predict(x)
            predict_ns.append(time.perf_counter_ns() - t)
            return result

    model._model = TimedEstimator()
    repository = ModelRepository(None)
    repository.add(model)
    settings = ServerSettings()
    dataplane = DataPlane(repository, Metrics())
    grpc_server = GrpcServer(dataplane, "127.0.0.1", 0, 1 << 20, access_log=AccessLog(settings))
    await grpc_server.start()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        rest_server = http1.HttpServer(RestApp(dataplane, settings), sock, max_body=1 << 20)
        callers = {"V2 gRPC": grpc_caller(grpc_server), "V2 REST": rest_caller(rest_server)}
        sweep = np.zeros(sweep_mib << 20, np.uint8)
        for cold in (False, True):
            figures: dict[str, list[tuple[float, float, float]]] = {p: [] for p in callers}
            for _ in range(rounds):
                for protocol, caller in callers.items():
                    pre, total = [], []
                    predict_ns.clear()
                    for _ in range(BATCH):
                        if cold:
                            sweep[::64] += 1
                        p, t = caller.call()
                        pre.append(p)
                        total.append(t)
                    figures[protocol].append(
                        tuple(statistics.median(v) / 1e3 for v in (pre, total, predict_ns))  # type: ignore[arg-type]
                    )
            state = f"cold (a {sweep_mib} MiB sweep between calls)" if cold else "warm"
            print(f"{state}: us per call, median of {rounds} batches of {BATCH}")
            print(f"  {'':10}{'to write':>10}{'call':>10}{'predict':>10}{'call - predict':>16}")
            for protocol, rows in figures.items():
                pre_us, total_us, predict_us = (
                    statistics.median(r[i] for r in rows) for i in range(3)
                )
                print(
                    f"  {protocol:10}{pre_us:>10.1f}{total_us:>10.1f}{predict_us:>10.1f}"
                    f"{total_us - predict_us:>16.1f}"
                )
    await grpc_server.stop(0)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=40, help="batches per protocol and state")
    parser.add_argument("--sweep-mib", type=int, default=16, help="cache sweep between cold calls")
    opts = parser.parse_args()
    import kserve_stack_runtimes.transports.h2grpc as framing  # noqa: PLC0415

    build = "compiled" if not framing.__file__.endswith(".py") else "pure Python"
    print(f"ours: {build} ({framing.__file__})", flush=True)
    sys.stderr.flush()
    # Logging as the server sets it up, its lines going nowhere.
    sys.stderr = open(os.devnull, "w")  # noqa: SIM115 - for the life of the process
    logs.configure("INFO")
    try:
        uvloop.run(measure(opts.rounds, opts.sweep_mib))
    except SystemExit as exc:  # its message would go to the silenced stderr
        print(f"error: {exc}", file=sys.__stderr__)
        raise SystemExit(1) from None
    except Exception:
        traceback.print_exc(file=sys.__stderr__)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
