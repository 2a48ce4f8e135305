"""What a container's HEALTHCHECK costs, per probe command and interval, on a real lab node.

Every probe is an exec: the engine creates it, containerd's shim runs `runc exec`, a process
starts inside the container, the app answers it, and the engine records the result and three
events. So the cost is split over the container's own cgroup and the node's engine processes.
For each option this runs the stress app's image on one lab worker (0.5 CPU / 512M, as in the
stack), waits until it is healthy, then measures over an idle `--seconds`:

- container: the container's cgroup CPU (cpuacct.usage): the probe process and the app answering;
- engine: the node's dockerd and containerd and the container's shim, with the runc processes the
  shim reaped (utime + stime + cutime + cstime from /proc);
- probes: the engine's exec_die events for the container in that window.

"probe 0.1s" is swarm/health-probe as the image ships it (it must be in the image: `swarm/lab build`).

The option "none" (no health check) is the baseline; each option's cost is its excess over it, in %
of one core and in ms of CPU per probe. "start->healthy" is the container's start event to its
first healthy event, once per option (the probe interval bounds it from below).

Needs the lab, under the lab lock (docs/fast-recovery.md has the figures):
    .venv/bin/python -m tests.bench.healthcheck_cost [--node worker-3] [--seconds 60] [--options a,b]
"""
from __future__ import annotations

import argparse
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from labkit import labinfo
from sgcommon.engine import connect, translate

IMAGE = f"{labinfo.REGISTRY}/stressapp:latest"
TICK = os.sysconf("SC_CLK_TCK")
BASH = ("exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 "
        "&& read -r _ code _ <&3 && [ \"$code\" = 200 ]")
CURL = ["curl", "-fsS", "-o", "/dev/null", "-m", "1", "http://127.0.0.1:8080/health"]
PYTHON = ["python3", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=1)"]
# swarm/health-probe, as the image ships it: fast while the app starts, a 2 s sleep per probe after
PROBE = ["CMD", "health-probe", "8080", "/health"]
OPTIONS: dict[str, tuple[list[str], float, float]] = {  # name: (Healthcheck.Test, interval, timeout in s)
    "none": (["NONE"], 0.0, 0.0),
    "true 1s": (["CMD", "true"], 1.0, 1.0),
    "python3 1s": (["CMD", *PYTHON], 1.0, 1.0),
    "curl 1s": (["CMD", *CURL], 1.0, 1.0),
    "curl 0.25s": (["CMD", *CURL], 0.25, 1.0),
    "bash 1s": (["CMD", "bash", "-c", BASH], 1.0, 1.0),
    "bash 0.25s": (["CMD", "bash", "-c", BASH], 0.25, 1.0),
    "bash 0.1s": (["CMD", "bash", "-c", BASH], 0.1, 1.0),
    "probe 0.1s": (PROBE, 0.1, 5.0),
}


@dataclass
class Sample:
    option: str
    container_s: float
    engine_s: float
    probes: int
    seconds: float
    start_to_healthy: float | None


def proc_cpu_s(pid: int) -> float:
    """utime + stime + cutime + cstime of `pid`, seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(f) for f in fields[11:15]) / TICK


def engine_pids(socket: str, container_pid: int) -> list[int]:
    """The node's dockerd (its pid file sits beside its socket), its containerd, the container's shim."""
    run_dir = Path(socket.removeprefix("unix://")).parent
    pidfile = run_dir / "dockerd.pid" if (run_dir / "dockerd.pid").exists() else Path("/var/run/docker.pid")
    dockerd = int(pidfile.read_text().strip())
    children = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _ppid(int(p.name)) == dockerd]
    containerd = [pid for pid in children if Path(f"/proc/{pid}/comm").read_text().strip() == "containerd"]
    return [dockerd, *containerd, _ppid(container_pid)]


def _ppid(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return -1


def cgroup_cpu_s(pid: int) -> float:
    """The CPU time of the cgroup `pid` is in (cgroup v1 cpuacct, else v2 cpu.stat), seconds."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if "cpuacct" in controllers.split(","):
            return int(Path(f"/sys/fs/cgroup/cpuacct{path}/cpuacct.usage").read_text()) / 1e9
        if controllers == "":
            stat = Path(f"/sys/fs/cgroup{path}/cpu.stat").read_text().split()
            return int(stat[stat.index("usage_usec") + 1]) / 1e6
    raise RuntimeError(f"no CPU cgroup for pid {pid}")


class ExecCounter:
    """Counts the container's exec_die events (one per probe) while it runs."""

    def __init__(self, client: Any, container: str) -> None:
        self._stream = client.events(filters={"type": "container", "container": container}, decode=True)
        self.times: list[float] = []
        self.health: list[tuple[str, float]] = []
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        try:
            for doc in self._stream:
                at = doc.get("timeNano", 0) / 1e9
                action = str(doc.get("Action", ""))
                if action.startswith("exec_die"):
                    self.times.append(at)
                elif action.startswith(("start", "health_status")):
                    self.health.append((action, at))
        except Exception:  # noqa: BLE001 - the stream is closed at the end
            return

    def close(self) -> None:
        self._stream.close()


def measure(client: Any, socket: str, option: str, *, seconds: float, warmup: float) -> Sample:
    test, interval, timeout = OPTIONS[option]
    health: dict[str, Any] = {"test": test}
    if interval:
        health.update(interval=int(interval * 1e9), timeout=int(timeout * 1e9), retries=3, start_period=int(10e9))
    name = f"sghc-{option.replace(' ', '-').replace('.', '')}-{os.getpid()}"
    with translate(f"run {name}"):
        host = client.create_host_config(nano_cpus=500_000_000, mem_limit="512m")
        cid = client.create_container(IMAGE, name=name, healthcheck=health, host_config=host,
                                      labels={"org.swarmguard.bench": "healthcheck_cost"})["Id"]
    counter = ExecCounter(connect(socket, timeout=seconds + warmup + 120), cid)
    try:
        client.start(cid)
        pid = int(client.inspect_container(cid)["State"]["Pid"])
        deadline = time.monotonic() + 30
        while interval and client.inspect_container(cid)["State"]["Health"]["Status"] != "healthy":
            if time.monotonic() > deadline:
                raise RuntimeError(f"{option}: not healthy after 30 s")
            time.sleep(0.1)
        time.sleep(warmup)
        pids = engine_pids(socket, pid)
        c0, e0, t0 = cgroup_cpu_s(pid), sum(proc_cpu_s(p) for p in pids), time.time()
        time.sleep(seconds)
        c1, e1, t1 = cgroup_cpu_s(pid), sum(proc_cpu_s(p) for p in pids), time.time()
        probes = len([t for t in counter.times if t0 <= t <= t1])
        started = next((at for action, at in counter.health if action == "start"), None)
        healthy = next((at for action, at in counter.health if action == "health_status: healthy"), None)
        first = None if started is None or healthy is None else round(healthy - started, 3)
        return Sample(option, c1 - c0, e1 - e0, probes, t1 - t0, first)
    finally:
        counter.close()
        client.remove_container(cid, force=True)


def table(samples: Sequence[Sample]) -> str:
    base = next((s for s in samples if s.option == "none"), None)
    lines = [f"{'option':12} {'probes/s':>8} {'container %':>11} {'engine %':>9} {'excess %':>9} "
             f"{'ms/probe':>9} {'start->healthy':>14}"]
    for s in samples:
        container, engine = 100 * s.container_s / s.seconds, 100 * s.engine_s / s.seconds
        excess = None if base is None else container + engine - 100 * (base.container_s + base.engine_s) / base.seconds
        per_probe = None if excess is None or not s.probes else excess / 100 * s.seconds / s.probes * 1000
        lines.append(f"{s.option:12} {s.probes / s.seconds:8.2f} {container:11.2f} {engine:9.2f} "
                     f"{'-' if excess is None else f'{excess:.2f}':>9} {'-' if per_probe is None else f'{per_probe:.1f}':>9} "
                     f"{'-' if s.start_to_healthy is None else f'{s.start_to_healthy:.3f}':>14}")
    return "\n".join(lines)


def quietest_worker(lab: labinfo.Lab) -> str:
    """The worker whose engine runs the fewest containers (the fewest other probes in the figures)."""
    counts = {}
    for name, socket in lab.node_sockets.items():
        if socket != lab.host_socket:
            client = connect(socket, timeout=10)
            counts[name] = len(client.containers())
            client.close()
    return min(counts, key=lambda name: (counts[name], name))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="healthcheck_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--node", help="lab node to run on (default: the worker running the fewest containers)")
    parser.add_argument("--seconds", type=float, default=60.0, help="idle window per option (default %(default)s)")
    parser.add_argument("--warmup", type=float, default=5.0, help="s after healthy before measuring")
    parser.add_argument("--options", default=",".join(OPTIONS), help="comma-separated, from: " + ", ".join(OPTIONS))
    args = parser.parse_args(argv)
    chosen = [o.strip() for o in args.options.split(",") if o.strip()]
    unknown = [o for o in chosen if o not in OPTIONS]
    if unknown:
        parser.error(f"unknown options {unknown}")
    lab = labinfo.check_lab()
    node = args.node or quietest_worker(lab)
    socket = lab.socket_of(node)
    client = connect(socket, timeout=args.seconds + 120)
    samples = []
    for option in chosen:
        load = Path("/proc/loadavg").read_text().split()[0]
        samples.append(measure(client, socket, option, seconds=args.seconds, warmup=args.warmup))
        print(f"{option}: done (load average at its start {load})", flush=True)
    print(f"\non {node}, {args.seconds:g} s idle per option, image {IMAGE}:")
    print(table(samples))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
