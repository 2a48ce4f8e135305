"""What the exporter costs on a real engine (goals: docs/exporter.md), with N idle containers running.

(a) One sweep over every container, side by side: the exporter's cgroup/proc sweep (steady
    state: files kept open; and cold: every file opened anew), `GET /containers/{id}/stats?
    stream=false` called for each container in turn, and the same with `one-shot=true`; times
    and ratios. Goal: the sweep at least 50x faster than stream=false.
(b) The exporter as a process (`python -m exporter`, 1 s interval, /metrics scraped every
    second as the controller does) over `--seconds`: CPU as % of one core and peak RSS (VmHWM).
    Goals: <= 1 % of a core, <= 50 MB.

Needs the local engine (/var/run/docker.sock) and a lab image with `sleep` (swarm/lab build).
Starts its containers with the label swarmguard.bench=exporter_overhead and removes them at the
end (also after Ctrl-C). Run from the repo root:
`.venv/bin/python -m tests.bench.exporter_overhead [--containers 25] [--seconds 60]`.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable

import docker

from exporter.collect import Collector, NodeLink
from exporter.discovery import Inventory
from sgcommon.engine import connect
from sgcommon.engine.containers import inspect, list_running, node_name, stats_once
from tests.support import free_port
from sgcommon.version import add_version_argument

LABEL = "swarmguard.bench"
IMAGES = ("10.99.0.1:5000/swarmguard-base:latest", "10.99.0.1:5000/stressapp:latest")
CLK_TCK = os.sysconf("SC_CLK_TCK")


def pick_image(client: docker.APIClient) -> str:
    tags = {tag for image in client.images() for tag in (image.get("RepoTags") or [])}
    for name in IMAGES:
        if name in tags:
            return name
    sys.exit(f"exporter_overhead: none of {', '.join(IMAGES)} on the engine: run swarm/lab build first")


def start_containers(client: docker.APIClient, image: str, n: int) -> list[str]:
    ids = []
    for i in range(n):
        c = client.create_container(
            image, command=["sleep", "infinity"], labels={LABEL: "exporter_overhead"}, name=f"sgbench-exp-{i}-{os.getpid()}",
            host_config=client.create_host_config(nano_cpus=250_000_000, mem_limit="32m"),
        )
        client.start(c["Id"])
        ids.append(c["Id"])
    return ids


def remove_containers(client: docker.APIClient) -> int:
    mine = client.containers(all=True, filters={"label": f"{LABEL}=exporter_overhead"})
    for c in mine:
        client.remove_container(c["Id"], force=True)
    return len(mine)


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def sweep_times(ids: list[str], client: docker.APIClient, repeats: int) -> dict[str, float]:
    inventory = Inventory(node_name(client))
    inventory.replace({cid: inspect(client, cid) for cid in ids})
    errors: list[str] = []

    def collector() -> Collector:
        return Collector(cgroup_root="/sys/fs/cgroup", proc_root="/proc", link=NodeLink("", 100.0, "setting"), on_error=errors.append)

    warm = collector()
    warm.sweep(inventory.snapshot(), inventory.node)
    steady = [timed(lambda: warm.sweep(inventory.snapshot(), inventory.node)) for _ in range(repeats)]
    counted = len(warm.sweep(inventory.snapshot(), inventory.node).containers)
    warm.close()
    cold = []
    for _ in range(repeats):
        c = collector()
        cold.append(timed(lambda c=c: c.sweep(inventory.snapshot(), inventory.node)))
        c.close()
    if errors or counted != len(ids):
        sys.exit(f"exporter_overhead: the sweep saw {counted} of {len(ids)} containers, errors {errors[:5]}")
    return {"steady": statistics.median(steady), "cold": statistics.median(cold)}


def stats_sweep(client: docker.APIClient, ids: list[str], *, one_shot: bool) -> float:
    return timed(lambda: [stats_once(client, cid, one_shot=one_shot) for cid in ids])


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def peak_rss_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def run_exporter(seconds: float, *, scrape: bool, influx_url: str, tree: str | None = None,
                 pyspy: str | None = None) -> dict[str, float]:
    """One exporter process over `seconds`; `tree`: run the exporter code of another source tree
    (before/after comparisons); `pyspy`: record a py-spy profile (raw) to that file instead of timing."""
    port = free_port()
    env = {**os.environ, "EXPORTER_ALERTS": "false", "INFLUXDB_URL": influx_url, "EXPORTER_LOG_LEVEL": "WARNING"}
    if tree:
        env["PYTHONPATH"] = tree
    proc = subprocess.Popen(
        [sys.executable, "-m", "exporter", "--listen-address", "127.0.0.1", "--port", str(port), "--interval", "1"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=tree or None,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/healthz", timeout=1).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    sys.exit(f"exporter_overhead: the exporter did not start: {proc.stderr.read().decode()[-500:] if proc.stderr else ''}")
                time.sleep(0.2)
        time.sleep(3)  # past start-up (imports, first listing)
        spy = None
        if pyspy:
            spy = subprocess.Popen([shutil.which("py-spy") or os.path.join(os.path.dirname(sys.executable), "py-spy"),
                                    "record", "-p", str(proc.pid), "-r", "200", "-d", str(int(seconds)), "-f", "raw",
                                    "-o", pyspy, "--nonblocking"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cpu0, t0 = cpu_seconds(proc.pid), time.monotonic()
        scrapes, scrape_bytes = 0, 0
        while time.monotonic() - t0 < seconds:
            if scrape:
                scrape_bytes = len(urllib.request.urlopen(f"{url}/metrics", timeout=5).read())
                scrapes += 1
            time.sleep(1.0)
        cpu1, t1 = cpu_seconds(proc.pid), time.monotonic()
        if spy is not None:
            spy.wait(seconds + 30)
        return {
            "cpu_percent_of_core": 100.0 * (cpu1 - cpu0) / (t1 - t0),
            "peak_rss_mb": peak_rss_mb(proc.pid),
            "scrapes": scrapes,
            "scrape_bytes": scrape_bytes,
            "seconds": t1 - t0,
        }
    finally:
        proc.terminate()
        proc.wait(10)


def pyspy_summary(path: str, top: int = 15) -> list[str]:
    """The functions with the most samples in a py-spy raw (collapsed stacks) profile: own and inclusive."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    with open(path) as fh:
        for line in fh:
            stack, _, count_text = line.rstrip("\n").rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            frames = stack.split(";")
            total += count
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    rows = [f"    {n * 100 / total:5.1f} % own  {inclusive[f] * 100 / total:5.1f} % incl  {f}"
            for f, n in sorted(own.items(), key=lambda kv: -kv[1])[:top]] if total else []
    return [f"    {total} samples (idle threads excluded)", *rows]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.exporter_overhead")
    parser.add_argument("--containers", type=int, default=25)
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the CPU/RSS measurement (b)")
    parser.add_argument("--repeats", type=int, default=20, help="sweeps timed in (a); the median is reported")
    parser.add_argument("--no-scrape", action="store_true", help="(b) without a /metrics scrape every second")
    parser.add_argument("--influx-url", default="", help="(b) with InfluxDB writes to this URL (e.g. a loopback victoria-metrics)")
    parser.add_argument("--runs", type=int, default=1, help="(b) this many exporter runs; the median is reported")
    parser.add_argument("--before", metavar="TREE", help="(b) also run, alternately, the exporter of this source tree "
                        "(e.g. `git archive <commit>` unpacked): before/after in one session")
    parser.add_argument("--skip-stats", action="store_true", help="skip (a)'s stats API calls (75 s)")
    parser.add_argument("--pyspy", metavar="FILE", help="one more run under py-spy, raw profile to FILE (not timed)")
    args = parser.parse_args(argv)
    client = connect(timeout=120)
    image = pick_image(client)
    leftover = remove_containers(client)
    print(f"engine {node_name(client)}, image {image}, {args.containers} idle containers"
          + (f" (removed {leftover} left over)" if leftover else ""))
    try:
        ids = start_containers(client, image, args.containers)
        running = set(list_running(client))
        print(f"containers running on the engine: {len(running)} (the bench's {len(set(ids) & running)})")
        sweeps = sweep_times(ids, client, args.repeats)
        print("(a) one sweep over the bench containers (median of "
              f"{args.repeats} for the exporter; the stats API sequentially, once):")
        print(f"    exporter, files kept open : {sweeps['steady'] * 1000:9.2f} ms")
        print(f"    exporter, files reopened  : {sweeps['cold'] * 1000:9.2f} ms")
        ratio_ok: bool | None = None  # not measured with --skip-stats: said so, not "met"
        if not args.skip_stats:
            one_shot = stats_sweep(client, ids, one_shot=True)
            stream = stats_sweep(client, ids, one_shot=False)
            print(f"    stats one-shot=true       : {one_shot * 1000:9.2f} ms   ({one_shot / sweeps['steady']:.0f}x the sweep)")
            print(f"    stats stream=false        : {stream * 1000:9.2f} ms   ({stream / sweeps['steady']:.0f}x the sweep)")
            ratio_ok = stream / sweeps["steady"] >= 50
        trees = {"after": None, **({"before": args.before} if args.before else {})}
        results: dict[str, list[dict[str, float]]] = {name: [] for name in trees}
        for i in range(args.runs):
            for name, tree in (trees.items() if i % 2 == 0 else reversed(list(trees.items()))):  # alternate the order
                r = run_exporter(args.seconds, scrape=not args.no_scrape, influx_url=args.influx_url, tree=tree)
                results[name].append(r)
                print(f"(b) {name} run {i + 1}: CPU {r['cpu_percent_of_core']:.2f} % of one core, peak RSS "
                      f"{r['peak_rss_mb']:.1f} MB, {r['scrapes']} scrapes of {r['scrape_bytes']} bytes", flush=True)
        for name, runs in results.items():
            cpu = [r["cpu_percent_of_core"] for r in runs]
            rss = [r["peak_rss_mb"] for r in runs]
            print(f"(b) {name}: exporter process over {args.seconds:.0f} s at 1 s, InfluxDB "
                  f"{'on' if args.influx_url else 'off'}, scraped {'every 1 s' if not args.no_scrape else 'never'}: "
                  f"CPU median {statistics.median(cpu):.2f} % of one core ({min(cpu):.2f}..{max(cpu):.2f}, n={len(cpu)}), "
                  f"peak RSS median {statistics.median(rss):.1f} MB ({min(rss):.1f}..{max(rss):.1f}), "
                  f"/metrics {runs[-1]['scrape_bytes']} bytes")
        if args.pyspy:
            for name, tree in trees.items():
                path = args.pyspy if name == "after" else f"{args.pyspy}.{name}"
                run_exporter(args.seconds, scrape=not args.no_scrape, influx_url=args.influx_url, tree=tree, pyspy=path)
                print(f"py-spy profile of one more run, {name}: {path}")
                print("\n".join(pyspy_summary(path)))
        after = results["after"]
        goals: dict[str, bool | None] = {
            "sweep >= 50x faster than stream=false": ratio_ok,
            "CPU <= 1 % of a core": statistics.median(r["cpu_percent_of_core"] for r in after) <= 1.0,
            "peak RSS <= 50 MB": statistics.median(r["peak_rss_mb"] for r in after) <= 50.0,
        }
        for goal, met in goals.items():
            print(f"    goal {goal}: {'not measured (--skip-stats)' if met is None else 'met' if met else 'NOT met'}")
        return 1 if False in goals.values() else 0
    finally:
        removed = remove_containers(client)
        print(f"removed {removed} bench containers")
        client.close()


if __name__ == "__main__":
    sys.exit(main())
