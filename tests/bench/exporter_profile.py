"""Where the exporter's time goes per tick, without an engine: the sweep, the /metrics exposition
and the line protocol, timed and profiled (cProfile) on a fake cgroup v1 tree of N containers.

Each part runs `--rounds` times; the script prints the median time of each part and the top
functions of the profile by own time. The counters in the fake tree move every round, so the
work is that of a live host (new numbers each time), minus the kernel's cost of the reads.
Run from the repo root: `.venv/bin/python -m tests.bench.exporter_profile [--containers 25]`.
"""
from __future__ import annotations

import argparse
import cProfile
import dataclasses
import io
import pstats
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from prometheus_client import generate_latest

from exporter.collect import Collector, NodeLink
from exporter import metrics as exporter_metrics
from exporter.lineproto import sweep_lines
from exporter.metrics import SelfMetrics, SweepCollector
from exporter.sample import Sweep
from tests.exporter.conftest import FakeHost, container
from sgcommon.version import add_version_argument


def build(root: Path, n: int) -> tuple[FakeHost, dict[str, object]]:
    host = FakeHost(root, "v1")
    metas: dict[str, object] = {}
    for i in range(n):
        cid = f"{i:02d}" + "ab" * 31
        host.add_container(cid, pid=1000 + i, cpu_ns=10**9 * i, usage=(64 + i) << 20, inactive=1 << 20,
                           net=(10**6 * i, 10 * i, 10**6 * i, 10 * i))
        metas[cid] = container(cid, pid=1000 + i, service=f"svc-{i % 5}", task=f"task{i:021d}", cpu_limit=0.25,
                               memory_limit=32 << 20)
    return host, metas


def exposition_func() -> Callable[[Sweep], bytes]:
    """How the running exporter renders /metrics: the sweep written directly as text (when this tree
    has SweepText) plus its own figures, else prometheus_client's generate_latest over everything."""
    metrics = SelfMetrics()
    text_renderer = getattr(exporter_metrics, "SweepText", None)
    if text_renderer is not None:
        renderer = text_renderer()

        def render(sweep: Sweep) -> bytes:
            fresh = dataclasses.replace(sweep)  # a new sweep object, as every tick makes: no cached body
            return bytes(renderer.render(fresh)) + generate_latest(metrics.registry)

        return render
    latest: list[Sweep | None] = [None]
    metrics.registry.register(SweepCollector(lambda: latest[0]))

    def render_generic(sweep: Sweep) -> bytes:
        latest[0] = sweep
        return generate_latest(metrics.registry)

    return render_generic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_version_argument(parser, "python -m tests.bench.exporter_profile")
    parser.add_argument("--containers", type=int, default=25)
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--top", type=int, default=12, help="functions shown per part")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        host, metas = build(Path(tmp), args.containers)
        clock = [1_700_000_000.0, 100.0]
        collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root,
                              link=NodeLink("eth0", 100.0, "setting"), on_error=lambda kind: None,
                              clock=lambda: clock[0], mono=lambda: clock[1])
        render = exposition_func()
        cids = list(metas)

        def advance(r: int) -> None:
            clock[0] += 1.0
            clock[1] += 1.0
            for i, cid in enumerate(cids[:3]):  # a few counters move: the files are rewritten
                host.set_cpu(cid, 10**9 * (i + r))

        sweep = collector.sweep(metas, "worker-1")  # type: ignore[arg-type]
        advance(0)
        sweep = collector.sweep(metas, "worker-1")  # type: ignore[arg-type]
        parts: dict[str, Callable[[], object]] = {
            "sweep": lambda: collector.sweep(metas, "worker-1"),  # type: ignore[arg-type]
            "exposition": lambda: render(sweep),
            "line protocol": lambda: sweep_lines(sweep, "ms"),
        }
        print(f"{args.containers} containers, {args.rounds} rounds per part; /metrics body "
              f"{len(render(sweep))} bytes, {len(sweep.containers)} container samples")
        for name, part in parts.items():
            times = []
            profile = cProfile.Profile()
            for r in range(2 * args.rounds):  # first timed alone, then profiled
                if name == "sweep":
                    advance(r)
                if r < args.rounds:
                    start = time.perf_counter()
                    part()
                    times.append(time.perf_counter() - start)
                else:
                    profile.enable()
                    part()
                    profile.disable()
            out = io.StringIO()
            pstats.Stats(profile, stream=out).sort_stats("tottime").print_stats(args.top)
            body = out.getvalue()
            table = body[body.find("   ncalls"):]
            print(f"\n== {name}: median {statistics.median(times) * 1000:.3f} ms "
                  f"(p10 {sorted(times)[len(times) // 10] * 1000:.3f}, p90 {sorted(times)[len(times) * 9 // 10] * 1000:.3f})"
                  " per call; profiled separately, top functions by own time:")
            print(table.rstrip())
        collector.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
