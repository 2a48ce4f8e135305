"""The load generator of scenario 2 (tests/scripts/stress_scenario2, alpine_load_orchestrator): GET /api/data at a target request rate.

Classic load generators are curl loops on Alpine hosts. This is the same traffic with a rate that
is actually controlled: a linear ramp-up from 0 to `--rps`, a hold, a linear ramp-down to 0.
Requests are sent open-loop (on schedule, whatever the latency) by a bounded pool of threads; a
request that finds every thread busy is not sent and counts as `missed`, so an overloaded
generator shows up as a low achieved rate instead of hiding it. Every request resolves the
service name again and picks one of the answers (dnsrr returns every healthy task, so the load
spreads over the replicas as they come and go) and uses a new connection, like a curl loop.

Standard library only, and Python 3.8 or later (no builtin generics nor `X | Y` outside
annotations): it runs as `python3 -c` in a container attached to the overlay network
(labkit/scenario2.py) and over ssh on a real host, its source sent on stdin. Output on stdout, one
JSON object a line: each second {"second", "ts", "target_rps", "sent", "ok", "failed", "missed",
"latency_p50", "latency_max", "addresses", "errors"}, then {"summary": {...}}. SIGTERM ends the
run early, with the summary; so does the end of stdin with `--stop-on-eof` (over ssh, the
orchestrator closing its side, or going away: no generator outlives the run that started it).
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import queue
import random
import signal
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional, Tuple

# ok, address, latency, error kind (typing's forms: this line runs on the remote host's python3)
Result = Tuple[bool, Optional[str], float, Optional[str]]


@dataclass(frozen=True)
class Schedule:
    """Target rate over time: 0 -> rps over `ramp`, `hold` at rps, rps -> 0 over `ramp_down`."""

    rps: float
    ramp: float
    hold: float
    ramp_down: float

    @property
    def duration(self) -> float:
        return self.ramp + self.hold + self.ramp_down

    def rate(self, t: float) -> float:
        """Requests per second wanted at `t` seconds after the start."""
        if t < 0 or t >= self.duration:
            return 0.0
        if t < self.ramp:
            return self.rps * t / self.ramp
        if t < self.ramp + self.hold:
            return self.rps
        return self.rps * (self.duration - t) / self.ramp_down

    def due(self, t: float) -> float:
        """Requests due from the start to `t`: the integral of `rate` (the pacing's reference)."""
        t = min(max(t, 0.0), self.duration)
        up = min(t, self.ramp)
        total = self.rps * up * (up / self.ramp) / 2 if self.ramp > 0 else 0.0
        total += self.rps * min(max(t - self.ramp, 0.0), self.hold)
        down = min(max(t - self.ramp - self.hold, 0.0), self.ramp_down)
        if down > 0:
            total += self.rps * (down - down * (down / self.ramp_down) / 2)
        return total

    def total(self) -> float:
        return self.due(self.duration)


def split_rate(rps: float, generators: int) -> list[float]:
    """Each generator's share of the total rate (equal shares)."""
    if generators < 1:
        raise ValueError(f"generators: expected >= 1, got {generators}")
    return [rps / generators] * generators


def get_once(host: str, port: int, path: str, *, timeout: float, pick: Callable[[Sequence[str]], str] = random.choice) -> Result:
    """One GET: resolve `host` now, pick an address, new connection; never raises."""
    started = time.monotonic()
    address = None
    try:
        infos = socket.getaddrinfo(host, port, socket.AF_INET, socket.SOCK_STREAM)
        address = pick(sorted({str(info[4][0]) for info in infos}))
        conn = http.client.HTTPConnection(address, port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Host": host, "Connection": "close"})
            response = conn.getresponse()
            response.read()
            ok = 200 <= response.status < 300
            error = None if ok else f"HTTP {response.status}"
        finally:
            conn.close()
    except (OSError, http.client.HTTPException) as exc:
        ok, error = False, type(exc).__name__
    return ok, address, time.monotonic() - started, error


@dataclass
class Second:
    """What happened in one second of the run (requests counted in the second they were due)."""

    second: int
    target_rps: float
    sent: int = 0
    ok: int = 0
    failed: int = 0
    missed: int = 0
    latencies: list[float] = field(default_factory=list)
    addresses: dict[str, int] = field(default_factory=dict)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, result: Result) -> None:
        ok, address, latency, error = result
        if ok:
            self.ok += 1
            self.latencies.append(latency)
            if address:
                self.addresses[address] = self.addresses.get(address, 0) + 1
        else:
            self.failed += 1
            self.errors[error or "unknown"] = self.errors.get(error or "unknown", 0) + 1

    def line(self, started_at: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)
        return {
            "second": self.second, "ts": round(started_at + self.second, 3),
            "target_rps": round(self.target_rps, 2), "sent": self.sent, "ok": self.ok,
            "failed": self.failed, "missed": self.missed,
            "latency_p50": round(ordered[len(ordered) // 2], 4) if ordered else None,
            "latency_max": round(ordered[-1], 4) if ordered else None,
            "addresses": dict(sorted(self.addresses.items())), "errors": dict(sorted(self.errors.items())),
        }


def summarize(lines: Sequence[dict[str, Any]], schedule: Schedule) -> dict[str, Any]:
    """Totals, the achieved rate over the hold (whole seconds inside it), and the split by address."""
    hold_lines = [ln for ln in lines if schedule.ramp <= ln["second"] and ln["second"] + 1 <= schedule.ramp + schedule.hold]
    addresses: dict[str, int] = {}
    errors: dict[str, int] = {}
    for ln in lines:
        for key, n in ln["addresses"].items():
            addresses[key] = addresses.get(key, 0) + n
        for key, n in ln["errors"].items():
            errors[key] = errors.get(key, 0) + n
    sent = sum(ln["sent"] for ln in lines)
    return {
        "target_rps": schedule.rps, "ramp": schedule.ramp, "hold": schedule.hold, "ramp_down": schedule.ramp_down,
        "planned": round(schedule.total()), "sent": sent,
        "ok": sum(ln["ok"] for ln in lines), "failed": sum(ln["failed"] for ln in lines),
        "missed": sum(ln["missed"] for ln in lines),
        "hold_achieved_rps": round(sum(ln["ok"] + ln["failed"] for ln in hold_lines) / len(hold_lines), 2) if hold_lines else None,
        "peak_rps": max((ln["ok"] + ln["failed"] for ln in lines), default=0),
        "addresses": dict(sorted(addresses.items())), "errors": dict(sorted(errors.items())),
    }


class Generator:
    """Paces requests by `Schedule.due`, hands them to `workers` threads, reports each second."""

    def __init__(
        self, schedule: Schedule, request: Callable[[], Result], *, workers: int,
        emit: Callable[[dict[str, Any]], None], stopped: Callable[[], bool],
        clock: Callable[[], float] = time.monotonic, wall: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep, tick: float = 0.005,
    ) -> None:
        self.schedule, self._request, self._workers = schedule, request, workers
        self._emit, self._stopped = emit, stopped
        self._clock, self._wall, self._sleep, self._tick = clock, wall, sleep, tick
        self._lock = threading.Lock()
        self._seconds: dict[int, Second] = {}
        self._jobs: queue.Queue[int | None] = queue.Queue()
        self._idle = workers
        self._next = 0  # the next second to emit
        self.lines: list[dict[str, Any]] = []

    def quiet(self) -> bool:
        """No request queued or in flight (tests with a fake clock wait for this between ticks)."""
        with self._lock:
            return self._idle == self._workers and self._jobs.empty()

    def _second(self, n: int) -> Second:
        if n not in self._seconds:
            self._seconds[n] = Second(second=n, target_rps=self.schedule.rate(n + 0.5))
        return self._seconds[n]

    def _work(self) -> None:
        while (n := self._jobs.get()) is not None:
            result = self._request()
            with self._lock:
                self._second(n).add(result)
                self._idle += 1

    def _dispatch(self, n: int) -> None:
        """One due request in second `n`: to an idle worker, else counted as missed."""
        with self._lock:
            if self._idle == 0:
                self._second(n).missed += 1
                return
            self._idle -= 1
            self._second(n).sent += 1
        self._jobs.put(n)

    def _flush(self, upto: int, started_at: float, *, final: bool = False) -> None:
        """Emits, in order, each second before `upto` whose requests have all finished (all of them if final)."""
        with self._lock:
            while self._next < upto:
                current = self._second(self._next)
                if not final and current.sent > current.ok + current.failed:
                    break
                del self._seconds[self._next]
                line = current.line(started_at)
                self.lines.append(line)
                self._emit(line)
                self._next += 1

    def run(self) -> list[dict[str, Any]]:
        threads = [threading.Thread(target=self._work, name=f"load-{i}", daemon=True) for i in range(self._workers)]
        for thread in threads:
            thread.start()
        start, started_at = self._clock(), self._wall()
        sent = 0
        elapsed = 0.0
        while not self._stopped():
            elapsed = self._clock() - start
            done = elapsed >= self.schedule.duration
            for _ in range(int(self.schedule.due(elapsed) + 1e-6) - sent):
                self._dispatch(min(int(elapsed), math.ceil(self.schedule.duration) - 1))
                sent += 1
            if done:
                break
            self._flush(int(elapsed), started_at)
            self._sleep(self._tick)
        for _ in threads:
            self._jobs.put(None)
        for thread in threads:
            thread.join(timeout=30)
        self._flush(math.ceil(min(elapsed, self.schedule.duration)), started_at, final=True)
        return self.lines


def stop_at_eof(fd: int, stop: Callable[[], None]) -> threading.Thread:
    """Calls `stop` once the file descriptor `fd` reaches its end (what it carries is ignored).

    Read with os.read in a daemon thread: a thread blocked in sys.stdin's buffered reader holds
    its lock, and the interpreter then aborts at exit ("could not acquire lock ... at interpreter
    shutdown")."""

    def watch() -> None:
        try:
            while os.read(fd, 4096):
                pass
        except OSError:
            pass
        stop()

    thread = threading.Thread(target=watch, name="stop-at-eof", daemon=True)
    thread.start()
    return thread


def parse_target(target: str) -> tuple[str, int, str]:
    url = urllib.parse.urlsplit(target)
    return url.hostname or "", url.port or 80, (url.path or "/") + (f"?{url.query}" if url.query else "")


def add_schedule_args(parser: argparse.ArgumentParser, *,
                      rps_help: str = "target requests per second at the hold (default %(default)s)") -> None:
    """The load options, shared with the scenario-2 scripts (stress_scenario2: --rps may be left out)."""
    parser.add_argument("--target", default="http://web-stress:8080/api/data", help="URL (default %(default)s)")
    parser.add_argument("--rps", type=float, default=50.0, help=rps_help)
    parser.add_argument("--ramp-time", type=float, default=30.0, help="seconds from 0 to --rps (default %(default)s)")
    parser.add_argument("--hold-time", type=float, default=120.0, help="seconds at --rps (default %(default)s)")
    parser.add_argument("--ramp-down-time", type=float, default=30.0, help="seconds from --rps to 0 (default %(default)s)")


def check_schedule_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not args.target.startswith("http://"):
        parser.error("--target must be an http:// URL")
    if args.rps is not None and (not math.isfinite(args.rps) or args.rps <= 0):
        parser.error("--rps must be > 0")
    for name in ("ramp_time", "hold_time", "ramp_down_time"):
        value = getattr(args, name)
        if not math.isfinite(value) or value < 0:
            parser.error(f"--{name.replace('_', '-')} must be >= 0")
    if args.ramp_time + args.hold_time + args.ramp_down_time <= 0:
        parser.error("the run is empty: ramp, hold and ramp-down are all 0")


def parse_args(argv: Iterable[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="loadgen", description=__doc__.split("\n")[0])
    add_schedule_args(parser)
    parser.add_argument("--workers", type=int, default=16, help="requests in flight at most (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=2.0, help="per-request timeout, s (default %(default)s)")
    parser.add_argument("--stop-on-eof", action="store_true",
                        help="stop early, with the summary, when stdin ends (how the orchestrator stops it over ssh)")
    args = parser.parse_args(list(argv) if argv is not None else None)
    check_schedule_args(parser, args)
    if args.workers < 1:
        parser.error("--workers must be >= 1")
    if args.timeout <= 0:
        parser.error("--timeout must be > 0")
    return args


def main(argv: Iterable[str] | None = None) -> int:
    args = parse_args(argv)
    stop = {"now": False}
    signal.signal(signal.SIGTERM, lambda *_: stop.update(now=True))
    if args.stop_on_eof:
        stop_at_eof(sys.stdin.fileno(), lambda: stop.update(now=True))
    host, port, path = parse_target(args.target)
    schedule = Schedule(rps=args.rps, ramp=args.ramp_time, hold=args.hold_time, ramp_down=args.ramp_down_time)

    def emit(line: dict[str, Any]) -> None:
        print(json.dumps(line), flush=True)

    generator = Generator(schedule, lambda: get_once(host, port, path, timeout=args.timeout),
                          workers=args.workers, emit=emit, stopped=lambda: stop["now"])
    lines = generator.run()
    print(json.dumps({"summary": summarize(lines, schedule)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
