"""Runs the availability probe inside the overlay network and brings its log back (`tests/scripts/validate_zero_downtime`).

`ProbeRun` starts labkit/probe.py in a container attached to the service's network on the
manager's engine (the lab's base image has python3; the probe's source is passed as `python3 -c`,
so nothing needs mounting and any engine works), streams the per-request records back as they
happen (the baseline watches them live), and returns the probe's own summary at the end.
`tests/scripts/validate_zero_downtime` is `main()`.
"""
from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sgcommon.engine import EngineError, connect, translate
from labkit import labinfo
from labkit.probe import Record, summarize
from sgcommon.version import add_version_argument

PROBE_SOURCE = Path(__file__).with_name("probe.py")
PROBE_LABEL = "org.swarmguard.probe"


class ProbeRun:
    """One probe container; `records` grows while it runs, `finish()` returns the summary."""

    def __init__(
        self, docker_host: str, *, image: str, network: str, target: str,
        interval: float = 0.1, duration: float = 60.0, timeout: float = 1.0,
        on_record: Callable[[Record], None] | None = None,
    ) -> None:
        self._client = connect(docker_host, timeout=duration + 60)
        self._command = ["python3", "-u", "-c", PROBE_SOURCE.read_text(), "--target", target,
                         "--interval", str(interval), "--duration", str(duration), "--timeout", str(timeout)]
        self._image, self._network, self._on_record = image, network, on_record
        self._lock = threading.Lock()
        self._records: list[Record] = []
        self._summary: dict[str, Any] | None = None
        self._thread: threading.Thread | None = None
        self.container_id = ""

    @property
    def records(self) -> list[Record]:
        with self._lock:
            return list(self._records)

    def start(self) -> ProbeRun:
        with translate("start the probe container"):
            host_config = self._client.create_host_config(network_mode=self._network)
            created = self._client.create_container(
                self._image, command=self._command, host_config=host_config, labels={PROBE_LABEL: "1"},
            )
            self.container_id = created["Id"]
            self._client.start(self.container_id)
        self._thread = threading.Thread(target=self._read, name="probe-log", daemon=True)
        self._thread.start()
        return self

    def _read(self) -> None:
        buffer = b""
        with translate("probe log"):
            for chunk in self._client.logs(self.container_id, stream=True, follow=True, stderr=False):
                buffer += chunk
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    self._take(line)
        self._take(buffer)

    def _take(self, line: bytes) -> None:
        if not line.strip():
            return
        doc = json.loads(line)
        if "summary" in doc:
            self._summary = doc["summary"]
            return
        with self._lock:
            self._records.append(doc)
        if self._on_record:
            self._on_record(doc)

    def finish(self, *, stop: bool = False, timeout: float = 30.0) -> dict[str, Any]:
        """Waits for the probe to end (stops it first with `stop`); the summary; removes the container."""
        try:
            with translate("finish the probe"):
                if stop:
                    self._client.stop(self.container_id, timeout=5)
                status = self._client.wait(self.container_id, timeout=timeout)
                if self._thread:
                    self._thread.join(timeout=10)
                if status.get("StatusCode", 1) != 0:
                    err = self._client.logs(self.container_id, stdout=False, stderr=True).decode()[-2000:]
                    raise EngineError(f"the probe exited with {status.get('StatusCode')}: {err.strip()}")
        finally:
            self.remove()
        return self._summary if self._summary is not None else summarize(self.records)

    def remove(self) -> None:
        """Removes the container (if still there) and closes the connection."""
        try:
            if self.container_id:
                with translate("remove the probe container"):
                    self._client.remove_container(self.container_id, force=True)
                self.container_id = ""
        finally:
            self._client.close()


def format_summary(summary: dict[str, Any]) -> str:
    lines = [
        f"requests        {summary['requests']}",
        f"failures        {summary['failures']}",
        f"total downtime  {summary['total_downtime']:.3f} s",
        f"longest gap     {summary['longest_gap']:.3f} s (between successful requests)",
        f"median latency  {summary['median_latency']} s, max {summary['max_latency']} s",
        f"addresses       {', '.join(f'{a} x{n}' for a, n in summary['addresses'].items()) or '-'}",
    ]
    for period in summary["downtime_periods"]:
        lines.append(f"  down {period['seconds']:.3f} s from {period['start']:.3f} ({period['failures']} failed)")
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="validate_zero_downtime",
        description="Probe a service from inside its overlay network; per-request JSON lines and a summary.",
    )
    add_version_argument(parser)
    parser.add_argument("--target", default="http://web-stress:8080/health", help="default %(default)s")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between requests (default %(default)s)")
    parser.add_argument("--duration", type=float, default=30.0, help="seconds (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=1.0, help="per-request timeout (default %(default)s)")
    parser.add_argument("--output", type=Path, help="per-request log, JSON lines (default results/zero_downtime-<time>.jsonl)")
    parser.add_argument("--docker-host", help="a manager's engine; default: the lab")
    parser.add_argument("--network", default=labinfo.NETWORK, help="overlay network (default %(default)s)")
    parser.add_argument("--image", default=labinfo.BASE_IMAGE, help="an image with python3 (default %(default)s)")
    parser.add_argument("--max-failures", type=int, help="exit 1 when more requests than this fail")
    args = parser.parse_args(argv)
    for name in ("interval", "duration", "timeout"):
        if getattr(args, name) <= 0:
            parser.error(f"--{name} must be > 0")
    if args.output is None:
        args.output = labinfo.REPO / "results" / f"zero_downtime-{time.strftime('%Y%m%dT%H%M%S')}.jsonl"
    return args


@labinfo.lab_tool("validate_zero_downtime")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = args.docker_host or labinfo.check_lab().host_socket
    args.output.parent.mkdir(parents=True, exist_ok=True)
    print(f"==> probing {args.target} every {args.interval} s for {args.duration} s "
          f"from inside {args.network}; log {args.output}", flush=True)
    with args.output.open("w") as log:
        def write(record: Record) -> None:
            log.write(json.dumps(record) + "\n")
            if not record["ok"]:
                print(f"    FAIL {record['ts']:.3f} {record['status'] or record['error']}", flush=True)

        run = ProbeRun(docker_host, image=args.image, network=args.network, target=args.target,
                       interval=args.interval, duration=args.duration, timeout=args.timeout,
                       on_record=write).start()
        try:
            summary = run.finish(timeout=args.duration + 30)
        except KeyboardInterrupt:
            summary = run.finish(stop=True)
        log.write(json.dumps({"summary": summary}) + "\n")
    print(format_summary(summary))
    if args.max_failures is not None and summary["failures"] > args.max_failures:
        print(f"validate_zero_downtime: {summary['failures']} failures > {args.max_failures}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
