"""False triggers on the lab (`tests/scripts/noise_false_triggers`): the shipped rules on noisy steady loads.

Two copies of web-stress's own spec (labkit/suite.py `clone_spec`: same image, healthcheck, limits,
`swarmguard.enable=true`), `sgi-noise-cpu` and `sgi-noise-mem`, hold a noisy steady load for `minutes`:
CPU 60 % of the limit +/- 15 points, and memory 60 % of the 512 MB limit +/- 15 points, the level
redrawn every `step` seconds (the stress app's noisy hold, docs/stressapp.md). The controller runs in
dry-run meanwhile (CONTROLLER_ACTIONS_DRY_RUN=true, put back afterwards), so a decision is recorded
and the load stays where it is: every decision of a predictive rule on these services is a false
trigger (the threshold rule's are counted too: 60 + 15 = 75 is cpu_high, and a reading can pass it).

Afterwards the exporter's series of both containers are read from the lab's victoria-metrics and saved
next to the result, in the form `python -m tests.bench.trend_rules --replay FILE` replays through the
real rule engine. The services are removed at the end (and by the suite's lab reset).
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from labkit import controller_api as api
from labkit import labinfo, labreset, sink, variants
from labkit.suite import clone_spec
from sgcommon.engine import EngineError, connect, translate
from sgcommon.version import add_version_argument

NAMES = {"cpu": "sgi-noise-cpu", "mem": "sgi-noise-mem"}
PREDICTIVE = ("migrate-before-oom", "migrate-before-oom-fast", "migrate-before-memory-threshold",
              "migrate-before-cpu-threshold")


@dataclasses.dataclass(frozen=True)
class Settings:
    minutes: float = 10.0
    mean: float = 60.0  # % of the limit
    noise: float = 15.0  # points
    step: float = 1.0  # s between draws
    seed: int = 1


def stress_path(metric: str, s: Settings, *, limit_mb: float, in_use_mb: float) -> str:
    """The noisy hold: CPU in % of the container's CPU; memory in MB, the app's own use counted in."""
    hold = f"duration={s.minutes * 60:g}&step={s.step:g}&seed={s.seed}"
    if metric == "cpu":
        return f"/stress/cpu?target={s.mean:g}&noise={s.noise:g}&{hold}"
    target = s.mean / 100 * limit_mb - in_use_mb
    return f"/stress/memory?target={target:.1f}&noise={s.noise / 100 * limit_mb:.1f}&{hold}"


def count(records: Sequence[dict[str, Any]], services: Sequence[str]) -> dict[str, int]:
    """Decisions per rule on `services`."""
    found: dict[str, int] = {}
    for record in records:
        if record.get("service") in services:
            found[str(record.get("rule"))] = found.get(str(record.get("rule")), 0) + 1
    return found


def run(lab: labinfo.Lab, s: Settings, *, say: Any = print) -> dict[str, Any]:
    client = connect(lab.host_socket, timeout=60)
    try:
        with variants.controller_env(client, {"CONTROLLER_ACTIONS_DRY_RUN": "true"}, nodes=len(lab.node_sockets),
                                     say=say):
            return _run(lab, client, s, say)
    finally:
        _remove(client)
        client.close()


def _remove(client: Any) -> None:
    with translate("remove the noise services"):
        for svc in client.services(filters={"label": f"{labreset.E2E_LABEL}=noise"}):
            client.remove_service(svc["ID"])


def _run(lab: labinfo.Lab, client: Any, s: Settings, say: Any) -> dict[str, Any]:
    _remove(client)
    with translate("web-stress and network"):
        web = client.inspect_service(api.APP_SERVICE)
        network_id = client.inspect_network(lab.network)["Id"]
    limit_mb = float(web["Spec"]["TaskTemplate"]["Resources"]["Limits"]["MemoryBytes"]) / 2**20
    for name in NAMES.values():
        spec = clone_spec(web, name, network_id)
        spec["labels"][labreset.E2E_LABEL] = "noise"
        with translate(f"create {name}"):
            client.create_service(**spec)
    names = api.node_names(client)
    tasks = {m: api.eventually(partial(api.running_tasks, client, n), timeout=120, what=f"{n} running")[0]
             for m, n in NAMES.items()}
    time.sleep(3.0)
    seen = {r["id"] for r in api.events(client, limit=500)}
    started = time.time()
    paths = {}
    for metric, task in tasks.items():
        node = names[task["NodeID"]]
        in_use = float(api.app_get(lab, task, node, "/metrics").get("memory_mb") or 0.0)
        paths[metric] = stress_path(metric, s, limit_mb=limit_mb, in_use_mb=in_use)
        answer = api.app_get(lab, task, node, paths[metric])
        if answer.get("status") != "started":
            raise EngineError(f"the noisy load did not start on {NAMES[metric]}: {answer}")
        say(f"    {NAMES[metric]} on {node}: {paths[metric]}")
    end = started + s.minutes * 60
    while time.time() < end:
        time.sleep(min(30.0, max(0.0, end - time.time())))
        found = count(api.new_records(api.events(client, limit=500), seen), list(NAMES.values()))
        say(f"    {int(time.time() - started)} s: decisions {found or 'none'}")
    records = api.new_records(api.events(client, limit=500), seen)
    time.sleep(6.0)  # the exporters' last batch
    series = {f"{metric} {NAMES[metric]}": sink.export_series(task["Status"]["ContainerStatus"]["ContainerID"], metric,
                                                            start=started, end=end)
              for metric, task in tasks.items()}
    decisions = count(records, list(NAMES.values()))
    return {"started": started, "minutes": s.minutes, "loads": paths, "decisions": decisions,
            "false_triggers": sum(n for rule, n in decisions.items() if rule in PREDICTIVE),
            "records": [r for r in records if r.get("service") in NAMES.values()],
            "samples": {name: len(points) for name, points in series.items()},
            "spread": {name: _spread(points) for name, points in series.items()}, "series": series}


def _spread(points: Sequence[tuple[float, float]]) -> dict[str, float]:
    values = [v for _, v in points]
    if not values:
        return {}
    mean = sum(values) / len(values)
    return {"mean": round(mean, 2), "min": round(min(values), 2), "max": round(max(values), 2),
            "sd": round((sum((v - mean) ** 2 for v in values) / len(values)) ** 0.5, 2),
            "above_75": sum(v > 75 for v in values), "above_80": sum(v > 80 for v in values)}


@labinfo.lab_tool("noise_false_triggers")
def main(argv: Sequence[str] | None = None) -> int:
    d = Settings()
    parser = argparse.ArgumentParser(prog="noise_false_triggers", description=__doc__.split("\n")[0])
    add_version_argument(parser)
    parser.add_argument("--minutes", type=float, default=d.minutes, help="default %(default)s")
    parser.add_argument("--step", type=float, default=d.step, help="s between draws (default %(default)s)")
    parser.add_argument("--output", type=Path, help="JSON (default results/noise-<time>.json)")
    args = parser.parse_args(argv)
    output = args.output or labinfo.REPO / "results" / f"noise-{time.strftime('%Y%m%dT%H%M%S')}.json"
    lab = labinfo.check_lab()
    result = run(lab, Settings(minutes=args.minutes, step=args.step))
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps({k: v for k, v in result.items() if k != "series"}, indent=2) + "\n")
    replay = output.with_suffix(".series.json")
    replay.write_text(json.dumps(result["series"]) + "\n")
    print(f"==> decisions on the noisy loads: {result['decisions'] or 'none'}; predictive false triggers: "
          f"{result['false_triggers']}; spread {json.dumps(result['spread'])}")
    print(f"==> results: {output}; series for tests.bench.trend_rules --replay: {replay}")
    return 0 if result["false_triggers"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
