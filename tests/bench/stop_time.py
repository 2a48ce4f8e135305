"""How long the stress app takes from SIGTERM to exit: idle, and while a CPU + memory stress runs.

Swarm stops a migration's old task with SIGTERM (after its 2 s gossip wait); the app's stop is the
`exit` part of T5->T6 (docs/fast-recovery.md). This starts the real app in a subprocess (as
tests/stressapp does), waits until it serves, optionally starts a stress and lets it ramp, sends
SIGTERM and times the exit, `--runs` times per case; median, min and max in ms.
Run from the repo root: `.venv/bin/python -m tests.bench.stop_time [--runs 10]`.
"""
from __future__ import annotations

import argparse
import os
import signal
import statistics
import time
from collections.abc import Sequence

from tests.stressapp.helpers import AppProcess

CASES = {"idle": None, "cpu 50 % + memory 300 MB": "/stress/combined?cpu=50&memory=300&duration=60&ramp=1"}


def once(stress: str | None) -> float:
    app = AppProcess()
    try:
        app.wait_healthy()
        if stress:
            status, answer = app.get(stress)
            if status != 200:
                raise RuntimeError(f"the stress did not start: {answer}")
            time.sleep(2.0)
        started = time.monotonic()
        app.proc.send_signal(signal.SIGTERM)
        code = app.proc.wait(15)
        elapsed = time.monotonic() - started
        if code != 0:
            raise RuntimeError(f"the app exited {code}: {''.join(app.output)[-500:]}")
        return elapsed
    finally:
        app.stop()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="stop_time", description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args(argv)
    print(f"SIGTERM to exit, {args.runs} runs per case, load average {os.getloadavg()[0]:.2f}:")
    for name, stress in CASES.items():
        times = [once(stress) * 1000 for _ in range(args.runs)]
        print(f"  {name:26} median {statistics.median(times):6.1f} ms  min {min(times):6.1f}  max {max(times):6.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
