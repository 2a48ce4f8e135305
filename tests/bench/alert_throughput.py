"""Alert throughput of the real controller process on loopback: werkzeug's development server vs
the controller's own server (controller/httpserver.py, what `swarmguard-controller run` serves with;
waitress until docs/scale.md), side by side in one run.

Each server runs the same controller (`controller.__main__`'s settings, token and runtime, the real
default rules, a fake Docker Engine API with one opted-in service) in its own process. The bench
sends valid alerts with the real bearer token at fixed rates (open loop: a request is sent on
schedule whether or not the last one was answered, from a pool of keep-alive connections) and
prints, per rate, the achieved rate, latency p50/p99/max, 5xx answers and connection errors. An
alert here decides nothing (CPU 20 %), the common case. "Sustained" = achieved >= 95 % of the rate,
p99 < 100 ms, no 5xx, no error.

Run from the repo root: `.venv/bin/python -m tests.bench.alert_throughput [--rates 50,100,200,400] [--seconds 10]`.
The machine's cores are shared with the load generator: the figures are a floor, and a comparison.
"""
from __future__ import annotations

import argparse
import os
import queue
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import requests

from sgcommon.alert import Alert, encode_alert
from tests.fakes.engine import FakeEngine, service_spec
from tests.support import free_port

TOKEN = "bench-token-0123456789"
P99_LIMIT = 0.100
SERVERS = ("werkzeug", "controller")


def serve_with_werkzeug(argv: Sequence[str]) -> int:
    """`swarmguard-controller run` with werkzeug's threaded server: the same preparation and runtime."""
    from werkzeug.serving import make_server

    from controller import __main__ as cmain
    from controller.app import create_app
    from controller.runtime import build

    args = cmain.parser().parse_args(["run", *argv])
    prepared = cmain._prepare(args, None, sys.stderr)
    assert prepared is not None
    settings, alert_token, influx_token, thresholds = prepared
    runtime, config = build(settings, alert_token=alert_token, thresholds=thresholds, influx_token=influx_token)
    server = make_server(settings.listen, settings.port, create_app(config, runtime), threaded=True)
    cmain._on_signals(server.shutdown)
    runtime.start()
    try:
        server.serve_forever()
    finally:
        runtime.stop()
        server.server_close()
    return 0


def start(kind: str, engine_url: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    argv = ["--listen", "127.0.0.1", "--port", str(port), "--docker-url", engine_url, "--exporters", "127.0.0.1:1",
            "--rules", "rules", "--log-level", "WARNING"]
    cmd = ([sys.executable, "-m", "controller", "run", *argv] if kind == "controller"
           else [sys.executable, "-m", "tests.bench.alert_throughput", "--serve-werkzeug", *argv])
    proc = subprocess.Popen(cmd, env={**os.environ, "ALERT_TOKEN": TOKEN}, stdout=subprocess.DEVNULL,
                            stderr=log.open("wb"))
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                return proc
        except requests.ConnectionError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} controller did not answer /healthz; log in {log}")


def alert_body(i: int, node: str, container: str, task: str) -> bytes:
    now = time.time()
    return encode_alert(Alert(t0=now - 0.001, t1=now, node=node, container_id=container, service="web", task_id=task,
                              metrics={"cpu": 20.0, "mem": 20.0, "mem_mb": 10.0, "net": 1.0, "net_rx": 0.1, "net_tx": 0.1}))


def run_rate(url: str, rate: float, seconds: float, *, target: tuple[str, str, str], workers: int = 32) -> dict[str, Any]:
    """Sends rate x seconds alerts on schedule; latency counted from the scheduled send time."""
    jobs: queue.Queue[float | None] = queue.Queue()
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    errors: list[str] = []
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
        while (due := jobs.get()) is not None:
            body = alert_body(0, *target)
            try:
                answer = session.post(url, data=body, headers=headers, timeout=10)
                took = time.monotonic() - due
                with lock:
                    latencies.append(took)
                    statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
            except requests.RequestException as exc:
                with lock:
                    errors.append(type(exc).__name__)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for t in threads:
        t.start()
    count = int(rate * seconds)
    began = time.monotonic()
    for k in range(count):
        due = began + k / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        jobs.put(due)
    for _ in threads:
        jobs.put(None)
    for t in threads:
        t.join(timeout=60)
    elapsed = time.monotonic() - began
    ordered = sorted(latencies)
    p99 = ordered[min(len(ordered) - 1, int(0.99 * (len(ordered) - 1)))] if ordered else float("inf")
    served = sum(statuses.values())
    return {"rate": rate, "achieved": served / elapsed, "p50": statistics.median(ordered) if ordered else float("inf"),
            "p99": p99, "max": ordered[-1] if ordered else float("inf"),
            "5xx": sum(n for s, n in statuses.items() if s >= 500),
            "other": {s: n for s, n in statuses.items() if s not in (200, 202) and s < 500},
            "errors": len(errors)}


def sustained(row: dict[str, Any]) -> bool:
    return row["achieved"] >= 0.95 * row["rate"] and row["p99"] < P99_LIMIT and not row["5xx"] and not row["errors"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="50,100,200,400,800", help="alerts/s, comma-separated")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate")
    parser.add_argument("--serve-werkzeug", action="store_true", help=argparse.SUPPRESS)
    args, rest = parser.parse_known_args()
    if args.serve_werkzeug:
        sys.exit(serve_with_werkzeug(rest))
    rates = [float(r) for r in args.rates.split(",")]
    results: dict[str, list[dict[str, Any]]] = {}
    with FakeEngine("manager-1", workers=("worker-1",)) as engine:
        engine.create_service(service_spec("web", replicas=1, labels={"swarmguard.enable": "true"}))
        assert engine.wait_until(lambda: len(engine.running_tasks("web")) == 1)
        task_id, node = engine.running_tasks("web")[0]
        target = (node, engine.container_of(task_id) or "c" * 64, task_id)
        logs = Path("results")
        logs.mkdir(exist_ok=True)
        for kind in SERVERS:
            port = free_port()
            proc = start(kind, engine.base_url, port, logs / f"bench-throughput-{kind}.log")
            try:
                run_rate(f"http://127.0.0.1:{port}/alert", 20, 2, target=target)  # warm-up
                results[kind] = [run_rate(f"http://127.0.0.1:{port}/alert", r, args.seconds, target=target) for r in rates]
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(timeout=30)
            print(f"{kind}: exited {code} on SIGTERM", flush=True)
    print(f"\nalerts/s offered for {args.seconds:g} s each; latency from the scheduled send; "
          f"sustained = >= 95 % achieved, p99 < {P99_LIMIT * 1000:.0f} ms, no 5xx, no error")
    print(f"{'rate':>6} | " + " | ".join(f"{k:^44}" for k in SERVERS))
    print(f"{'':>6} | " + " | ".join(f"{'achieved  p50 ms  p99 ms  max ms  5xx err':^44}" for _ in SERVERS))
    for i, rate in enumerate(rates):
        cells = []
        for kind in SERVERS:
            r = results[kind][i]
            cells.append(f"{r['achieved']:7.1f} {r['p50'] * 1e3:7.2f} {r['p99'] * 1e3:7.2f} {r['max'] * 1e3:7.1f} "
                         f"{r['5xx']:4d} {r['errors']:3d}{' *' if sustained(r) else '  '}")
        print(f"{rate:6.0f} | " + " | ".join(f"{c:^44}" for c in cells))
    for kind in SERVERS:
        best = max((r["rate"] for r in results[kind] if sustained(r)), default=0)
        print(f"{kind}: highest sustained rate {best:g} alerts/s")


if __name__ == "__main__":
    main()
