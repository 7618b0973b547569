"""Processes the e2e tests start on this machine: free loopback ports, and a probe that
tells when a process answers over HTTP (failing the test, with the process's log, when it
exited instead)."""

from __future__ import annotations

import socket
import subprocess
import urllib.request
from pathlib import Path


def free_ports(count: int) -> list[int]:
    """``count`` distinct free ports on 127.0.0.1 (all held open while they are picked)."""
    socks = [socket.socket() for _ in range(count)]
    try:
        for s in socks:
            s.bind(("127.0.0.1", 0))
        return [int(s.getsockname()[1]) for s in socks]
    finally:
        for s in socks:
            s.close()


def answers(process: subprocess.Popen[bytes], log: Path, url: str, what: str) -> bool:
    """Whether ``url`` answers 2xx; an AssertionError with the log's tail once ``process``
    (``what``) has exited."""
    assert process.poll() is None, f"{what} exited:\n" + log.read_text()[-3000:]
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(200 <= resp.status < 300)
    except OSError:
        return False
