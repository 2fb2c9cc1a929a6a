"""`footfit serve` as its own process for the tests and benchmarks: started on a free loopback port with the given
environment (its database, its settings), waited for until it answers, stopped with SIGTERM or killed with -9."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time

import httpx

from testing.net import free_port

START_TIMEOUT_S = 60


class ServiceProcess:
    def __init__(self, env: dict[str, str], *serve_args: str):
        self.port = free_port()
        self._log = tempfile.TemporaryFile("w+")  # its stderr: a pipe nobody reads would fill and stall it
        self.url = f"http://127.0.0.1:{self.port}"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "cli.main", "serve", "--host", "127.0.0.1", "--port", str(self.port), *serve_args],
            env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=self._log)
        self.schema = self._wait_until_it_answers()

    @property
    def pid(self) -> int:
        return self.process.pid

    def _wait_until_it_answers(self) -> dict:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"footfit serve exited: {self.stderr()[-2000:]}")
            try:
                return httpx.get(f"{self.url}/openapi.json", timeout=2).json()
            except httpx.TransportError:
                time.sleep(0.2)
        self.kill()
        raise AssertionError(f"footfit serve did not answer on {self.url} within {START_TIMEOUT_S} s")

    def signal(self, number: int) -> None:
        self.process.send_signal(number)

    def kill(self) -> None:
        """kill -9: no shutdown, no cleanup, as when a machine dies."""
        self.process.kill()
        self.process.wait(timeout=20)

    def stop(self) -> str:
        """SIGTERM, as an operator stops it; what it wrote to stderr."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=30)
        return self.stderr()

    def stderr(self) -> str:
        self._log.seek(0)
        return self._log.read()
