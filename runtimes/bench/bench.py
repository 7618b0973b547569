"""Benchmark: our model server vs KServe's (PyPI kserve) vs MLServer on one scikit-learn model.

Same model file, same machine, one worker process each (MLServer: parallel_workers=0, since its
worker pool crashes here). Each server answers V1 REST (not MLServer), V2 REST and V2 gRPC at
concurrency 1 and 32, after a warm-up. Concurrent REST requests each hold a keep-alive
connection (HTTP/1.1 has one request at a time per connection); concurrent gRPC calls share one
channel, as gRPC clients send them (grpcio, tritonclient and KServe's client hold one HTTP/2
connection per channel and multiplex calls over it; ghz's default is one connection), and the
row `V2 gRPC/conn` gives gRPC at concurrency 32 with one connection per call as well. The servers
run side by side (idle between their points: under 1 % of a core each) and each point is
measured on every server in turn, so that load from other processes on a shared machine falls
on all of them alike; and it is measured in `BENCH_ROUNDS` rounds (3) of `BENCH_DURATION`
seconds (5), each round going through every point of every server before the next begins, and
the round with the median req/s of each point is reported (its latencies and CPU with it): a
burst of load from elsewhere (this 2-vCPU VM shares its host) then spoils one round of a
point, not the point. Two figures as close as our V2 REST and V2 gRPC at concurrency 1 (the
same model path, tens of microseconds of protocol apart in a round trip of 0.4-0.8 ms) still
differ by whatever load the host had in the seconds between them, so they are also compared in
`BENCH_PAIRS` (120) pairs of 1 s runs back to back, alternating which goes first, and the
"gRPC >= REST" target at concurrency 1 is judged on the median of the pairs' ratios, printed
with a bootstrap 95 % interval. Why so many: one pair's ratio has a spread (SD) of 0.12-0.17
on this VM, no smaller for longer runs, so the median of 9 pairs has a standard error of about
0.07, more than the gap the two protocols' own work leaves in a c=1 round trip (in process a
gRPC call costs the server 15-45 µs less than a V2 REST one, of 0.3-0.8 ms, most of which is
the model's `predict`: `make bench-runtimes-incall`); the median of 120 pairs has one of about
0.02. At concurrency 32 the protocols are further apart, but three rounds' medians still swing
by ±20 % with the host (one full run had V2 REST at 2500 req/s and gRPC at 2035, the next
V2 REST at 1975 and gRPC at 2214), so that target is judged the same way, on
`BENCH_PAIRS_C32` (60) pairs of 1 s.
Reported: requests/s, p50/p99
latency, the CPU time per request of the server (user + system of its whole process tree, from
/proc) and of the load generator (getrusage of the finished generator), the server's RSS after
the load, and cold start (process start to /v2/models/iris/ready answering 200). Run through
`make bench-runtimes`.

Load generators, and why each is used:

* h2load (nghttp2) drives all three protocols on all servers: REST over HTTP/1.1 (`--h1`) and
  gRPC over h2c (a POST of the length-prefixed ModelInferRequest with `content-type:
  application/grpc` and `te: trailers`). One generator, in C on libev, spending about as little
  CPU per request as wrk, so REST and gRPC (and the servers) are compared on the same terms: its
  figures are the main ones and the targets are judged on them. h2load does not read
  grpc-status, so before a server's points the exact request bodies are sent once with real
  clients (grpcio for gRPC, httpx for REST) and the answers checked, and after each point the
  response bytes h2load received must add up to one verified answer per counted request (a
  gRPC error is a trailers-only response without any) and no request may have failed; a point
  that misses either is marked `!`.
* wrk (REST) and ghz (gRPC) give the reference figures of earlier runs. ghz is a real gRPC
  client (grpc-go, it checks every status) but spends about 0.2 ms of CPU per call, several
  times what wrk or h2load spend; at concurrency 1 that time adds to every round trip, so
  ghz-vs-wrk understates gRPC against REST. `BENCH_GENERATORS=h2load` skips wrk and ghz.

`BENCH_SERVERS=ours` (or a comma-separated subset of ours,kserve,mlserver) benchmarks fewer
servers. Ours is the build in `BENCH_OURS_BUILD`: `make bench-runtimes` builds the runtimes wheel
(its gRPC transport compiled by mypyc, as it ships) and unpacks it there; unset, the editable
sources (pure Python) are measured. The build measured is printed first.
"""

from __future__ import annotations

import contextlib
import importlib.machinery
import json
import os
import re
import resource
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import IO

import grpc
import httpx
import joblib
import numpy as np
from google.protobuf import json_format
from kserve_stack_runtimes._generated import grpc_predict_v2_pb2 as pb
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / ".bench"
DURATION = int(os.environ.get("BENCH_DURATION", "5"))
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
#: Pairs of back-to-back runs that judge gRPC >= REST, per concurrency (see the docstring).
PAIRS = {
    1: int(os.environ.get("BENCH_PAIRS", "120")),
    32: int(os.environ.get("BENCH_PAIRS_C32", "60")),
}
OURS = "kserve-stack (ours)"
PAIR_SECONDS = 1
CONCURRENCY = (1, 32)
#: The unpacked runtimes wheel that ours runs from (on PYTHONPATH); empty: the editable sources.
OURS_BUILD = os.environ.get("BENCH_OURS_BUILD", "")
GENERATORS = set(os.environ.get("BENCH_GENERATORS", "h2load,wrk,ghz").split(","))
ROW = [5.0, 3.4, 1.5, 0.2]
V1_BODY = json.dumps({"instances": [ROW]})
V2_BODY = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": ROW}]}
)
GRPC_DATA = json.dumps(
    {
        "model_name": "iris",
        "inputs": [
            {
                "name": "input-0",
                "datatype": "FP32",
                "shape": [1, 4],
                "contents": {"fp32_contents": ROW},
            }
        ],
    }
)
GRPC_METHOD = "/inference.GRPCInferenceService/ModelInfer"
#: "V2 gRPC": concurrent calls over one channel; "V2 gRPC/conn": one connection per call (the
#: same at concurrency 1, so measured at higher concurrency only).
PROTOCOLS = ("V1 REST", "V2 REST", "V2 gRPC", "V2 gRPC/conn")
GRPC_PER_CONNECTION = "V2 gRPC/conn"
JSON_HEADERS = ["content-type: application/json"]
GRPC_HEADERS = ["content-type: application/grpc", "te: trailers"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def train(d: Path) -> Path:
    rng = np.random.default_rng(0)
    centers = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])
    y = np.repeat(np.arange(3), 50)
    x = centers[y] + rng.normal(0, 0.2, size=(150, 4))
    path = d / "model" / "model.joblib"
    path.parent.mkdir(parents=True)
    joblib.dump(LogisticRegression(max_iter=500).fit(x, y), path)
    return path


def grpc_message() -> bytes:
    """The serialized ModelInferRequest that ghz builds from GRPC_DATA."""
    message: bytes = json_format.Parse(GRPC_DATA, pb.ModelInferRequest()).SerializeToString()
    return message


def _tree(pid: int) -> list[int]:
    """A process and all its descendants."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(FileNotFoundError, ProcessLookupError):
            todo.extend(int(c) for c in Path(f"/proc/{p}/task/{p}/children").read_text().split())
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process and its descendants."""
    ticks = 0
    for p in _tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            pass
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int) -> int:
    """RSS of a process and all its descendants (MLServer runs inference in a child)."""
    total = 0
    for p in _tree(pid):
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            pass
    return total


def ours_env() -> dict[str, str]:
    """The environment ours runs in: the build in ``OURS_BUILD`` first on the import path."""
    env = dict(os.environ)
    if OURS_BUILD:
        env["PYTHONPATH"] = OURS_BUILD
    return env


def describe_ours_build() -> str:
    """Which build of ours runs: the gRPC transport's module as the server would import it."""
    probe = "import kserve_stack_runtimes.transports.h2grpc as m; print(m.__file__)"
    origin = subprocess.run(
        [sys.executable, "-c", probe], env=ours_env(), capture_output=True, text=True, check=True
    ).stdout.strip()
    compiled = origin.endswith(tuple(importlib.machinery.EXTENSION_SUFFIXES))
    if OURS_BUILD and not compiled:
        raise SystemExit(f"BENCH_OURS_BUILD={OURS_BUILD}: its gRPC transport is not compiled")
    kind = "the wheel, gRPC transport compiled" if compiled else "the sources, pure Python"
    return f"{kind} ({origin})"


def stop_server(proc: subprocess.Popen[bytes], log: IO[bytes], grace: float) -> None:
    """SIGTERM, then SIGKILL if the server has not exited within ``grace`` s; close its log."""
    proc.terminate()
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


class Server:
    def __init__(
        self,
        name: str,
        cmd: list[str],
        ports: tuple[int, int],
        cwd: Path,
        *,
        v1: bool,
        env: dict[str, str] | None = None,
    ) -> None:
        http, grpc_port = ports
        self.name, self.http, self.grpc, self.v1 = name, http, grpc_port, v1
        self.log = open(cwd / f"{name.split(maxsplit=1)[0].lower()}.log", "wb")  # noqa: SIM115
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd, env=env
        )
        while True:
            if self.proc.poll() is not None:
                raise SystemExit(f"{name} exited; see {self.log.name}")
            try:
                r = httpx.get(f"http://127.0.0.1:{http}/v2/models/iris/ready", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.02)
        self.cold_start = time.perf_counter() - t0

    def stop(self) -> None:
        stop_server(self.proc, self.log, 20)


@dataclass
class Load:
    """What one generator run measured."""

    rps: float
    p50: float
    p99: float
    count: int
    #: The run's answers could not all be verified (failed requests, missing response bytes).
    suspect: bool = False


@dataclass
class Endpoint:
    """One protocol of one server: where to send what, and what a verified answer weighs."""

    protocol: str
    url: str
    body_file: Path
    headers: list[str]
    h1: bool
    #: Concurrent requests share one connection (HTTP/2 streams) instead of one each.
    multiplexed: bool = False
    #: Bytes of one verified answer as h2load counts them (the body; gRPC: its DATA payload).
    answer_bytes: int = 0


def check_rest(url: str, body: str) -> int:
    """Send the benchmark's body once; the answer must be a 200 with a JSON result."""
    r = httpx.post(url, content=body, headers={"content-type": "application/json"}, timeout=10)
    if r.status_code != 200:
        raise SystemExit(f"{url} answered {r.status_code}: {r.text}")
    doc = r.json()
    if not (doc.get("predictions") or doc.get("outputs")):
        raise SystemExit(f"{url} answered without a prediction: {doc}")
    return len(r.content)


def check_grpc(target: str, message: bytes) -> int:
    """Send the benchmark's message once with grpcio; the call must end OK with outputs."""
    with grpc.insecure_channel(target) as channel:
        call = channel.unary_unary(GRPC_METHOD)  # no serializers: bytes in, bytes out
        try:
            reply = call(message, timeout=10)
        except grpc.RpcError as exc:
            raise SystemExit(f"gRPC {target} failed: {exc}") from None
    if not pb.ModelInferResponse.FromString(reply).outputs:
        raise SystemExit(f"gRPC {target} answered without outputs")
    return 5 + len(reply)  # as it travels: compressed flag and length, then the message


def h2load(endpoint: Endpoint, conc: int, work: Path, seconds: int = DURATION) -> Load:
    log = work / "h2load.log"
    log.unlink(missing_ok=True)  # h2load appends to it
    shape = ["-c1", f"-m{conc}"] if endpoint.multiplexed else [f"-c{conc}", "-m1"]
    cmd = ["h2load", "-t1", *shape, f"-D{seconds}", "-d", str(endpoint.body_file)]
    for header in endpoint.headers:
        cmd += ["-H", header]
    if endpoint.h1:
        cmd.append("--h1")
    out = subprocess.run(
        [*cmd, f"--log-file={log}", endpoint.url], capture_output=True, text=True, check=False
    ).stdout
    finished = re.search(r"finished in ([\d.]+)(m?s)", out)  # under a second: in ms
    counts = re.search(
        r"requests: \d+ total, \d+ started, (\d+) done, (\d+) succeeded, (\d+) failed, "
        r"(\d+) errored, (\d+) timeout",
        out,
    )
    data = re.search(r"\((\d+)\) data", out)
    if finished is None or counts is None or data is None:
        raise SystemExit(f"h2load printed no result:\n{out}")
    done, ok, failed, errored, timeout = (int(g) for g in counts.groups())
    # Columns: start (us since epoch), status, duration (us); rows of failed requests as well.
    rows = [line.split("\t") for line in log.read_text().splitlines()]
    latencies = np.array([int(r[2]) for r in rows if r[1].startswith("2")]) / 1e3
    if ok == 0 or latencies.size == 0:
        raise SystemExit(f"h2load: no successful request on {endpoint.url}:\n{out}")
    p50, p99 = np.percentile(latencies, [50, 99], method="inverted_cdf")
    suspect = False
    if failed or errored or timeout or done != ok:
        print(f"  h2load: {failed} failed, {errored} errored, {timeout} timed out", flush=True)
        suspect = True
    # Each counted answer must have carried the verified body; partial answers of the requests
    # still in flight when the time ran out may add at most one answer per request in flight.
    received, expected = int(data.group(1)), ok * endpoint.answer_bytes
    if abs(received - expected) > conc * endpoint.answer_bytes:
        print(
            f"  h2load: {received} response bytes for {ok} answers of "
            f"{endpoint.answer_bytes} bytes: some answers were not the verified one",
            flush=True,
        )
        suspect = True
    seconds_taken = float(finished.group(1)) / (1000 if finished.group(2) == "ms" else 1)
    return Load(ok / seconds_taken, float(p50), float(p99), ok, suspect)


def wrk(url: str, body: str, conc: int, work: Path, seconds: int = DURATION) -> Load:
    script = work / "post.lua"
    script.write_text(
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
        "done = function(summary, latency, requests)\n"
        '  io.write(string.format("RESULT %d %d %f %f %d\\n", summary.requests, summary.duration,'
        " latency:percentile(50), latency:percentile(99),"
        " summary.errors.status + summary.errors.connect + summary.errors.read"
        " + summary.errors.write + summary.errors.timeout))\n"
        "end\n"
    )
    out = subprocess.run(
        ["wrk", "-t1", f"-c{conc}", f"-d{seconds}s", "-s", str(script), url],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    m = re.search(r"RESULT (\d+) (\d+) ([\d.]+) ([\d.]+) (\d+)", out)
    if m is None:
        raise SystemExit(f"wrk printed no result:\n{out}")
    requests, duration_us, p50_us, p99_us, errors = m.groups()
    if int(errors):  # non-2xx answers, or timeouts (wrk's is 2 s): shown, not hidden
        print(f"  {errors} of {requests} requests failed or timed out on {url}", flush=True)
    rps = int(requests) / (int(duration_us) / 1e6)
    return Load(rps, float(p50_us) / 1e3, float(p99_us) / 1e3, int(requests), int(errors) > 0)


def ghz(target: str, conc: int, ghz_bin: str, connections: int) -> Load:
    out = subprocess.run(
        [
            ghz_bin, "--insecure", "--proto", str(REPO / "runtimes/proto/grpc_predict_v2.proto"),
            "--call", "inference.GRPCInferenceService/ModelInfer", "-d", GRPC_DATA,
            "-c", str(conc), "-z", f"{DURATION}s", "--connections", str(connections),
            "--format", "json", target,
        ],
        capture_output=True, text=True, check=False,
    ).stdout  # fmt: skip
    doc = json.loads(out)
    codes = doc.get("statusCodeDistribution", {})
    if codes.get("OK", 0) == 0:
        raise SystemExit(f"ghz: no OK responses: {doc.get('errorDistribution')}")
    failed = sum(n for code, n in codes.items() if code != "OK")
    # ghz's last in-flight calls end as "transport is closing" when -z runs out: not the server.
    if failed > conc:
        print(f"  {failed} gRPC calls failed: {doc.get('errorDistribution')}", flush=True)
    pct = {int(p["percentage"]): p["latency"] / 1e6 for p in doc["latencyDistribution"]}
    return Load(doc["rps"], pct[50], pct[99], int(doc["count"]), failed > conc)


@dataclass
class Figures:
    load: Load
    #: CPU ms per completed request: the server's, and the load generator's.
    server_cpu: float
    gen_cpu: float


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(server: Server, label: str, load: Callable[[], Load]) -> Figures:
    """Run one load point; adds the CPU time per completed request of the server and of the
    load generator (on a small machine both share the cores, and at concurrency 1 the
    client's time per call adds to every round trip)."""
    cpu0, client0 = cpu_seconds(server.proc.pid), _children_cpu()
    result = load()
    n = max(result.count, 1)
    figures = Figures(
        result,
        (cpu_seconds(server.proc.pid) - cpu0) * 1e3 / n,
        (_children_cpu() - client0) * 1e3 / n,
    )
    print(
        f"  {label:46} {result.rps:7.0f} req/s  p50 {result.p50:7.2f} ms  p99 {result.p99:7.2f} ms"
        f"  CPU ms/req: server {figures.server_cpu:.3f}, generator {figures.gen_cpu:.3f}"
        + ("  (!)" if result.suspect else ""),
        flush=True,
    )
    return figures


def median_round(figures: list[Figures]) -> Figures | None:
    """The round with the median req/s (the lower middle one of an even count)."""
    if not figures:
        return None
    ordered = sorted(figures, key=lambda f: f.load.rps)
    chosen = ordered[(len(ordered) - 1) // 2]
    # One suspect round marks the point: its answers were not all the verified one.
    if any(f.load.suspect for f in figures) and not chosen.load.suspect:
        chosen = Figures(replace(chosen.load, suspect=True), chosen.server_cpu, chosen.gen_cpu)
    return chosen


@dataclass
class Row:
    server: str
    protocol: str
    conc: int
    main: Figures | None  # h2load
    ref: Figures | None  # wrk (REST) or ghz (gRPC)


def _rps(f: Figures | None, width: int = 9) -> str:
    if f is None:
        return f"{'-':>{width}}"
    return f"{f.load.rps:>{width - 1}.0f}" + ("!" if f.load.suspect else " ")


def print_table(rows: list[Row], summary: dict[str, tuple[float, float]]) -> None:
    print()
    print(f"h2load: the median of {ROUNDS} rounds of {DURATION} s per point; wrk / ghz: one run")
    print(f"{'':40}{'h2load (REST and gRPC)':-^52}  {'wrk (REST) / ghz (gRPC)':-^31}")
    print(
        f"{'server':21} {'protocol':12} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU':>8} {'gen CPU':>8}   {'req/s':>9} {'p99 ms':>8} {'gen CPU':>8}"
    )
    for r in rows:
        m, f = r.main, r.ref
        line = f"{r.server:21} {r.protocol:12} {r.conc:>4} {_rps(m)}"
        if m is not None:
            line += f"{m.load.p50:>8.2f} {m.load.p99:>8.2f} {m.server_cpu:>8.3f} {m.gen_cpu:>8.3f}"
        else:
            line += f"{'-':>8} {'-':>8} {'-':>8} {'-':>8}"
        line += f"   {_rps(f)}"
        if f is not None:
            line += f"{f.load.p99:>8.2f} {f.gen_cpu:>8.3f}"
        print(line)
    print("CPU columns: CPU ms per request (srv: the server's process tree; gen: the generator).")
    print(
        "V2 gRPC: concurrent calls over one channel (one HTTP/2 connection); V2 gRPC/conn: one "
        "connection per call; REST: one connection per request in flight."
    )
    if any(f is not None and f.load.suspect for r in rows for f in (r.main, r.ref)):
        print("! failed requests, or answers that were not all the verified one: see the log")
    print()
    print(f"{'server':21} {'RSS MiB':>8} {'cold start s':>13}")
    for name, (rss, cold) in summary.items():
        print(f"{name:21} {rss:>8.1f} {cold:>13.2f}")


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def compare_in_pairs(rest: Endpoint, grpc: Endpoint, conc: int, work: Path) -> list[float]:
    """gRPC/REST req/s at concurrency ``conc`` in ``PAIRS[conc]`` pairs of runs back to back."""
    ratios = []
    count = PAIRS[conc]
    for i in range(count):
        order = (rest, grpc) if i % 2 == 0 else (grpc, rest)
        got = {ep.protocol: h2load(ep, conc, work, seconds=PAIR_SECONDS) for ep in order}
        r, g = got[rest.protocol], got[grpc.protocol]
        if r.suspect or g.suspect:
            raise SystemExit("the pairs' runs had failed requests or unverified answers")
        ratios.append(g.rps / r.rps)
        if (i + 1) % 10 == 0 or i + 1 == count:
            print(
                f"  c={conc} pairs {i + 1}/{count}: the last V2 REST {r.rps:.0f}, V2 gRPC "
                f"{g.rps:.0f} req/s; median gRPC/REST so far x{float(np.median(ratios)):.3f}",
                flush=True,
            )
    return ratios


def median_interval(ratios: list[float], resamples: int = 10_000) -> tuple[float, float]:
    """A bootstrap 95 % interval of the median of ``ratios`` (seeded: the same pairs, the same
    interval)."""
    rng = np.random.default_rng(0)
    picks = rng.choice(np.asarray(ratios), size=(resamples, len(ratios)), replace=True)
    low, high = np.percentile(np.median(picks, axis=1), [2.5, 97.5])
    return float(low), float(high)


def print_targets(
    rows: list[Row], summary: dict[str, tuple[float, float]], pairs: dict[int, list[float]]
) -> None:
    """The issue's targets, judged on h2load's figures; wrk/ghz's in brackets."""
    by = {(r.server, r.protocol, r.conc): r for r in rows}
    ours, ks = OURS, "KServe 0.21.0"
    print()
    print("targets (judged on h2load; [wrk/ghz] for reference):")

    def ref(a: Figures | None, b: Figures | None, text: Callable[[Load, Load], str]) -> str:
        return f" [{text(a.load, b.load)}]" if a is not None and b is not None else ""

    for conc in CONCURRENCY:
        g, r = by.get((ours, "V2 gRPC", conc)), by.get((ours, "V2 REST", conc))
        if g is None or r is None or g.main is None or r.main is None:
            continue
        gm, rm = g.main.load, r.main.load
        ok = gm.rps >= rm.rps
        paired = ""
        if ratios := pairs.get(conc):
            ratio = float(np.median(ratios))
            ok = ratio >= 1.0
            wins = sum(p > 1.0 for p in ratios)
            low, high = median_interval(ratios)
            level = " (level: the interval holds x1)" if low < 1.0 < high else ""
            paired = (
                f"; in {len(ratios)} pairs back to back: median gRPC/REST x{ratio:.3f}, 95 % "
                f"interval x{low:.3f}-x{high:.3f}{level}, SD {float(np.std(ratios)):.3f}, "
                f"gRPC ahead in {wins}"
            )
        print(
            f"  gRPC >= REST (ours, c={conc}): {gm.rps:.0f} vs {rm.rps:.0f} req/s, p99 "
            f"{gm.p99:.2f} vs {rm.p99:.2f} ms"
            + ref(g.ref, r.ref, lambda a, b: f"ghz {a.rps:.0f} vs wrk {b.rps:.0f} req/s")
            + paired
            + f": {_verdict(ok)}"
        )
        c = by.get((ours, GRPC_PER_CONNECTION, conc))
        if c is not None and c.main is not None:
            cm = c.main.load
            print(
                f"    (one connection per gRPC call, reported, not judged: {cm.rps:.0f} req/s, "
                f"p99 {cm.p99:.2f} ms)"
            )
    if ours not in summary or ks not in summary:
        return
    for proto in ("V1 REST", "V2 REST"):
        o, k = by[(ours, proto, 32)], by[(ks, proto, 32)]
        if o.main is None or k.main is None:
            continue
        om, km = o.main.load, k.main.load
        print(
            f"  {proto} c=32 vs KServe: req/s x{om.rps / km.rps:.2f} (want >= 2), "
            f"p99 x{om.p99 / km.p99:.2f} (want <= 0.5)"
            + ref(o.ref, k.ref, lambda a, b: f"x{a.rps / b.rps:.2f}, p99 x{a.p99 / b.p99:.2f}")
            + f": {_verdict(om.rps >= 2 * km.rps and om.p99 <= 0.5 * km.p99)}"
        )
    (o_rss, o_cold), (k_rss, k_cold) = summary[ours], summary[ks]
    print(
        f"  RSS and cold start vs KServe: {o_rss:.1f} vs {k_rss:.1f} MiB, {o_cold:.2f} vs "
        f"{k_cold:.2f} s: {_verdict(o_rss <= k_rss and o_cold <= k_cold)}"
    )


def main() -> None:
    ghz_bin = shutil.which("ghz") or str(Path.home() / "go" / "bin" / "ghz")
    if "ghz" in GENERATORS and not Path(ghz_bin).exists():
        raise SystemExit("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.93.0")
    if "wrk" in GENERATORS and not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    if "h2load" in GENERATORS and not shutil.which("h2load"):
        raise SystemExit("h2load not found: apt-get install nghttp2-client")
    print(f"{OURS}: {describe_ours_build()}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-runtimes-"))
    model = train(work)
    message = grpc_message()
    bodies = {
        "V1 REST": work / "v1.json",
        "V2 REST": work / "v2.json",
        "V2 gRPC": work / "grpc.bin",
    }
    bodies["V1 REST"].write_text(V1_BODY)
    bodies["V2 REST"].write_text(V2_BODY)
    bodies["V2 gRPC"].write_bytes(b"\0" + struct.pack(">I", len(message)) + message)

    def ours() -> Server:
        h, g = free_port(), free_port()
        cmd = [
            sys.executable, "-m", "kserve_stack_runtimes.sklearn", "--model_name=iris",
            f"--model_dir={model.parent}", f"--http_port={h}", f"--grpc_port={g}", "--workers=1",
        ]  # fmt: skip
        return Server(OURS, cmd, (h, g), work, v1=True, env=ours_env())

    def kserve() -> Server:
        h, g = free_port(), free_port()
        py = BENCH / "kserve-venv" / "bin" / "python"
        cmd = [
            str(py), str(Path(__file__).parent / "kserve_server.py"), "--model_name=iris",
            f"--model_path={model}", f"--http_port={h}", f"--grpc_port={g}", "--workers=1",
        ]  # fmt: skip
        return Server("KServe 0.21.0", cmd, (h, g), work, v1=True)

    def mlserver() -> Server:
        h, g = free_port(), free_port()
        d = work / "mlserver"
        d.mkdir(exist_ok=True)
        (d / "settings.json").write_text(
            json.dumps(
                {"http_port": h, "grpc_port": g, "metrics_port": free_port(), "parallel_workers": 0}
            )
        )
        (d / "model-settings.json").write_text(
            json.dumps(
                {
                    "name": "iris",
                    "implementation": "mlserver_sklearn.SKLearnModel",
                    "parameters": {"uri": str(model)},
                }
            )
        )
        cmd = [str(BENCH / "mlserver-venv" / "bin" / "mlserver"), "start", str(d)]
        return Server("MLServer 1.7.1", cmd, (h, g), work, v1=False)

    rows: list[Row] = []
    summary: dict[str, tuple[float, float]] = {}
    pairs: dict[int, list[float]] = {}
    makers = {"ours": ours, "kserve": kserve, "mlserver": mlserver}
    chosen = os.environ.get("BENCH_SERVERS", ",".join(makers)).split(",")
    for key in chosen:
        if key not in makers:
            raise SystemExit(f"BENCH_SERVERS: unknown server {key!r}; pick from {list(makers)}")
    rest_bodies = {"V1 REST": V1_BODY, "V2 REST": V2_BODY}
    servers: list[Server] = []
    endpoints: dict[tuple[str, str], Endpoint] = {}
    try:
        for make in (makers[k] for k in chosen):
            server = make()
            servers.append(server)
            print(f"{server.name}: ready in {server.cold_start:.2f} s", flush=True)
            base = f"http://127.0.0.1:{server.http}"
            urls = {
                "V1 REST": f"{base}/v1/models/iris:predict",
                "V2 REST": f"{base}/v2/models/iris/infer",
                "V2 gRPC": f"http://127.0.0.1:{server.grpc}{GRPC_METHOD}",
            }
            for proto in PROTOCOLS if server.v1 else PROTOCOLS[1:]:
                if proto == GRPC_PER_CONNECTION:  # the V2 gRPC endpoint, one connection a call
                    grpc_ep = endpoints[(server.name, "V2 gRPC")]
                    endpoints[(server.name, proto)] = replace(grpc_ep, multiplexed=False)
                    continue
                rest = proto != "V2 gRPC"
                headers = JSON_HEADERS if rest else GRPC_HEADERS
                ep = Endpoint(proto, urls[proto], bodies[proto], headers, rest, not rest)
                ep.answer_bytes = (
                    check_rest(ep.url, rest_bodies[proto])
                    if rest
                    else check_grpc(f"127.0.0.1:{server.grpc}", message)
                )
                endpoints[(server.name, proto)] = ep
                if "h2load" in GENERATORS:
                    h2load(ep, 4, work, seconds=2)  # warm-up, not reported
            if "ghz" in GENERATORS:
                ghz(f"127.0.0.1:{server.grpc}", 4, ghz_bin, 4)  # warm-up (own connections)

        # Each point on every server in turn, so that load from other processes on a shared
        # machine falls on all of them alike rather than on whichever server runs then; all
        # points once per round, so that a burst of it spoils one round of a point.
        rounds: dict[tuple[str, str, int], list[Figures]] = {}
        refs: dict[tuple[str, str, int], Figures] = {}
        for round_ in range(1, ROUNDS + 1):
            for conc in CONCURRENCY:
                for proto in PROTOCOLS:
                    for server in servers:
                        if (server.name, proto) not in endpoints or (
                            proto == GRPC_PER_CONNECTION and conc == 1
                        ):
                            continue
                        ep = endpoints[(server.name, proto)]
                        point = (server.name, proto, conc)
                        label = f"{server.name}: {proto} c={conc}"
                        if "h2load" in GENERATORS:
                            rounds.setdefault(point, []).append(
                                measure(
                                    server,
                                    f"{label} h2load #{round_}",
                                    partial(h2load, ep, conc, work),
                                )
                            )
                        if round_ > 1:
                            continue  # the reference generators run once
                        if ep.h1 and "wrk" in GENERATORS:
                            load = partial(wrk, ep.url, rest_bodies[proto], conc, work)
                            refs[point] = measure(server, f"{label} wrk", load)
                        elif not ep.h1 and "ghz" in GENERATORS:
                            connections = 1 if ep.multiplexed else conc
                            load = partial(
                                ghz, f"127.0.0.1:{server.grpc}", conc, ghz_bin, connections
                            )
                            refs[point] = measure(server, f"{label} ghz", load)
        for conc in CONCURRENCY:
            if "h2load" in GENERATORS and (OURS, "V2 REST") in endpoints and PAIRS[conc] > 0:
                print(f"{OURS}: V2 REST and V2 gRPC at c={conc} in pairs back to back", flush=True)
                pairs[conc] = compare_in_pairs(
                    endpoints[(OURS, "V2 REST")], endpoints[(OURS, "V2 gRPC")], conc, work
                )
        for name, proto, conc in {*rounds, *refs}:
            point = (name, proto, conc)
            median = median_round(rounds.get(point, []))
            rows.append(Row(name, proto, conc, median, refs.get(point)))
        for server in servers:
            summary[server.name] = (rss_kib(server.proc.pid) / 1024, server.cold_start)
    finally:
        for server in servers:
            server.stop()
    order = [server.name for server in servers]
    rows.sort(key=lambda r: (order.index(r.server), r.conc, PROTOCOLS.index(r.protocol)))

    print_table(rows, summary)
    if "h2load" in GENERATORS:
        print_targets(rows, summary, pairs)
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
