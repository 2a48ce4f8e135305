"""Real-process helpers for the stress app tests: start the app, poll it, read its /proc figures."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

from stressapp import procfs
from tests.support import OutputLines, logged_port

REPO = Path(__file__).resolve().parents[2]


def get_json(url: str, *, timeout: float = 5.0) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


class AppProcess:
    """The stress app in a subprocess on loopback; `stop()` sends SIGTERM and waits.

    The app binds port 0 and the port is read from its own "serving" log line: a port picked free
    beforehand and closed again could be taken by another test before the app binds it."""

    def __init__(self, *args: str, module: str = "stressapp", env: dict[str, str] | None = None, nice: int = 0) -> None:
        self.started = time.monotonic()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", module, "--port", "0", "--sink-port", "0", *args],
            cwd=REPO, env={**os.environ, **(env or {})}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            preexec_fn=(lambda: os.nice(nice)) if nice else None,
        )
        assert self.proc.stdout is not None
        self._output = OutputLines(self.proc.stdout)
        self._port: int | None = None

    @property
    def output(self) -> list[str]:
        return self._output.lines

    def wait_serving(self, timeout: float = 30.0) -> int:
        """The port the app listens on, once its server says so (up to `timeout` s)."""
        if self._port is None:
            self._port = self._output.wait_for(
                lambda line: logged_port(line, logger="swarmguard.stressapp.server", msg="serving"), timeout=timeout)
        if self._port is None:
            state = "running" if self.proc.poll() is None else f"exited with {self.proc.returncode}"
            raise AssertionError(f"the app ({state}) did not say which port it serves within {timeout} s: "
                                 f"{self._output.text()}")
        return self._port

    @property
    def port(self) -> int:
        return self.wait_serving()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_healthy(self, timeout: float = 10.0) -> float:
        """Seconds from the start of the process to the first 200 from /health."""
        deadline = time.monotonic() + timeout
        self.wait_serving(timeout)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"the app exited with {self.proc.returncode}: {''.join(self.output)}")
            try:
                if get_json(self.url + "/health", timeout=1.0)[0] == 200:
                    return time.monotonic() - self.started
            except (OSError, ValueError):
                pass
            time.sleep(0.02)
        raise AssertionError(f"the app did not answer /health within {timeout} s: {''.join(self.output)}")

    def get(self, path: str) -> tuple[int, Any]:
        return get_json(self.url + path)

    def cpu_seconds(self) -> float:
        return procfs.tree_cpu_seconds("/proc", self.proc.pid)

    def rss_mb(self) -> float:
        return procfs.tree_rss_bytes("/proc", self.proc.pid) / 2**20

    def stop(self, timeout: float = 15.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        self._output.join(timeout=2.0)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        return code


def cpu_percent_over(app: AppProcess, seconds: float, capacity: float) -> float:
    """The app's CPU use over `seconds`, from /proc, in % of `capacity` cores."""
    return cpu_and_idle_over(app, seconds, capacity)[0]


def machine_idle_seconds() -> float:
    """Idle plus iowait time of all CPUs since boot, from /proc/stat."""
    with open("/proc/stat") as fh:
        fields = fh.readline().split()
    return (int(fields[4]) + int(fields[5])) / procfs.CLOCK_TICKS


def cpu_and_idle_over(app: AppProcess, seconds: float, capacity: float) -> tuple[float, float]:
    """(the app's CPU use, the machine's idle CPU) over the same `seconds`, both in % of `capacity` cores.

    On a shared machine a shortfall with no idle CPU left is contention, not the app's fault.
    """
    c0, i0, t0 = app.cpu_seconds(), machine_idle_seconds(), time.monotonic()
    time.sleep(seconds)
    c1, i1, t1 = app.cpu_seconds(), machine_idle_seconds(), time.monotonic()
    per = (t1 - t0) * capacity / 100
    return (c1 - c0) / per, (i1 - i0) / per


class CountingSink:
    """A TCP server that counts the bytes it receives: an independent judge of network stress."""

    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0))
        self.port = self._server.getsockname()[1]
        self._lock = threading.Lock()
        self.received = 0
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                conn, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._drain, args=(conn,), daemon=True).start()

    def _drain(self, conn: socket.socket) -> None:
        with conn:
            while chunk := conn.recv(65536):
                with self._lock:
                    self.received += len(chunk)

    def count(self) -> int:
        with self._lock:
            return self.received

    def mbps_over(self, seconds: float) -> float:
        b0, t0 = self.count(), time.monotonic()
        time.sleep(seconds)
        b1, t1 = self.count(), time.monotonic()
        return (b1 - b0) * 8 / (t1 - t0) / 1e6

    def close(self) -> None:
        self._closed = True
        self._server.close()
