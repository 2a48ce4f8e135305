"""What one task-state poll of a waiting action costs the manager's engine and the controller.

While a migration or a scale-up waits for the new task (T4->T5) and for the old one to stop
(T5->T6), the action lists the service's tasks every `poll_interval`. The Engine API has no task
events (its swarm events are node, service, network, secret and config changes), so polling is
the only way to see a task's state from the manager. This measures one poll exactly as the
actions make it (SwarmAdapter.list_tasks with the service and desired-state filters) against the
lab's manager, back to back: wall time, the manager dockerd's CPU and this process's CPU per call,
and what that means at several poll intervals while an action waits.

Needs the lab, under the lab lock:
    .venv/bin/python -m tests.bench.task_poll_cost [--service swarmguard_web-stress] [--calls 500]
"""
from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Sequence
from pathlib import Path

from labkit import labinfo
from sgcommon.engine import connect
from sgcommon.engine.swarm import SwarmAdapter

TICK = os.sysconf("SC_CLK_TCK")
INTERVALS = (0.25, 0.1, 0.05, 0.02)


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="task_poll_cost", description=__doc__.split("\n")[0])
    parser.add_argument("--service", default=f"{labinfo.STACK}_web-stress")
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    lab = labinfo.check_lab()
    swarm = SwarmAdapter(connect(lab.host_socket, timeout=30))
    service = swarm.get_service(args.service).id
    dockerd = int(Path("/var/run/docker.pid").read_text().strip())
    tasks = len(swarm.list_tasks(service=service))
    rows = []
    for _ in range(args.repeat):
        walls = []
        e0, me0 = proc_cpu_s(dockerd), time.process_time()
        for _ in range(args.calls):
            started = time.perf_counter()
            swarm.list_tasks(service=service, desired_state="running")
            walls.append(time.perf_counter() - started)
        rows.append(((proc_cpu_s(dockerd) - e0) / args.calls * 1000, (time.process_time() - me0) / args.calls * 1000,
                     statistics.median(walls) * 1000, sorted(walls)[int(0.99 * (len(walls) - 1))] * 1000))
    engine, client, wall, p99 = (statistics.median(col) for col in zip(*rows, strict=True))
    print(f"{args.calls} polls x {args.repeat} of {args.service} ({tasks} tasks in its history), load average "
          f"{Path('/proc/loadavg').read_text().split()[0]}:")
    print(f"  per poll: wall {wall:.2f} ms (p99 {p99:.2f}), manager dockerd CPU {engine:.2f} ms, controller CPU {client:.2f} ms")
    for interval in INTERVALS:
        share = (engine + client) / (interval * 1000 + wall) * 100
        print(f"  every {interval:g} s while an action waits: {share:.1f} % of a core; "
              f"the state change is seen {interval / 2 * 1000 + wall:.0f} ms after it happens on average")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
