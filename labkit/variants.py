"""The rule variant under test on the lab: the shipped rules, or today's threshold rule alone.

rules/default.yml ships the predictive rules next to the threshold rule `migrate-on-container-problem`;
every predictive rule starts with the guard `mem > trend_from`, `cpu > trend_from` or (the fast-leak
rule) `mem > oom_from`, and a metric never exceeds 100 %, so the threshold overrides `trend_from=100`
and `oom_from=100` switch them all off and leave the threshold rule as it was. The overrides go
through the controller service's environment (`SWARMGUARD_THRESHOLD_TREND_FROM`,
`SWARMGUARD_THRESHOLD_OOM_FROM`, labkit/scenario2.py's `controller_thresholds`: the controller
restarts and the block starts once it scrapes every exporter again) and is put back afterwards;
nothing on disk changes, and the suite's lab reset (labkit/labreset.py) redeploys the stack as its
files define it should a run be cut short.

`exporter_env` does the same for the exporters (a global service): e.g. EXPORTER_PREDICT_HORIZON=0
turns the exporter's predictive alerts off, to measure what the alert path brings.
"""
from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from labkit import controller_api as api
from labkit import labinfo
from sgcommon.engine import translate
from sgcommon.engine.swarm import SwarmAdapter

VARIANTS = ("threshold", "predictive")
OFF = {"trend_from": 100.0, "oom_from": 100.0}  # every predictive rule's guard can never hold
EXPORTER_SERVICE = f"{labinfo.STACK}_exporter"


@contextlib.contextmanager
def rule_variant(client: Any, variant: str, *, nodes: int, say: Callable[[str], None] = print) -> Iterator[None]:
    """The block runs with `variant`'s rules: "predictive" = the rule files as they are, "threshold" =
    the predictive rules switched off by the threshold override."""
    if variant not in VARIANTS:
        raise ValueError(f"unknown rule variant {variant!r}; expected one of {', '.join(VARIANTS)}")
    if variant == "predictive":
        yield
        return
    from labkit import scenario2  # the controller's threshold environment lives there once

    with scenario2.controller_thresholds(client, OFF, nodes=nodes, say=say):
        yield


def _env_of(spec: Mapping[str, Any]) -> list[str]:
    return list(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Env") or [])


@contextlib.contextmanager
def exporter_env(client: Any, env: Mapping[str, str], *, nodes: int, say: Callable[[str], None] = print,
                 timeout: float = 120.0) -> Iterator[None]:
    """The exporters run with `env` set for the block, then with what they had before."""
    with service_env(client, EXPORTER_SERVICE, env, nodes=nodes, say=say, timeout=timeout):
        yield


@contextlib.contextmanager
def controller_env(client: Any, env: Mapping[str, str], *, nodes: int, say: Callable[[str], None] = print,
                   timeout: float = 120.0) -> Iterator[None]:
    """The controller runs with `env` set for the block (e.g. CONTROLLER_ACTIONS_DRY_RUN=true), then with
    what it had before; each change restarts it, and the block starts once it scrapes every exporter."""
    with service_env(client, api.CONTROLLER_SERVICE, env, nodes=nodes, say=say, timeout=timeout):
        yield


@contextlib.contextmanager
def service_env(client: Any, service: str, env: Mapping[str, str], *, nodes: int,
                say: Callable[[str], None] = print, timeout: float = 120.0) -> Iterator[None]:
    """`service` (the stack's exporter or controller) runs with `env` for the block, then as before.
    Nothing is written when it already has these values."""
    from labkit.scenario2 import env_values

    with translate(f"inspect {service}"):
        before = env_values(_env_of(client.inspect_service(service)["Spec"]), env)
    if all(before.get(k) == v for k, v in env.items()):
        yield
        return
    _set(client, service, set_=env, unset=(), nodes=nodes, say=say, timeout=timeout)
    try:
        yield
    finally:
        _set(client, service, set_={k: v for k, v in before.items() if v is not None},
             unset=[k for k, v in before.items() if v is None], nodes=nodes, say=say, timeout=timeout)


def _set(client: Any, service: str, *, set_: Mapping[str, str], unset: tuple[str, ...] | list[str], nodes: int,
         say: Callable[[str], None], timeout: float) -> None:
    from labkit.scenario2 import env_edit

    say(f"==> {service} env: set {dict(set_)} unset {list(unset)} (it restarts)")

    def edit(spec: dict[str, Any]) -> None:
        container = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
        container["Env"] = env_edit(container.get("Env") or [], set_=set_, unset=unset)

    SwarmAdapter(client).update(service, edit, what=f"set the environment of {service}")
    want = env_edit([], set_=set_)

    def rolled_out() -> bool:
        with translate(f"inspect {service}"):
            spec = client.inspect_service(service)
        state = (spec.get("UpdateStatus") or {}).get("State")
        if state not in (None, "completed"):
            return False
        container = api.controller_container(client)  # the controller scrapes the new exporters / is the new one
        if not container:
            return False
        if service == api.CONTROLLER_SERVICE:
            with translate("inspect the controller container"):
                have = client.inspect_container(container)["Config"]["Env"] or []
            if not all(item in have for item in want) or any(e.partition("=")[0] in unset for e in have):
                return False
        return (api.exporters_up(client) or 0) >= nodes

    api.eventually(rolled_out, timeout=timeout, every=1.0,
                   what=f"{service} rolled out with the new environment, {nodes} exporters up")
