"""Rule-test replay speed: 1 hour of 1 s samples for 10 containers through `test-rules`.

The goal (docs/rules.md, "Testing rules"): replaying 1 hour of 1 s samples for 10 containers takes
under 1 s. The test file is written like a recorded one: every sample of every container written
out (3600 values per series, from a seeded random walk with bursts, so the rules really fire), the
real rules/default.yml, a `never` check over the whole hour (the replay and every comparison run).
Each run reports, separately:
- read: reading and checking the test file (YAML, 10 x 3 series of 3600 values);
- replay: the replay through the MetricsCache and the rule engine, and the check;
each as wall time and as this process's CPU time (the machine is shared: CPU time is the
figure other work disturbs least). Prints the median of --runs runs and the spread (min-max).

Run from the repo root: `.venv/bin/python -m tests.bench.rules_replay [--containers 10 --seconds 3600 --runs 5]`.
"""
from __future__ import annotations

import argparse
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from controller.ruletest.check import run_test
from controller.ruletest.spec import load_test_file

ROOT = Path(__file__).resolve().parents[2]


def recorded(rng: random.Random, samples: int, *, level: float, burst: float) -> str:
    """A series written out sample by sample: a bounded random walk with occasional bursts."""
    values, value = [], level
    for _ in range(samples):
        value = min(100.0, max(0.0, value + rng.uniform(-3, 3) + (level - value) * 0.05))
        if rng.random() < 0.002:
            value = burst
        values.append(f"{value:.1f}")
    return " ".join(values)


def write_test(path: Path, *, containers: int, seconds: int) -> None:
    rng = random.Random(20261201)
    lines = [f"rule_files: [{ROOT / 'rules' / 'default.yml'}]", "interval: 1s", "tests:",
             "  - name: one hour of recorded samples", "    services:",
             f"      - {{name: web, replicas: {containers}, labels: {{swarmguard.enable: \"true\"}}}}",
             "    containers:"]
    for index in range(1, containers + 1):
        lines += [f"      - id: web.{index}", "        service: web", f"        node: worker-{index % 3 + 1}",
                  "        series:",
                  f"          cpu: \"{recorded(rng, seconds, level=40, burst=95)}\"",
                  f"          mem: \"{recorded(rng, seconds, level=50, burst=90)}\"",
                  f"          net: \"{recorded(rng, seconds, level=30, burst=85)}\""]
    lines += ["    never:", "      - {}"]
    path.write_text("\n".join(lines) + "\n")


def measure(path: Path) -> dict[str, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    test_file = load_test_file(str(path))
    read_wall, read_cpu = time.perf_counter() - wall, time.process_time() - cpu
    wall, cpu = time.perf_counter(), time.process_time()
    outcomes = [run_test(test) for test in test_file.tests]
    replay_wall, replay_cpu = time.perf_counter() - wall, time.process_time() - cpu
    return {"read_wall": read_wall, "read_cpu": read_cpu, "replay_wall": replay_wall, "replay_cpu": replay_cpu,
            "decisions": sum(len(o.fired) for o in outcomes),
            "steps": sum(t.steps for t in test_file.tests),
            "samples": sum(t.steps * len(t.containers) for t in test_file.tests)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--seconds", type=int, default=3600, help="samples per container (one a second)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "replay.yml"
        write_test(path, containers=args.containers, seconds=args.seconds)
        size = path.stat().st_size
        runs = [measure(path) for _ in range(args.runs)]
    summary: dict[str, Any] = {"containers": args.containers, "seconds": args.seconds, "runs": args.runs,
                               "file_bytes": size, "samples": runs[0]["samples"], "decisions": runs[0]["decisions"]}
    for key in ("read_wall", "read_cpu", "replay_wall", "replay_cpu"):
        values = [run[key] for run in runs]
        summary[key] = {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
                        "max": round(max(values), 3)}
    if args.json:
        print(json.dumps(summary, indent=2))
        return
    print(f"{args.containers} containers x {args.seconds} samples ({summary['samples']} samples, "
          f"{size / 1024:.0f} KiB test file), {summary['decisions']} decisions, {args.runs} runs")
    for key, label in (("read", "read the test file"), ("replay", "replay + check")):
        for clock in ("wall", "cpu"):
            figures = summary[f"{key}_{clock}"]
            print(f"  {label:<18} {clock:<4} median {figures['median']:.3f} s  "
                  f"(min {figures['min']:.3f}, max {figures['max']:.3f})")


if __name__ == "__main__":
    main()
