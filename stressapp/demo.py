"""`python -m stressapp.demo`: the stress app started for real, driven through a ramped CPU stress.

Starts the app as a subprocess on a free loopback port, asks for 50 % CPU with a 3 s ramp held
for 10 s, and prints every second the planned level, what the app reports on /metrics and what
/proc says the app's processes used. Exits 0 only if the hold-period mean measured from /proc is
within 5 points of the target. Takes about 20 s.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from typing import Any

from stressapp import cgroup, procfs
from stressapp.ramp import Plan, level_at

TOLERANCE_POINTS = 5.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def _wait_healthy(url: str, proc: subprocess.Popen, timeout: float = 10.0) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with {proc.returncode}")
        try:
            _get(url + "/health")
            return time.monotonic() - started
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"the app did not answer /health within {timeout:g} s")


def _drive(url: str, pid: int, plan: Plan, capacity: float) -> list[float]:
    """Runs the plan, prints one line a second, returns the /proc figures of the hold period."""
    print(_get(f"{url}/stress/cpu?target={plan.target:g}&duration={plan.duration:g}&ramp={plan.ramp:g}"))
    started = time.monotonic()
    held: list[float] = []
    last_cpu, last_t = procfs.tree_cpu_seconds("/proc", pid), started
    print(f"{'t (s)':>6} {'planned %':>10} {'/metrics %':>11} {'/proc %':>8}   (planned: mid-second)")
    while (elapsed := time.monotonic() - started) < plan.end - 1.0:
        time.sleep(1.0 - (elapsed % 1.0))
        cpu, now = procfs.tree_cpu_seconds("/proc", pid), time.monotonic()
        measured = (cpu - last_cpu) / (now - last_t) / capacity * 100
        last_cpu, last_t = cpu, now
        planned = level_at(plan, now - started - 0.5) or 0.0
        reported = _get(url + "/metrics")["cpu_percent"]
        print(f"{now - started:6.1f} {planned:10.1f} {reported:11.1f} {measured:8.1f}")
        if now - started >= plan.ramp + 2.0:  # one window after the ramp for the controller to settle
            held.append(measured)
    return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Runs the stress app locally through a ramped CPU stress.")
    parser.add_argument("--target", type=float, default=50.0, help="CPU target in %% of the usable cores")
    parser.add_argument("--ramp", type=float, default=3.0, help="ramp in seconds")
    parser.add_argument("--duration", type=float, default=10.0, help="hold in seconds")
    args = parser.parse_args(argv)
    plan = Plan(target=args.target, duration=args.duration, ramp=args.ramp)
    capacity = cgroup.cpu_capacity(cgroup_root="/sys/fs/cgroup", proc_root="/proc", online_cpus=len(os.sched_getaffinity(0)))
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryFile("w+") as log:
        proc = subprocess.Popen([sys.executable, "-m", "stressapp", "--port", str(port), "--sink-port", "0"],
                                stdout=log, stderr=subprocess.STDOUT)
        try:
            print(f"stress app serving on {url} after {_wait_healthy(url, proc):.2f} s; CPU capacity {capacity:g} cores")
            held = _drive(url, proc.pid, plan, capacity)
            print(_get(url + "/stress/stop"))
        except (OSError, RuntimeError) as exc:
            print(f"demo failed: {exc}", file=sys.stderr)
            held = []
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(15)
        if not held or code != 0:
            log.seek(0)
            print(f"app exit code {code}; its log:\n{log.read()}", file=sys.stderr)
            return 1
    mean = sum(held) / len(held)
    ok = abs(mean - plan.target) <= TOLERANCE_POINTS
    print(f"held {len(held)} s at {mean:.1f} % (target {plan.target:g} % +/- {TOLERANCE_POINTS:g}): "
          f"{'OK' if ok else 'OUT OF TOLERANCE'}; app exited {code} on SIGTERM")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
