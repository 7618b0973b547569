"""Benchmark: our model server vs KServe's (PyPI kserve) vs MLServer on one scikit-learn model.

Same model file, same machine, one worker process each (MLServer: parallel_workers=0, since
its worker pool crashes here), same load generators: wrk (Lua POST script) for REST, ghz for
gRPC. Reports requests/s and p50/p99 latency at concurrency 1 and 32 for V1 REST, V2 REST and
V2 gRPC, the CPU time per request of the server (user + system, its whole process tree, from
/proc) and of the load generator (getrusage of the finished wrk/ghz), the server's RSS after the
load, and cold start (process start to /v2/models/iris/ready answering 200). Run through
`make bench-runtimes`.

Both load generators hold the same number of connections: wrk opens one per concurrent request,
and ghz gets `--connections` equal to the concurrency too (its default is one connection that
all calls share; `BENCH_GHZ_CONNECTIONS=1` measures that way). `BENCH_SERVERS=ours` (or a
comma-separated subset of ours,kserve,mlserver) benchmarks fewer servers; `BENCH_DURATION` sets
the seconds per point (10).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import httpx
import joblib
import numpy as np
from sklearn.linear_model import LogisticRegression

REPO = Path(__file__).resolve().parents[2]
BENCH = REPO / ".bench"
DURATION = int(os.environ.get("BENCH_DURATION", "10"))
CONCURRENCY = (1, 32)
#: ghz connections: 0 (default) holds one per concurrent call, as wrk does.
GHZ_CONNECTIONS = int(os.environ.get("BENCH_GHZ_CONNECTIONS", "0"))
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
    pids = [pid]
    while pids:
        p = pids.pop()
        try:
            status = Path(f"/proc/{p}/status").read_text()
            total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
            pids.extend(int(c) for c in children)
        except (FileNotFoundError, AttributeError, ProcessLookupError):
            pass
    return total


class Server:
    def __init__(
        self, name: str, cmd: list[str], ports: tuple[int, int], cwd: Path, *, v1: bool
    ) -> None:
        http, grpc = ports
        self.name, self.http, self.grpc, self.v1 = name, http, grpc, v1
        self.log = open(cwd / f"{name.split(maxsplit=1)[0].lower()}.log", "wb")  # noqa: SIM115
        t0 = time.perf_counter()
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, cwd=cwd)
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
        self.proc.terminate()
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


def wrk(
    url: str, body: str, conc: int, work: Path, seconds: int = DURATION
) -> tuple[float, float, float, int]:
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
    return rps, float(p50_us) / 1e3, float(p99_us) / 1e3, int(requests)


def ghz(target: str, conc: int, ghz_bin: str) -> tuple[float, float, float, int]:
    out = subprocess.run(
        [
            ghz_bin, "--insecure", "--proto", str(REPO / "runtimes/proto/grpc_predict_v2.proto"),
            "--call", "inference.GRPCInferenceService/ModelInfer", "-d", GRPC_DATA,
            "-c", str(conc), "-z", f"{DURATION}s", "--connections", str(GHZ_CONNECTIONS or conc),
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
    return doc["rps"], pct[50], pct[99], int(doc["count"])


Row = tuple[str, str, int, float, float, float, float, float]


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def measure(
    server: Server, protocol: str, conc: int, load: Callable[[], tuple[float, float, float, int]]
) -> Row:
    """Run one load point; adds the CPU time per completed request of the server and of the
    load generator (wrk or ghz: on a small machine both share the cores, and at concurrency 1
    the client's time per call adds to every round trip)."""
    cpu0, client0 = cpu_seconds(server.proc.pid), _children_cpu()
    rps, p50, p99, count = load()
    n = max(count, 1)
    cpu_ms = (cpu_seconds(server.proc.pid) - cpu0) * 1e3 / n
    client_ms = (_children_cpu() - client0) * 1e3 / n
    print(
        f"  {protocol:8} c={conc:<3} {rps:9.0f} req/s  p50 {p50:7.2f} ms  "
        f"p99 {p99:7.2f} ms  CPU ms/req: server {cpu_ms:.3f}, load generator {client_ms:.3f}",
        flush=True,
    )
    return (server.name, protocol, conc, rps, p50, p99, cpu_ms, client_ms)


def main() -> None:
    ghz_bin = shutil.which("ghz") or str(Path.home() / "go" / "bin" / "ghz")
    if not Path(ghz_bin).exists():
        raise SystemExit("ghz not found: go install github.com/bojand/ghz/cmd/ghz@v0.93.0")
    if not shutil.which("wrk"):
        raise SystemExit("wrk not found: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="bench-runtimes-"))
    model = train(work)
    servers = []

    def ours() -> Server:
        h, g = free_port(), free_port()
        cmd = [
            sys.executable, "-m", "kserve_stack_runtimes.sklearn", "--model_name=iris",
            f"--model_dir={model.parent}", f"--http_port={h}", f"--grpc_port={g}", "--workers=1",
        ]  # fmt: skip
        return Server("kserve-stack (ours)", cmd, (h, g), work, v1=True)

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
    makers = {"ours": ours, "kserve": kserve, "mlserver": mlserver}
    chosen = os.environ.get("BENCH_SERVERS", ",".join(makers)).split(",")
    for key in chosen:
        if key not in makers:
            raise SystemExit(f"BENCH_SERVERS: unknown server {key!r}; pick from {list(makers)}")
    for make in (makers[k] for k in chosen):
        server = make()
        servers.append(server)
        print(f"{server.name}: ready in {server.cold_start:.2f} s", flush=True)
        base = f"http://127.0.0.1:{server.http}"
        grpc_target = f"127.0.0.1:{server.grpc}"
        wrk(f"{base}/v2/models/iris/infer", V2_BODY, 4, work, seconds=2)  # warm-up, not reported
        ghz(grpc_target, 4, ghz_bin)  # warm-up, not reported

        for conc in CONCURRENCY:
            if server.v1:
                v1 = partial(wrk, f"{base}/v1/models/iris:predict", V1_BODY, conc, work)
                rows.append(measure(server, "V1 REST", conc, v1))
            v2 = partial(wrk, f"{base}/v2/models/iris/infer", V2_BODY, conc, work)
            rows.append(measure(server, "V2 REST", conc, v2))
            rows.append(measure(server, "V2 gRPC", conc, partial(ghz, grpc_target, conc, ghz_bin)))
        summary[server.name] = (rss_kib(server.proc.pid) / 1024, server.cold_start)
        server.stop()

    print()
    print(
        f"{'server':22} {'protocol':9} {'conc':>4} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'srv CPU ms':>10} {'gen CPU ms':>10}"
    )
    for name, proto, conc, rps, p50, p99, cpu_ms, client_ms in rows:
        print(
            f"{name:22} {proto:9} {conc:>4} {rps:>9.0f} {p50:>8.2f} {p99:>8.2f} "
            f"{cpu_ms:>10.3f} {client_ms:>10.3f}"
        )
    print()
    print(f"{'server':22} {'RSS MiB':>8} {'cold start s':>13}")
    for name, (rss, cold) in summary.items():
        print(f"{name:22} {rss:>8.1f} {cold:>13.2f}")
    print()
    by = {(n, p, c): (rps, p99) for n, p, c, rps, _, p99, _, _ in rows}
    ours_n, ks_n = "kserve-stack (ours)", "KServe 0.21.0"
    if (ours_n, "V2 gRPC", 32) in by:
        for conc in CONCURRENCY:
            g, r = by[(ours_n, "V2 gRPC", conc)], by[(ours_n, "V2 REST", conc)]
            print(
                f"target gRPC >= REST (ours, c={conc}): {g[0]:.0f} vs {r[0]:.0f} req/s, "
                f"p99 {g[1]:.2f} vs {r[1]:.2f} ms"
            )
    if ours_n not in summary or ks_n not in summary:
        shutil.rmtree(work, ignore_errors=True)
        return
    for proto in ("V1 REST", "V2 REST"):
        o, k = by[(ours_n, proto, 32)], by[(ks_n, proto, 32)]
        print(
            f"target {proto} c=32: req/s x{o[0] / k[0]:.2f} of KServe (want >= 2), "
            f"p99 {o[1] / k[1]:.2f} of KServe (want <= 0.5)"
        )
    print(
        f"target RSS/cold start vs KServe: {summary[ours_n][0]:.1f}/{summary[ks_n][0]:.1f} MiB, "
        f"{summary[ours_n][1]:.2f}/{summary[ks_n][1]:.2f} s"
    )
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
