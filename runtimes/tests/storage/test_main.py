"""The kserve-stack-storage-initializer command, run as a subprocess."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from kserve_stack_runtimes.storage.__main__ import build_parser

CMD = [sys.executable, "-m", "kserve_stack_runtimes.storage"]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CMD, *args],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **(env or {})},
    )


def test_help_explains_every_flag() -> None:
    out = run("--help")
    assert out.returncode == 0
    for action in build_parser()._actions:
        for flag in action.option_strings:
            assert flag in out.stdout
        assert action.help, action.dest
    for scheme in ("s3://", "gs://", "http(s)://", "hf://", "pvc://", "file://"):
        assert scheme in out.stdout


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["only-one"], id="odd-count"),
        pytest.param(["--retries", "0", "a", "b"], id="bad-retries"),
    ],
)
def test_usage_errors_exit_2(args: list[str]) -> None:
    assert run(*args).returncode == 2


def test_pairs_from_s3_env_and_local(moto_s3: Any, tmp_path: Path) -> None:
    moto_s3.put("m/model.bin", b"from s3")
    (tmp_path / "local.txt").write_text("local")
    env = {
        "S3_ENDPOINT": moto_s3.endpoint.removeprefix("http://"),
        "S3_USE_HTTPS": "0",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
    }
    out = run(
        f"s3://{moto_s3.bucket}/m",
        str(tmp_path / "a"),
        str(tmp_path / "local.txt"),
        str(tmp_path / "b"),
        env=env,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "a" / "model.bin").read_bytes() == b"from s3"
    assert (tmp_path / "b" / "local.txt").read_text() == "local"
    assert "done s3://" in out.stderr


def test_failure_is_one_clear_line(http_files: Any, tmp_path: Path) -> None:
    url = http_files.add("/gone.bin", b"", status=404)
    out = run(url, str(tmp_path / "m"), "--retries", "1")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if " ERROR " in line]
    assert len(errors) == 1
    assert url in errors[0] and "HTTP 404" in errors[0]
    assert "Traceback" not in out.stderr
    assert list(tmp_path.iterdir()) == []


def test_sigterm_removes_the_partial_download(http_files: Any, tmp_path: Path) -> None:
    url = http_files.add("/slow.bin", b"s" * 200 * 1024, delay_per_chunk=0.05)
    proc = subprocess.Popen([*CMD, url, str(tmp_path / "m")], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 30
    while http_files.count("GET", "/slow.bin") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    assert any(p.name.startswith(".m.tmp-") for p in tmp_path.iterdir())
    proc.send_signal(signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143, stderr
    assert list(tmp_path.iterdir()) == []
