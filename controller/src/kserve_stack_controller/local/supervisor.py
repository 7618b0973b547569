"""Start processes, prefix their log lines, restart each on a crash with backoff, stop them
all on SIGINT / SIGTERM or when one of them gives up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO

from kserve_stack_controller.local.plan import ProcessSpec

#: One line at a time on the shared output, whichever process or thread writes it.
_WRITE = threading.Lock()


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 30.0
    max_restarts: int = 5

    def delay(self, restart: int) -> float:
        return float(min(self.maximum, self.initial * 2 ** (restart - 1)))


def _write(out: IO[str], text: str) -> None:
    with _WRITE:
        out.write(text)
        out.flush()


def _pump(stream: IO[str], prefix: str, out: IO[str]) -> None:
    for line in stream:
        _write(out, f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")


class Supervisor:
    """One process: started, restarted with backoff after a crash, stopped when
    ``stopping`` is set (an event the supervisors of one service share)."""

    def __init__(
        self,
        spec: ProcessSpec,
        backoff: Backoff | None = None,
        out: IO[str] | None = None,
        on_start: Callable[[subprocess.Popen[str]], None] | None = None,
        stopping: threading.Event | None = None,
    ) -> None:
        self.spec = spec
        self.backoff = backoff or Backoff()
        self.out = out or sys.stdout
        self.on_start = on_start
        self.stopping = stopping or threading.Event()
        self.process: subprocess.Popen[str] | None = None
        self.restarts = 0

    def say(self, message: str) -> None:
        _write(self.out, f"[kserve-stack] {message}\n")

    def _start(self) -> subprocess.Popen[str]:
        env = {**os.environ, **self.spec.env}
        process = subprocess.Popen(
            self.spec.argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            text=True, bufsize=1, start_new_session=True,
        )  # fmt: skip
        assert process.stdout is not None
        self._pump_thread = threading.Thread(
            target=_pump, args=(process.stdout, f"[{self.spec.name}]", self.out), daemon=True
        )
        self._pump_thread.start()  # fmt: skip
        self.say(f"started {self.spec.name} (pid {process.pid}): {' '.join(self.spec.argv)}")
        if self.on_start:
            self.on_start(process)
        return process

    def _reap(self, process: subprocess.Popen[str]) -> None:
        self._pump_thread.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()

    def _terminate(self, process: subprocess.Popen[str]) -> None:
        if process.poll() is None:
            process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def stop(self, _signum: int | None = None, _frame: object = None) -> None:
        self.stopping.set()

    def run(self) -> int:
        """Supervise until stopped (0) or the restarts run out (1)."""
        while True:
            self.process = self._start()
            while self.process.poll() is None and not self.stopping.is_set():
                self.stopping.wait(0.2)
            if self.stopping.is_set():
                self._terminate(self.process)
                self._reap(self.process)
                self.say(f"stopped {self.spec.name}")
                return 0
            self._reap(self.process)
            code = self.process.returncode
            if self.restarts >= self.backoff.max_restarts:
                self.say(f"{self.spec.name} exited with {code}; gave up after "
                         f"{self.restarts} restarts")  # fmt: skip
                return 1
            self.restarts += 1
            delay = self.backoff.delay(self.restarts)
            self.say(f"{self.spec.name} exited with {code}; restart {self.restarts}/"
                     f"{self.backoff.max_restarts} in {delay:.0f}s")  # fmt: skip
            if self.stopping.wait(delay):
                self.say(f"stopped {self.spec.name}")
                return 0


def supervise(supervisors: Sequence[Supervisor]) -> int:
    """Run the supervisors (sharing one ``stopping`` event) until SIGINT / SIGTERM (0), or
    until one gives up, which stops the others too (1)."""
    stopping = supervisors[0].stopping
    assert all(s.stopping is stopping for s in supervisors)
    codes: list[int] = []

    def body(supervisor: Supervisor) -> None:
        code = supervisor.run()
        codes.append(code)
        if code != 0 and not stopping.is_set():
            others = [s.spec.name for s in supervisors if s is not supervisor]
            if others:
                supervisor.say(f"stopping {', '.join(others)}: {supervisor.spec.name} is down")
            stopping.set()

    handlers = {
        sig: signal.signal(sig, supervisors[0].stop) for sig in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        threads = [threading.Thread(target=body, args=(s,), name=s.spec.name) for s in supervisors]
        for thread in threads:
            thread.start()
        # Joined with a timeout so that this (main) thread keeps handling signals.
        for thread in threads:
            while thread.is_alive():
                thread.join(0.2)
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
    return max(codes)
