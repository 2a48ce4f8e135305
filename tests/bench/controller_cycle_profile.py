"""Where a full controller cycle's time goes at N nodes, in one process and without sockets.

The scale bench (tests/bench/controller_scale.py) measures the controller as deployed, on a shared
core, so its cycle figures mix the controller's own work with waiting for the core and the
interpreter lock. This one runs the same work, step by step, on one thread: each node's sample
summary rendered by the exporter's own code (as the bench's simulated exporters serve it), the
cache filled with `--prefill` samples per container, then per cycle
- parse: `parse_summary` of every node's body (a fresh sweep time written in, as the bench does);
- add: the parsed samples and node figures into the cache (what the scraper does per answer);
- prune, snapshot, and the evaluation of every container (`Runtime._decide`, as the cycle runs it);
- with `--alerts K`, K alerts through `Runtime.handle_alert` (the alert path without its HTTP),
and prints each step's wall and CPU time (median and max over `--cycles`). `--profile` also runs
cProfile over the cycles and prints the functions with the most own time; `--full-gc` then counts the
objects the cycle collector tracks and times 5 full collections (thread CPU): what a full pass of it
costs the controller at that size.

Run from the repo root:
  .venv/bin/python -m tests.bench.controller_cycle_profile --nodes 1000 --cycles 5 [--profile] [--tree DIR]
`--tree DIR` imports the controller from another source tree (PYTHONPATH), for a before/after look.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]


def _steps(args: argparse.Namespace) -> tuple[Callable[[], dict[str, float]], dict[str, Any]]:
    """Builds the controller and the bodies; returns one cycle as a function and the setup figures."""
    from tests.bench.controller_scale import SENTINEL_TEXT, SUMMARY_PATH, BenchSwarm, Cluster, node_bodies, prefill

    from controller import __main__ as cmain
    from controller.runtime import build
    from controller.scrape import parse_summary
    from sgcommon.alert import Alert

    cluster = Cluster(args.nodes, args.containers)
    began = time.perf_counter()
    bodies = [node_bodies(cluster, i)[SUMMARY_PATH] for i in range(cluster.nodes)]
    render_s = time.perf_counter() - began
    config = Path(tempfile.mkdtemp(prefix="cycle-profile-")) / "controller.yml"
    config.write_text(json.dumps({
        "listen": "127.0.0.1", "port": 1, "rules": str(REPO / "rules" / "default.yml"),
        "exporters": ["127.0.0.1:1"], "cache_max_containers": max(20000, 2 * cluster.total),
        "actions": {"dry_run": True}, "log_level": "WARNING", "docker_url": "http://127.0.0.1:1",
    }))
    os.environ.setdefault("ALERT_TOKEN", "cycle-profile-token-0123456789abcdef")
    prepared = cmain._prepare(cmain.parser().parse_args(["run", "--config", str(config)]), None, sys.stderr)
    assert prepared is not None
    settings, alert_token, influx_token, thresholds = prepared
    runtime, _ = build(settings, alert_token=alert_token, thresholds=thresholds, influx_token=influx_token,
                       swarm=BenchSwarm(cluster))
    runtime.refresh_services()
    began = time.perf_counter()
    filled = prefill(runtime.cache, cluster, samples=args.prefill, interval=1.0)
    prefill_s = time.perf_counter() - began
    tune = getattr(cmain, "tune_interpreter", None)
    if tune is not None:
        tune()
    cache = runtime.cache

    def cycle() -> dict[str, float]:
        times: dict[str, float] = {}

        def step(name: str, work: Callable[[], Any]) -> Any:
            wall, cpu = time.perf_counter(), time.process_time()
            out = work()
            times[f"{name}_wall"] = times.get(f"{name}_wall", 0.0) + time.perf_counter() - wall
            times[f"{name}_cpu"] = times.get(f"{name}_cpu", 0.0) + time.process_time() - cpu
            return out

        now = time.time()
        stamp = repr(now - 0.2).encode()
        parsed = step("parse", lambda: [parse_summary(b.replace(SENTINEL_TEXT, stamp), scraped_at=now) for b in bodies])

        def add() -> None:
            for p in parsed:
                cache.add_containers(p.containers)
                cache.add_nodes(p.nodes)
        step("add", add)
        now = time.time()
        step("prune", lambda: cache.prune(now))
        step("snapshot", lambda: cache.snapshot(now))
        step("evaluate", lambda: runtime._decide(now, kind="cycle"))  # takes its own snapshot, as the cycle does
        if args.alerts:
            step("alerts", lambda: [runtime.handle_alert(alert(k), received=time.time()) for k in range(args.alerts)])
        return times

    targets = [(cluster.node(i), *cluster.container(i, j)[:3], cluster.figures(i, j))
               for i in range(cluster.nodes) for j in range(cluster.per_node)]
    rng = random.Random(42)

    def alert(k: int) -> Any:
        """An alert as the scale bench sends it: a random container's fresh sample, cpu above 75."""
        node, cid, service, task, figures = targets[rng.randrange(len(targets))]
        now = time.time()
        return Alert(t0=now - 0.001, t1=now, node=node, container_id=cid, service=service, task_id=task,
                     metrics={**figures, "cpu": 80.0})

    return cycle, {"render_s": round(render_s, 1), "prefilled": filled, "prefill_s": round(prefill_s, 1)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--nodes", type=int, default=1000)
    parser.add_argument("--containers", type=int, default=30, help="containers per node")
    parser.add_argument("--prefill", type=int, default=300, help="past samples per container put in the cache first")
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--alerts", type=int, default=0,
                        help="also this many alerts per cycle through Runtime.handle_alert (no HTTP)")
    parser.add_argument("--profile", action="store_true", help="cProfile the cycles; print the top functions")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--tree", default=None, help="source tree to import the controller from")
    parser.add_argument("--full-gc", action="store_true", help="then count tracked objects, time full collections")
    args = parser.parse_args(argv)
    if args.tree:
        sys.path.insert(0, str(Path(args.tree).resolve()))
        for name in [m for m in sys.modules if m.split(".")[0] in ("controller", "sgcommon", "exporter")]:
            del sys.modules[name]
    cycle, setup = _steps(args)
    print(json.dumps({"nodes": args.nodes, "containers": args.nodes * args.containers, **setup}), flush=True)
    cycle()  # the first one settles the rule state
    profiler = cProfile.Profile() if args.profile else None
    records = []
    for _ in range(args.cycles):
        time.sleep(max(0.0, 1.0 - time.time() % 1.0))  # a new sweep stamp each cycle
        if profiler is not None:
            profiler.enable()
        records.append(cycle())
        if profiler is not None:
            profiler.disable()
    keys = list(records[0])
    print(f"{'step':16s} {'median ms':>10s} {'max ms':>10s}")
    for key in keys:
        values = [r[key] for r in records]
        print(f"{key:16s} {statistics.median(values) * 1e3:10.1f} {max(values) * 1e3:10.1f}")
    total = [sum(v for k, v in r.items() if k.endswith("_cpu")) for r in records]
    print(f"{'total_cpu':16s} {statistics.median(total) * 1e3:10.1f} {max(total) * 1e3:10.1f}  (load {os.getloadavg()[0]:.1f})")
    if args.full_gc:
        gc.collect()
        tracked = len(gc.get_objects())
        passes = []
        for _ in range(5):
            began = time.thread_time()
            gc.collect()
            passes.append((time.thread_time() - began) * 1e3)
        print(f"tracked objects {tracked} (frozen {gc.get_freeze_count()}); full collection ms: median "
              f"{statistics.median(passes):.1f}, min {min(passes):.1f}, max {max(passes):.1f}")
    if profiler is not None:
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(args.top)
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
