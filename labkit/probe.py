"""The availability probe: one HTTP request every `interval` seconds, for a bounded time.

It runs INSIDE the service's overlay network (labkit/zerodowntime.py starts it in a container
attached to swarmguard-net), so it sees what a client of the service sees: the name is resolved
again for every request (with dnsrr each lookup returns the tasks' addresses; a task that is gone
or not yet healthy is not among them). Standard library only: the container has python3 and
nothing else, and this file is passed to it as `python3 -c`.

Output on stdout, one JSON object a line: every request as {"ts", "ok", "status", "latency",
"address", "error"}, then {"summary": {...}} (see `summarize`). SIGTERM ends the run early, with
the summary.
"""
from __future__ import annotations

import argparse
import http.client
import json
import signal
import socket
import sys
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from itertools import pairwise
from typing import Any

Record = dict[str, Any]


def probe_once(host: str, port: int, path: str, *, timeout: float) -> Record:
    """One request: resolve `host` now, GET `path` from the first address; never raises."""
    started = time.time()
    record: Record = {"ts": round(started, 4), "ok": False, "status": None, "latency": None,
                      "address": None, "error": None}
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        address = infos[0][4][0]
        record["address"] = address
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host, "Connection": "close"})
            response = conn.getresponse()
            response.read()
            record["status"] = response.status
            record["ok"] = 200 <= response.status < 300
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        record["error"] = f"{type(exc).__name__}: {exc}"
    record["latency"] = round(time.time() - started, 4)
    return record


def downtime_periods(records: Sequence[Record]) -> list[dict[str, float]]:
    """Runs of failed requests: from the first failure to the next success (or the last failure's end)."""
    periods: list[dict[str, float]] = []
    current: dict[str, float] | None = None
    for record in records:
        if not record["ok"]:
            if current is None:
                current = {"start": record["ts"], "end": record["ts"], "failures": 0}
            current["failures"] += 1
            current["end"] = record["ts"] + (record["latency"] or 0.0)
        elif current is not None:
            current["end"] = record["ts"]
            periods.append(current)
            current = None
    if current is not None:
        periods.append(current)
    for period in periods:
        period["seconds"] = round(period["end"] - period["start"], 4)
    return periods


def summarize(records: Sequence[Record]) -> dict[str, Any]:
    """Requests, failures, longest gap between successes, total downtime, per-address counts."""
    ordered = sorted(records, key=lambda r: r["ts"])
    oks = [r["ts"] for r in ordered if r["ok"]]
    periods = downtime_periods(ordered)
    latencies = sorted(r["latency"] for r in ordered if r["ok"] and r["latency"] is not None)
    addresses: dict[str, int] = {}
    for record in ordered:
        if record["ok"] and record["address"]:
            addresses[record["address"]] = addresses.get(record["address"], 0) + 1
    return {
        "requests": len(ordered),
        "failures": len(ordered) - len(oks),
        "first_ts": ordered[0]["ts"] if ordered else None,
        "last_ts": ordered[-1]["ts"] if ordered else None,
        "longest_gap": round(max((b - a for a, b in pairwise(oks)), default=0.0), 4),
        "total_downtime": round(sum(p["seconds"] for p in periods), 4),
        "downtime_periods": periods,
        "max_latency": latencies[-1] if latencies else None,
        "median_latency": latencies[len(latencies) // 2] if latencies else None,
        "addresses": addresses,
    }


def run(
    target: str, *, interval: float, duration: float, timeout: float,
    emit: Callable[[Record], None], stopped: Callable[[], bool],
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
    request: Callable[..., Record] = probe_once,
) -> list[Record]:
    """Probes `target` at a fixed rate (no catch-up burst after a slow request) until `duration`."""
    url = urllib.parse.urlsplit(target)
    host, port = url.hostname or "", url.port or 80
    path = (url.path or "/") + (f"?{url.query}" if url.query else "")
    records: list[Record] = []
    start = clock()
    tick = 0
    while not stopped() and clock() - start < duration:
        record = request(host, port, path, timeout=timeout)
        records.append(record)
        emit(record)
        tick = max(tick + 1, int((clock() - start) / interval) + 1)
        wait = start + tick * interval - clock()
        if wait > 0:
            sleep(wait)
    return records


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="probe", description=__doc__.split("\n")[0])
    parser.add_argument("--target", default="http://web-stress:8080/health", help="URL (default %(default)s)")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between requests (default %(default)s)")
    parser.add_argument("--duration", type=float, default=60.0, help="seconds to run (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per-request timeout (default %(default)s)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    if not args.target.startswith("http://"):
        parser.error("--target must be an http:// URL")
    for name in ("interval", "duration", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))

    def emit(record: Record) -> None:
        print(json.dumps(record), flush=True)

    records = run(args.target, interval=args.interval, duration=args.duration, timeout=args.timeout,
                  emit=emit, stopped=lambda: stop["now"])
    print(json.dumps({"summary": summarize(records)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
