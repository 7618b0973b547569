"""Start a process, prefix its log lines, restart it on a crash with backoff, stop it on
SIGINT / SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import IO

from kserve_stack_controller.local.plan import ProcessSpec


@dataclass
class Backoff:
    initial: float = 1.0
    maximum: float = 30.0
    max_restarts: int = 5

    def delay(self, restart: int) -> float:
        return float(min(self.maximum, self.initial * 2 ** (restart - 1)))


def _pump(stream: IO[str], prefix: str, out: IO[str]) -> None:
    for line in stream:
        out.write(f"{prefix} {line}" if line.endswith("\n") else f"{prefix} {line}\n")
        out.flush()


class Supervisor:
    def __init__(
        self,
        spec: ProcessSpec,
        backoff: Backoff | None = None,
        out: IO[str] | None = None,
        on_start: Callable[[subprocess.Popen[str]], None] | None = None,
    ) -> None:
        self.spec = spec
        self.backoff = backoff or Backoff()
        self.out = out or sys.stdout
        self.on_start = on_start
        self.stopping = threading.Event()
        self.process: subprocess.Popen[str] | None = None
        self.restarts = 0

    def say(self, message: str) -> None:
        self.out.write(f"[kserve-stack] {message}\n")
        self.out.flush()

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

    def stop(self, _signum: int | None = None, _frame: object = None) -> None:
        self.stopping.set()
        process = self.process
        if process is not None and process.poll() is None:
            process.terminate()

    def run(self) -> int:
        """Supervise until stopped (0) or the restarts run out (1)."""
        signal.signal(signal.SIGINT, self.stop)
        signal.signal(signal.SIGTERM, self.stop)
        while True:
            self.process = self._start()
            while self.process.poll() is None and not self.stopping.is_set():
                self.stopping.wait(0.2)
            if self.stopping.is_set():
                try:
                    self.process.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait()
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
            time.sleep(0)
