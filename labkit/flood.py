"""An alert flood: valid alerts POSTed to the controller at a fixed rate, for the chaos case `alert-flood`.

It runs INSIDE the overlay network (labkit/chaos_cases.py starts it in a container attached to
swarmguard-net, as the exporters reach the controller) with the real bearer token, so the controller
sees what a storm of exporters would send. Standard library only: the container has python3 and
nothing else, and this file is passed to it as `python3 -c`.

Open loop: request k is due at start + k / rate whether or not earlier ones were answered; a pool of
keep-alive connections (asyncio, one request at a time per connection) sends them in order, so a
slow server makes requests wait in the queue, and each latency counts from the due time (no
coordinated omission). The alerts decide nothing: their service is not a Swarm service, their figures
are under every threshold. Output: one JSON line {"summary": {...}} (see `summarize`).
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import time
import urllib.parse
from collections.abc import Sequence
from typing import Any

SERVICE = "chaos-flood"  # no Swarm service has this name: no rule covers it
CONTAINERS = 50  # distinct fake containers the alerts rotate over (the controller keeps each for a while)


def alert_body(k: int, now: float) -> bytes:
    """A valid alert (sgcommon/alert.py's wire format) of fake container k % CONTAINERS, under every threshold."""
    cid = f"{0xC4A05F100D * 1000 + k % CONTAINERS:064x}"
    doc = {"t0": round(now - 0.001, 4), "t1": round(now, 4), "n": SERVICE, "c": cid, "s": SERVICE,
           "k": f"chaosflood{k % CONTAINERS:015d}",
           "m": {"cpu": 20.0, "mem": 20.0, "mem_mb": 10.0, "net": 1.0, "net_rx": 0.1, "net_tx": 0.1}}
    return json.dumps(doc, separators=(",", ":")).encode()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    """Status and headers of one HTTP/1.1 answer; its body is read (Content-Length) and dropped."""
    status_line = await reader.readline()
    if not status_line:
        raise ConnectionResetError("connection closed before an answer")
    parts = status_line.decode("latin-1").split()
    if len(parts) < 2 or not parts[1].isdigit():
        raise ValueError(f"not an HTTP status line: {status_line[:80]!r}")
    headers: dict[str, str] = {}
    while True:
        line = await reader.readline()
        if line in (b"\r\n", b"\n", b""):
            break
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    length = int(headers.get("content-length", "0") or 0)
    if length:
        await reader.readexactly(length)
    return int(parts[1]), headers


class Flood:
    def __init__(self, url: str, token: str, *, rate: float, duration: float, connections: int, timeout: float) -> None:
        parts = urllib.parse.urlsplit(url)
        self.host, self.port, self.path = parts.hostname or "controller", parts.port or 80, parts.path or "/alert"
        self.token, self.rate, self.duration = token, rate, duration
        self.connections, self.timeout = connections, timeout
        self.latencies: list[float] = []
        self.done_at: list[float] = []
        self.statuses: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.retry_after: dict[str, int] = {}
        self.sent = 0

    async def worker(self, address: str, queue: asyncio.Queue[tuple[int, float] | None]) -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        while (job := await queue.get()) is not None:
            k, due = job
            body = alert_body(k, time.time())
            head = (f"POST {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
                    f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n").encode()
            self.sent += 1
            try:
                if writer is None:
                    reader, writer = await asyncio.wait_for(asyncio.open_connection(address, self.port), self.timeout)
                assert reader is not None and writer is not None
                writer.write(head + body)
                status, headers = await asyncio.wait_for(read_response(reader), self.timeout)
                now = time.monotonic()
                self.latencies.append(now - due)
                self.done_at.append(now)
                self.statuses[str(status)] = self.statuses.get(str(status), 0) + 1
                if "retry-after" in headers:
                    self.retry_after[headers["retry-after"]] = self.retry_after.get(headers["retry-after"], 0) + 1
                if headers.get("connection", "").lower() == "close":
                    writer.close()
                    reader = writer = None
            except (OSError, TimeoutError, ValueError, asyncio.IncompleteReadError) as exc:
                name = type(exc).__name__
                self.errors[name] = self.errors.get(name, 0) + 1
                if writer is not None:
                    writer.close()
                writer = None
        if writer is not None:
            writer.close()

    async def run(self, drain: float) -> dict[str, Any]:
        address = str(socket.getaddrinfo(self.host, self.port, socket.AF_INET, socket.SOCK_STREAM)[0][4][0])
        queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
        workers = [asyncio.create_task(self.worker(address, queue)) for _ in range(self.connections)]
        count = int(self.rate * self.duration)
        began = time.monotonic()
        for k in range(count):
            due = began + k / self.rate
            pause = due - time.monotonic()
            if pause > 0:
                await asyncio.sleep(pause)
            queue.put_nowait((k, due))
        for _ in workers:
            queue.put_nowait(None)
        scheduled_end = time.monotonic()
        _, pending = await asyncio.wait(workers, timeout=drain)
        for task in pending:
            task.cancel()
        unsent = sum(1 for _ in range(queue.qsize()) if queue.get_nowait() is not None)
        return summarize(self, began=began, scheduled_end=scheduled_end, count=count, unsent=unsent, address=address)


def percentile(values: Sequence[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def summarize(flood: Flood, *, began: float, scheduled_end: float, count: int, unsent: int, address: str) -> dict[str, Any]:
    """What the flood saw: rates, answers by status, errors, latencies from the due time, per second."""
    answered = len(flood.latencies)
    last = max(flood.done_at, default=began)
    ok = sum(n for status, n in flood.statuses.items() if status.startswith("2"))
    per_second: dict[int, int] = {}
    for at in flood.done_at:
        per_second[int(at - began)] = per_second.get(int(at - began), 0) + 1

    def ms(value: float | None) -> float | None:
        return None if value is None else round(value * 1000, 1)

    return {
        "address": address, "rate": flood.rate, "duration": flood.duration, "connections": flood.connections,
        "scheduled": count, "sent": flood.sent, "unsent": unsent, "answered": answered, "accepted_2xx": ok,
        "statuses": flood.statuses, "errors": flood.errors, "retry_after": flood.retry_after,
        "send_seconds": round(scheduled_end - began, 3), "seconds_to_last_answer": round(last - began, 3),
        "answered_per_second": round(answered / max(last - began, 1e-9), 1),
        "accepted_per_second": round(ok / max(last - began, 1e-9), 1),
        "latency_ms": {"p50": ms(percentile(flood.latencies, 0.50)), "p90": ms(percentile(flood.latencies, 0.90)),
                       "p99": ms(percentile(flood.latencies, 0.99)), "max": ms(max(flood.latencies, default=None))},
        "answers_each_second": [per_second.get(s, 0) for s in range(int(last - began) + 1)],
    }


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Alert flood against the controller (token from $ALERT_TOKEN).")
    parser.add_argument("--url", default="http://controller:5000/alert")
    parser.add_argument("--rate", type=float, default=1000.0, help="alerts per second (default %(default)s)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of sending (default %(default)s)")
    parser.add_argument("--connections", type=int, default=64, help="keep-alive connections (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=10.0, help="per request (default %(default)s)")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds to wait for answers after the last send")
    args = parser.parse_args(argv)
    if args.rate <= 0 or args.duration <= 0 or args.connections < 1 or args.timeout <= 0:
        parser.error("--rate, --duration, --timeout must be > 0 and --connections >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    token = os.environ.get("ALERT_TOKEN", "")
    flood = Flood(args.url, token, rate=args.rate, duration=args.duration, connections=args.connections,
                  timeout=args.timeout)
    summary = asyncio.run(flood.run(args.drain))
    print(json.dumps({"summary": summary}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
