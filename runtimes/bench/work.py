"""Work per call, counted instead of timed: the instructions our server runs per V1 REST, V2 REST
and V2 gRPC request of the benchmark (valgrind's callgrind), and those the load generator runs.

Why: at concurrency 1 our two V2 protocols are a few microseconds apart in a round trip of
~400 us, and timed runs seconds apart differ by +-10 % on this shared VM, so timing cannot say
which transport does more work. Instruction counts under valgrind repeat to about 0.1 % within a
server process (and about 1 % across processes), so they can: use them to compare transport
changes. They are not time: cache misses, branch mispredictions and the kernel's share (system
calls, TCP) are not in them, and the speed targets are judged on `make bench-runtimes`.

Method: one server process (ours, the benchmark's model, one worker) runs under callgrind with
PYTHONHASHSEED=0; for each protocol in turn, WORK_WARMUP calls with h2load (concurrency 1),
counters zeroed, WORK_CALLS calls, counters dumped, for WORK_ROUNDS rounds; each figure is the
dump's instruction total over the calls: the loop's idle wake-ups (a few hundred instructions a
call) and the setup of h2load's connection are in it, shared over the calls (a gRPC connection
costs the server about a million instructions: with 30 calls its rows come out ~3 % higher than
with 300). The generator's figure: h2load itself under callgrind against a second
server process that is not, for WORK_CALLS + 100 calls and for 100, the difference per call.
Ours is the build in BENCH_OURS_BUILD, as for `bench.py` (`make bench-runtimes-work` builds the
wheel). Run through `make bench-runtimes-work` (a few minutes: Python runs ~50x slower under
valgrind).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from bench import (
    GRPC_HEADERS,
    GRPC_METHOD,
    JSON_HEADERS,
    V1_BODY,
    V2_BODY,
    check_grpc,
    check_rest,
    describe_ours_build,
    free_port,
    grpc_message,
    ours_env,
    stop_server,
    train,
)

CALLS = int(os.environ.get("WORK_CALLS", "300"))
WARMUP = int(os.environ.get("WORK_WARMUP", "100"))
ROUNDS = int(os.environ.get("WORK_ROUNDS", "2"))
READY_TIMEOUT = 900  # seconds: importing scikit-learn under valgrind takes a minute or more
PROTOCOLS = ("V1 REST", "V2 REST", "V2 gRPC")


class Server:
    """Our server on the benchmark's model, under callgrind when ``counted``."""

    def __init__(self, model: Path, work: Path, counted: bool) -> None:
        self.http, self.grpc = free_port(), free_port()
        cmd = [
            sys.executable, "-m", "kserve_stack_runtimes.sklearn", "--model_name=iris",
            f"--model_dir={model.parent}", f"--http_port={self.http}",
            f"--grpc_port={self.grpc}", "--workers=1",
        ]  # fmt: skip
        self.dumps = work / "server"
        if counted:
            out = f"--callgrind-out-file={self.dumps}.%p"
            cmd = ["valgrind", "--tool=callgrind", "--quiet", out, *cmd]
        env = {**ours_env(), "PYTHONHASHSEED": "0"}
        self.log = open(work / ("counted.log" if counted else "plain.log"), "wb")  # noqa: SIM115
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, env=env)
        self._wait_ready(counted)

    def _wait_ready(self, counted: bool) -> None:
        start = last_note = time.monotonic()
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"the server exited ({self.proc.returncode}); see {self.log.name}")
            try:
                if httpx.get(self.url("/v2/models/iris/ready"), timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            now = time.monotonic()
            if now - start > READY_TIMEOUT:
                raise SystemExit(f"the server was not ready in {READY_TIMEOUT} s")
            if counted and now - last_note > 20:
                print(f"  waiting for the server under valgrind ({now - start:.0f} s)", flush=True)
                last_note = now
            time.sleep(0.5)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.http}{path}"

    def endpoint(self, protocol: str) -> str:
        if protocol == "V1 REST":
            return self.url("/v1/models/iris:predict")
        if protocol == "V2 REST":
            return self.url("/v2/models/iris/infer")
        return f"http://127.0.0.1:{self.grpc}{GRPC_METHOD}"

    def stop(self) -> None:
        stop_server(self.proc, self.log, 60)  # under valgrind the exit takes longer


def h2load(server: Server, protocol: str, body: Path, calls: int, prefix: list[str]) -> None:
    """``calls`` calls one after the other; every one must succeed."""
    headers = GRPC_HEADERS if protocol == "V2 gRPC" else JSON_HEADERS
    cmd = [*prefix, "h2load", "-t1", "-c1", "-m1", f"-n{calls}", "-d", str(body)]
    for header in headers:
        cmd += ["-H", header]
    if protocol != "V2 gRPC":
        cmd.append("--h1")
    out = subprocess.run(
        [*cmd, server.endpoint(protocol)], capture_output=True, text=True, check=False
    )
    done = re.search(r"(\d+) succeeded", out.stdout)
    if out.returncode or done is None or int(done.group(1)) != calls:
        raise SystemExit(f"h2load {protocol}: not every call succeeded\n{out.stdout}{out.stderr}")


def instructions(dump: Path) -> int:
    match = re.search(r"^summary: (\d+)", dump.read_text(errors="replace"), re.MULTILINE)
    if match is None:
        raise SystemExit(f"{dump}: no instruction total in this callgrind dump")
    return int(match.group(1))


def dump_counters(server: Server) -> int:
    """Write the counters since the last zeroing or dump to a new file; its total."""
    pattern = f"{server.dumps.name}.{server.proc.pid}.*"
    before = set(server.dumps.parent.glob(pattern))
    # callgrind_control waits until callgrind has written the dump.
    subprocess.run(
        ["callgrind_control", "-d", str(server.proc.pid)], capture_output=True, check=True
    )
    new = set(server.dumps.parent.glob(pattern)) - before
    if len(new) != 1:
        raise SystemExit(f"callgrind_control -d wrote {len(new)} dumps instead of one")
    return instructions(new.pop())


def server_work(model: Path, bodies: dict[str, Path], work: Path) -> dict[str, list[float]]:
    print("starting our server under valgrind (callgrind)...", flush=True)
    server = Server(model, work, counted=True)
    try:
        check_rest(server.endpoint("V2 REST"), V2_BODY)  # the answers are the real ones
        check_grpc(f"127.0.0.1:{server.grpc}", grpc_message())
        figures: dict[str, list[float]] = {p: [] for p in PROTOCOLS}
        for round_ in range(1, ROUNDS + 1):
            for protocol in PROTOCOLS:
                h2load(server, protocol, bodies[protocol], WARMUP, [])
                subprocess.run(
                    ["callgrind_control", "-z", str(server.proc.pid)],
                    capture_output=True,
                    check=True,
                )
                h2load(server, protocol, bodies[protocol], CALLS, [])
                per_call = dump_counters(server) / CALLS
                figures[protocol].append(per_call)
                print(
                    f"  round {round_}: {protocol}: {per_call:,.0f} instructions a call", flush=True
                )
        return figures
    finally:
        server.stop()


def client_work(model: Path, bodies: dict[str, Path], work: Path) -> dict[str, float]:
    print("counting h2load's own instructions against a server not under valgrind...", flush=True)
    server = Server(model, work, counted=False)
    try:
        figures: dict[str, float] = {}
        for protocol in PROTOCOLS:
            totals = []
            for calls in (100, 100 + CALLS):
                out = work / f"h2load.{protocol.replace(' ', '-')}.{calls}"
                prefix = ["valgrind", "--tool=callgrind", "--quiet", f"--callgrind-out-file={out}"]
                h2load(server, protocol, bodies[protocol], calls, prefix)
                totals.append(instructions(out))
            figures[protocol] = (totals[1] - totals[0]) / CALLS
        return figures
    finally:
        server.stop()


def main() -> None:
    argparse.ArgumentParser(
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="environment: WORK_CALLS (300) calls counted per protocol and round, "
        "WORK_WARMUP (100) calls before the counters are zeroed, WORK_ROUNDS (2) rounds",
    ).parse_args()
    for tool, hint in (("valgrind", "valgrind"), ("callgrind_control", "valgrind"),
                       ("h2load", "nghttp2-client")):  # fmt: skip
        if not shutil.which(tool):
            raise SystemExit(f"{tool} not found: apt-get install {hint}")
    print(f"ours: {describe_ours_build()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-work-"))
    model = train(work)
    message = grpc_message()
    bodies = {p: work / f"{p.replace(' ', '-')}.body" for p in PROTOCOLS}
    bodies["V1 REST"].write_text(V1_BODY)
    bodies["V2 REST"].write_text(V2_BODY)
    bodies["V2 gRPC"].write_bytes(b"\0" + len(message).to_bytes(4, "big") + message)
    server = server_work(model, bodies, work)
    client = client_work(model, bodies, work)
    print(f"\ninstructions per call, {CALLS} calls at concurrency 1 ({ROUNDS} rounds; callgrind)")
    print(f"{'protocol':10s} {'server (each round)':>30s} {'h2load':>9s} {'both':>11s}")
    both = {}
    for protocol in PROTOCOLS:
        rounds = " / ".join(f"{x:,.0f}" for x in server[protocol])
        both[protocol] = min(server[protocol]) + client[protocol]
        print(f"{protocol:10s} {rounds:>30s} {client[protocol]:>9,.0f} {both[protocol]:>11,.0f}")
    grpc_server = min(server["V2 gRPC"]) / min(server["V2 REST"])
    print(
        f"V2 gRPC / V2 REST: server x{grpc_server:.3f}, server and generator "
        f"x{both['V2 gRPC'] / both['V2 REST']:.3f} (below 1: gRPC does less work)"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
