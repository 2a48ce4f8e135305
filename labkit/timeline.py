"""Where a migration's time went: the controller's T0..T6 split by the engines' own container events.

The controller stamps T4 (its service update), T5 (it saw the replacement task running, i.e.
healthy) and T6 (it saw the old task stopped). In between, the engine of each node records when
the replacement's container was created, started and first reported healthy, and when the old
container got its stop signal (`kill`) and exited (`die`). The lab's engines and the controller
all run on one machine, so their clocks agree, and the spans below add up to T4->T5 and T5->T6:

| part | from -> to | what it is |
|---|---|---|
| schedule | T4 -> create | the update call, Swarm's orchestrator, scheduler and dispatcher, the worker's prepare |
| start | create -> start | the container start (namespaces, overlay attach) |
| health | start -> healthy | the app's boot and the first passing health probe, that is: |
| boot | start -> serving | the app's own "serving" log line (the stress app's; absent for other apps) |
| probe | serving -> healthy | until a probe passes: the interval, the exec, the check |
| seen_up | healthy -> T5 | the worker's report to the manager and the controller's next poll |
| to_sigterm | T5 -> kill | the updater stops the old task; its worker takes it out of the balancer and sleeps 2 s for gossip |
| exit | kill -> die | the app's graceful stop after SIGTERM |
| seen_down | die -> T6 | the worker's report and the controller's next poll |

Engines keep only their last 256 events, so the events are read right after a run.
"""
from __future__ import annotations

import json
import statistics
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from sgcommon.engine import EngineError, connect, translate

NEW_EVENTS = {"create": "create", "start": "start", "health_status: healthy": "healthy"}
OLD_EVENTS = {"kill": "kill", "die": "die"}
PARTS = (  # name, from, to
    ("schedule", "t4", "new.create"),
    ("start", "new.create", "new.start"),
    ("health", "new.start", "new.healthy"),
    ("boot", "new.start", "new.serving"),
    ("probe", "new.serving", "new.healthy"),
    ("seen_up", "new.healthy", "t5"),
    ("to_sigterm", "t5", "old.kill"),
    ("exit", "old.kill", "old.die"),
    ("seen_down", "old.die", "t6"),
)
SPANS = (("T0->T1", "t0", "t1"), ("T1->T4", "t1", "t4"), ("T4->T5", "t4", "t5"), ("T5->T6", "t5", "t6"))


def first_times(events: Iterable[Mapping[str, Any]], wanted: Mapping[str, str]) -> dict[str, float]:
    """Name -> time (Unix seconds) of the first event of each wanted action (`wanted`: action -> name)."""
    found: dict[str, float] = {}
    for doc in events:
        name = wanted.get(str(doc.get("Action", "")))
        if name is None or name in found:
            continue
        nanos = doc.get("timeNano")
        found[name] = nanos / 1e9 if isinstance(nanos, int) else float(doc.get("time", 0))
    return found


def container_events(socket: str, container_id: str, *, since: float, until: float) -> list[dict[str, Any]]:
    """The container events the engine at `socket` still holds for `container_id` between the two times."""
    client = connect(socket, timeout=30)
    try:
        with translate(f"events of {container_id[:12]}"):
            return list(client.events(since=int(since), until=int(until) + 1, decode=True,
                                      filters={"type": "container", "container": container_id}))
    finally:
        client.close()


def serving_time(log: str) -> float | None:
    """The `ts` of the app's first "serving" JSON log line (the stress app logs one when it listens)."""
    for line in log.splitlines():
        if '"serving"' not in line:
            continue
        try:
            doc = json.loads(line[line.index("{"):])
        except ValueError:
            continue
        if doc.get("msg") == "serving" and isinstance(doc.get("ts"), (int, float)):
            return float(doc["ts"])
    return None


def container_log(socket: str, container_id: str) -> str:
    client = connect(socket, timeout=30)
    try:
        with translate(f"log of {container_id[:12]}"):
            return bytes(client.logs(container_id, stdout=True, stderr=True)).decode(errors="replace")
    finally:
        client.close()


def _serving(socket: str, container_id: str) -> float | None:
    """`serving_time` of the container's log; None when the log cannot be read (the split of
    `health` into boot and probe is a bonus: no error for it)."""
    try:
        return serving_time(container_log(socket, container_id))
    except EngineError:
        return None


def marks(record: Mapping[str, Any], new: Mapping[str, float], old: Mapping[str, float]) -> dict[str, float | None]:
    """Every instant the parts need: t0..t6 of the record, new.* and old.* from the engines."""
    out: dict[str, float | None] = {f"t{i}": record.get(f"t{i}") for i in range(7)}
    out.update({f"new.{k}": v for k, v in new.items()})
    out.update({f"old.{k}": v for k, v in old.items()})
    return out


def _span(points: Mapping[str, float | None], start: str, end: str) -> float | None:
    a, b = points.get(start), points.get(end)
    return None if a is None or b is None else round(float(b) - float(a), 3)


def breakdown(points: Mapping[str, float | None]) -> dict[str, float | None]:
    """The spans T0->T1 .. T5->T6 and the parts of T4->T5 and T5->T6 (None where an end is unknown)."""
    return {**{name: _span(points, a, b) for name, a, b in SPANS},
            **{name: _span(points, a, b) for name, a, b in PARTS}}


def engine_breakdown(sockets: Mapping[str, str], record: Mapping[str, Any], *, new: tuple[str | None, str | None],
                     old: tuple[str, str]) -> dict[str, Any]:
    """`breakdown` of one migration, reading the events of the new and the old container from their
    nodes' engines (`new` and `old` are (node, container id)). An engine that cannot be read leaves
    its parts None and says why in `errors`."""
    since, until = float(record.get("t4") or 0), float(record.get("t6") or record.get("t5") or 0) + 1
    times: dict[str, dict[str, float]] = {"new": {}, "old": {}}
    errors: list[str] = []
    for side, (node, cid), wanted in (("new", new, NEW_EVENTS), ("old", old, OLD_EVENTS)):
        if not node or not cid or node not in sockets or not since:
            errors.append(f"{side} container unknown (node {node}, container {cid})")
            continue
        try:
            times[side] = first_times(container_events(sockets[node], cid, since=since - 1, until=until), wanted)
        except EngineError as exc:
            errors.append(f"{side} container's events on {node}: {exc}")
        if side == "new" and (serving := _serving(sockets[node], cid)) is not None:
            times[side]["serving"] = serving
    return {"parts": breakdown(marks(record, times["new"], times["old"])), "errors": errors}


def summary(rows: Sequence[Mapping[str, float | None]], names: Sequence[str]) -> dict[str, tuple[float, float, float] | None]:
    """name -> (median, min, max) over the rows that have it."""
    out: dict[str, tuple[float, float, float] | None] = {}
    for name in names:
        values = [v for row in rows if (v := row.get(name)) is not None]
        out[name] = (round(statistics.median(values), 3), min(values), max(values)) if values else None
    return out


COLUMNS = [name for name, _, _ in SPANS[:3]] + ["schedule", "start", "health", "boot", "probe", "seen_up", "T5->T6",
                                               "to_sigterm", "exit", "seen_down", "failed"]


def _cell(value: float | None, width: int) -> str:
    text = "-" if value is None else str(value) if isinstance(value, int) else f"{value:.3f}"
    return f"{text:>{width}}"


def format_parts(rows: Sequence[Mapping[str, float | None]]) -> str:
    """One line per run, then the median, min and max lines: the spans, their engine-measured
    parts and the probe's failed requests (the `failed` key of a row)."""
    width = max(len(c) for c in COLUMNS) + 1
    lines = ["run " + "".join(f"{c:>{width}}" for c in COLUMNS)]
    for i, row in enumerate(rows, 1):
        lines.append(f"{i:>3} " + "".join(_cell(row.get(c), width) for c in COLUMNS))
    stats = summary(rows, COLUMNS)
    for label, index in (("med", 0), ("min", 1), ("max", 2)):
        lines.append(f"{label} " + "".join(_cell(None if (s := stats[c]) is None else s[index], width) for c in COLUMNS))
    return "\n".join(lines)
