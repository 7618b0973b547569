"""Typed gRPC tensors: the time to decode a ModelInferRequest whose tensor travels in typed
``contents`` (not raw bytes) into numpy, and to encode the answer, per call, in process.

Two sides, each in its own process (Triton's, KServe's and our generated modules register the
same proto file, one per process), timing the same serialized messages:

* ours: ``parse_model_infer`` and ``decode_infer_request``, then ``encode_infer_response``, of
  the build in BENCH_OURS_BUILD (as `bench.py`; `make bench-runtimes-tensors` builds the wheel):
  requests are read by our own wire codec (``infer_wire``: float contents viewed by numpy in
  place, integer contents decoded by the codec; records over 4 KiB of integers by protobuf),
  answers written by it (integer tensors of over 64 elements through protobuf);
* KServe 0.21 (its venv, .bench/kserve-venv): ``InferRequest.from_grpc`` then ``as_numpy``, and
  ``InferResponse.to_grpc`` of a numpy output (which KServe always answers in raw contents).

Each figure is the best of 5 repeats of the mean over enough calls to take ~0.2 s. Not a test;
figures vary with the machine. Run through `make bench-runtimes-tensors`.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from typing import Any

#: (datatype, elements): a feature row, a small batch, a 224x224 RGB image.
CASES = [(dt, n) for dt in ("FP32", "FP64", "INT64") for n in (4, 1024, 150_528)]
FIELD = {"FP32": "fp32_contents", "FP64": "fp64_contents", "INT64": "int64_contents"}
SIDES = ("ours", "KServe 0.21")
_SIDE, _WORK = "BENCH_TENSORS_SIDE", "BENCH_TENSORS_WORK"


def per_call_us(fn: Callable[[], Any]) -> float:
    number = 1
    while timeit.timeit(fn, number=number) < 0.2 and number < 1 << 20:
        number *= 2
    return min(timeit.repeat(fn, number=number, repeat=5)) / number * 1e6


def write_messages(work: Path) -> None:
    import numpy as np  # noqa: PLC0415
    from kserve_stack_runtimes._generated import grpc_predict_v2_pb2 as pb  # noqa: PLC0415

    rng = np.random.default_rng(0)
    for datatype, n in CASES:
        req = pb.ModelInferRequest(model_name="m")
        tensor = req.inputs.add(name="x", datatype=datatype, shape=[1, n])
        values = rng.integers(-1000, 1000, n) if datatype == "INT64" else rng.standard_normal(n)
        getattr(tensor.contents, FIELD[datatype]).extend(values.tolist())
        (work / f"{datatype}-{n}.bin").write_bytes(req.SerializeToString())


def time_ours(work: Path) -> dict[str, tuple[float, float]]:
    from kserve_stack_runtimes.protocol import v2  # noqa: PLC0415
    from kserve_stack_runtimes.transports.grpc import (  # noqa: PLC0415
        decode_infer_request,
        encode_infer_response,
        parse_model_infer,
    )

    out = {}
    for datatype, n in CASES:
        body = (work / f"{datatype}-{n}.bin").read_bytes()
        request = decode_infer_request(parse_model_infer(body))
        data = request.inputs[0].data
        response = v2.InferResponse("m", [v2.InferTensor("y", data, datatype)])
        out[f"{datatype}-{n}"] = (
            per_call_us(lambda b=body: decode_infer_request(parse_model_infer(b))),
            per_call_us(lambda r=response, q=request: encode_infer_response(r, q, False)),
        )
    return out


def time_kserve(work: Path) -> dict[str, tuple[float, float]]:
    from kserve.protocol.grpc.grpc_predict_v2_pb2 import ModelInferRequest  # noqa: PLC0415
    from kserve.protocol.infer_type import InferOutput, InferRequest, InferResponse  # noqa: PLC0415

    def decode(body: bytes) -> Any:
        return InferRequest.from_grpc(ModelInferRequest.FromString(body)).inputs[0].as_numpy()

    def encode(data: Any, datatype: str) -> bytes:
        output = InferOutput("y", list(data.shape), datatype, data=data)
        response = InferResponse("id", "m", [output])
        return response.to_grpc().SerializeToString()  # type: ignore[no-any-return]

    out = {}
    for datatype, n in CASES:
        body = (work / f"{datatype}-{n}.bin").read_bytes()
        data = decode(body)
        out[f"{datatype}-{n}"] = (
            per_call_us(lambda b=body: decode(b)),
            per_call_us(lambda d=data, t=datatype: encode(d, t)),
        )
    return out


def run_side(side: str, work: Path) -> dict[str, tuple[float, float]]:
    # Imported here: the sides' processes (KServe's venv among them) must not load bench.py.
    from bench import BENCH, ours_env  # noqa: PLC0415

    here = str(Path(__file__).resolve())
    if side == "KServe 0.21":
        python, env = str(BENCH / "kserve-venv" / "bin" / "python"), None
        if not Path(python).exists():
            raise SystemExit(f"{python} not found: run `make kserve-venv`")
    else:
        python, env = sys.executable, ours_env()
    # Told by the environment: importing KServe parses the command line (its server's flags).
    env = {**(env or os.environ), _SIDE: side, _WORK: str(work)}
    done = subprocess.run([python, here], capture_output=True, text=True, env=env, check=False)
    if done.returncode:
        raise SystemExit(f"the {side} side failed:\n{done.stderr}")
    return {k: tuple(v) for k, v in json.loads(done.stdout).items()}  # type: ignore[misc]


def main() -> None:
    side = os.environ.get(_SIDE)
    if side:  # one side's process, started by the benchmark
        work = Path(os.environ[_WORK])
        figures = time_kserve(work) if side == "KServe 0.21" else time_ours(work)
        print(json.dumps(figures))
        return
    argparse.ArgumentParser(description=__doc__).parse_args()
    from bench import describe_ours_build  # noqa: PLC0415

    print(f"ours: {describe_ours_build()}", flush=True)
    results = {}
    with tempfile.TemporaryDirectory(prefix="bench-tensors-") as folder:
        work = Path(folder)
        write_messages(work)
        for side in SIDES:
            print(f"timing {side} ...", flush=True)
            results[side] = run_side(side, work)
    print()
    print("us per call: decode (request -> numpy) | encode (numpy -> answer, serialized)")
    head = "".join(f"{s:>13}" for s in SIDES)
    print(f"{'tensor':<16}{head} |{head}")
    for datatype, n in CASES:
        key = f"{datatype}-{n}"
        dec = "".join(f"{results[s][key][0]:>13.1f}" for s in SIDES)
        enc = "".join(f"{results[s][key][1]:>13.1f}" for s in SIDES)
        print(f"{f'{datatype} x{n}':<16}{dec} |{enc}")


if __name__ == "__main__":
    main()
