"""The controller's shared data shapes: what the cache hands the rule engine, what the
rule engine hands the executor, what the executor answers, and what an action reports back.

These are plain frozen dataclasses and enums so the rule engine stays pure (no I/O, clock passed
in) and each part can be tested on its own. The actions themselves are plugins
(controller/actions/plugin.py); a Decision refers to its plugin, not to a name.
"""
from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

if TYPE_CHECKING:
    from controller.actions.plugin import ActionPlugin


class ContainerMetrics(NamedTuple):
    """One sample of one container, as the exporter defines it (docs/metrics.md).

    A named tuple rather than a frozen dataclass: at 1000 nodes the controller makes 30 000 of these a
    second and holds one per container; a tuple is built in a third of the time and is cheaper for the
    cycle collector to walk than a dataclass with its __dict__ (whose full passes over 30 000 of them
    paused the controller for up to 300 ms). Unlike a plain tuple, a named tuple stays tracked by the
    collector while it lives (docs/scale.md). A changed copy is `sample._replace(...)`.
    """

    node: str
    service: str
    container_id: str
    task_id: str
    ts: float  # sample time, Unix seconds (exporter clock)
    cpu: float  # cpu_percent: of the container's CPU limit, else of the node's CPUs (0-100)
    mem: float  # memory_percent: of the memory limit, else of node memory (0-100)
    mem_mb: float  # working set, MiB
    net: float  # network_percent: (rx+tx bits/s) over link capacity (0-100)
    net_rx: float  # Mbit/s received
    net_tx: float  # Mbit/s sent
    stale: bool = False  # its exporter stopped answering: shown, never acted on


@dataclass(frozen=True)
class NodeMetrics:
    node: str
    ts: float
    cpu: float
    mem: float
    net: float
    ready: bool = True
    stale: bool = False


@dataclass(frozen=True)
class ServiceInfo:
    """What the rule engine needs to know about a Swarm service."""

    name: str
    replicas: int | None  # None for a global-mode service (never scaled)
    labels: Mapping[str, str] = field(default_factory=dict)
    has_healthcheck: bool = True
    # Running tasks per node eligible for the service (Ready, active, its constraints met; 0 where
    # none runs), from Swarm's task list; None for a global service or when not read.
    tasks_per_node: Mapping[str, int] | None = None
    observed: float | None = None  # when these figures were read from Swarm (controller clock)


def task_spread(eligible: Iterable[str], task_nodes: Iterable[str | None]) -> dict[str, int]:
    """Tasks per eligible node (host names; 0 where none runs) from the nodes of a service's live
    tasks; a task on a node outside `eligible` does not count (nothing can be moved there)."""
    spread = dict.fromkeys(eligible, 0)
    for node in task_nodes:
        if node in spread:
            spread[node] += 1
    return spread


def task_skew(tasks_per_node: Mapping[str, int]) -> int:
    """Most minus fewest tasks of a service on one node (ServiceInfo.tasks_per_node); 0 for no node."""
    counts = tasks_per_node.values()
    return max(counts) - min(counts) if counts else 0


@dataclass(frozen=True)
class Snapshot:
    """A consistent view of recent metrics at one moment, built by the cache."""

    containers: Mapping[str, ContainerMetrics]  # latest sample per container id
    history: Mapping[str, Sequence[ContainerMetrics]]  # per container id, oldest first
    services: Mapping[str, ServiceInfo]  # by service name
    nodes: Mapping[str, NodeMetrics]  # by node host name


@dataclass(frozen=True)
class Decision:
    """A rule fired: what to do, to what, and why. Produced by the pure rule engine."""

    rule: str
    action: ActionPlugin
    service: str
    container_id: str | None  # the container that breached (migrate, scale_up)
    node: str | None  # its node (migrate excludes it)
    t0: float | None  # time of the first breaching sample that completed the `for` count
    reason: str  # the condition and the figures that made it true
    params: Mapping[str, int | float] = field(default_factory=dict)  # the rule's parameters, cooldown, plan


class Verdict(enum.StrEnum):
    """The executor's answer to a decision (`Executor.submit`), at once and without blocking."""

    ACCEPTED = "accepted"  # the action runs on the executor's threads; one record when it ends
    DRY_RUN = "dry_run"  # recorded with what would be done; nothing changed
    BUSY = "busy"  # an action on this service is still running, or an operator's change just ended one
    RATE_LIMITED = "rate_limited"  # max_actions_per_minute already started in the last 60 s
    OVER_BUDGET = "over_budget"  # it would put more tasks in transition than the disruption budget allows
    REFUSED = "refused"  # never runs: unknown action, incomplete decision, executor shutting down

    @property
    def taken(self) -> bool:
        """False when nothing was done only because of a passing limit: the rule engine then gives the
        rule its cooldown back, so the breach can fire again (RuleState.release)."""
        return self not in (Verdict.BUSY, Verdict.RATE_LIMITED, Verdict.OVER_BUDGET)


@dataclass(frozen=True)
class Submission:
    """A verdict and, where it says more than its name, why."""

    verdict: Verdict
    reason: str = ""
    # Not taken, with the verdict the service's last decision also got: already logged then, so the
    # executor and the runtime do not log it again (one line per wait, e.g. per yield to an operator).
    repeated: bool = False


@dataclass(frozen=True)
class Outcome:
    """One decision of an evaluation and what the executor answered (the /alert answer lists them)."""

    decision: Decision
    submission: Submission

    def as_dict(self) -> dict[str, str]:
        doc = {"rule": self.decision.rule, "action": self.decision.action.name, "service": self.decision.service,
               "submit": self.submission.verdict.value}
        if self.submission.reason:
            doc["reason"] = self.submission.reason
        return doc


@dataclass
class Timeline:
    """T0-T6 (docs/controller.md, "The timeline of an action"), Unix seconds; None where a stage did
    not happen (yet)."""

    t0: float | None = None  # breach sample taken by the exporter
    t1: float | None = None  # alert sent by the exporter
    t2: float | None = None  # alert received by the controller
    t3: float | None = None  # decision made
    t4: float | None = None  # first Docker API call of the action
    t5: float | None = None  # new task running and healthy
    t6: float | None = None  # old task gone (migrate)

    def as_dict(self) -> dict[str, float | None]:
        return {f"t{i}": getattr(self, f"t{i}") for i in range(7)}


class Result(enum.StrEnum):
    """How an action ended; the value is what /events, the log and InfluxDB show."""

    SUCCESS = "success"
    FAILED = "failed"
    TIMEOUT = "timeout"
    DRY_RUN = "dry_run"
    REJECTED = "rejected"


@dataclass
class ActionRecord:
    """The outcome of one action, logged as one JSON line, kept on /events, written to InfluxDB."""

    id: str
    action: str  # the plugin's name (or, for an interrupted action, the name its marker holds)
    service: str
    rule: str
    result: Result
    timeline: Timeline
    node_from: str | None = None
    node_to: str | None = None
    container_id: str | None = None
    replicas_before: int | None = None
    replicas_after: int | None = None
    reason: str = ""
    error: str | None = None
    dry_run: bool = False

    def as_dict(self) -> dict[str, Any]:
        doc = {k: v for k, v in self.__dict__.items() if k != "timeline"}
        doc["result"] = self.result.value
        doc.update(self.timeline.as_dict())
        return doc
