"""What a recovery action is: one `ActionPlugin` value that holds everything about it.

Why it exists: an action used to be spread over five files (its name, its rule parameters and
their defaults, its scopes, its bounds in the rule engine and again in the action, its dry-run
text, its function). Now each action module (migrate.py, scale.py) exports its plugin(s), the
registry lists them, and every layer reads the plugin:
- the rule loader: the name, the scopes, the parameters (kind, default, minimum) and their checks;
- the rule engine: `feasible` (may it apply to this service now?), `not_after` (spacing from
  another action on the same service) and `plan` (details it adds to the decision);
- the executor: `run`, `describe` (dry-run), `moving` (the disruption budget), `timeout`;
- the settings (controller/actions/settings.py): one `actions.<name>` setting per parameter (its
  default for rules that name none) and per plugin-wide setting (`settings`, e.g. a time-out), with
  the plugin's own bounds, and `settings_check` for a rule between several of them;
- reconcile (controller/actions/reconcile.py): `interrupted`, what a restart in the middle of the
  action left and what to do about it.

The decision side (`feasible`, `plan`, `describe`, `moving`) is pure: the rule engine calls it and
must stay free of I/O and of the Docker adapter, so this module and the decision halves of the
action modules import nothing from the executor or sgcommon.engine.
"""
from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from controller.model import ActionRecord, Decision, Timeline

if TYPE_CHECKING:
    from controller.actions.context import ActionContext, Swarm
    from controller.actions.settings import ActionSettings
    from sgcommon.engine.swarm import ServiceView

ParamValue = int | float
Params = Mapping[str, ParamValue]


class Rejected(Exception):
    """Raised by `run`: the action refuses to go on (nothing was changed); the message says why."""


class TimedOut(Exception):
    """Raised by `run` (through ActionContext.wait_for): the wait ran out; the message says what was missing."""


class ParamKind(enum.Enum):
    COUNT = "count"  # a whole number, e.g. `max_replicas: 10`
    DURATION = "duration"  # seconds, written `10m`, `30s` or a number


@dataclass(frozen=True)
class Param:
    """A rule parameter of an action. Its default here is the one default: the setting of the same
    name (`actions.<name>`, controller/actions/settings.py) starts from it and overrides it."""

    name: str
    kind: ParamKind
    default: ParamValue
    minimum: ParamValue
    help: str
    exclusive: bool = False  # the value must be above `minimum`, not just at least it

    def problem(self, value: ParamValue) -> str | None:
        """Why `value` is not acceptable, or None (the loader and the settings both ask)."""
        if self.kind is ParamKind.COUNT and (isinstance(value, bool) or not isinstance(value, int)):
            return f"must be a whole number >= {self.minimum}"
        if self.exclusive and not value > self.minimum:
            return f"must be > {self.minimum:g}"
        if not value >= self.minimum:
            return f"must be >= {self.minimum:g}"
        return None


class ServiceShape(Protocol):
    """What the decision side needs to know of a service: the rule engine's ServiceInfo or, for the
    check an action repeats right before it writes, a fresh sgcommon.engine.swarm.ServiceView."""

    @property
    def name(self) -> str: ...
    @property
    def replicas(self) -> int | None: ...  # None: a global-mode service


@dataclass(frozen=True)
class Spacing:
    """The action does not fire within `params[param]` seconds of an `after` decision on the same service."""

    after: str
    param: str


Feasible = Callable[[ServiceShape, Params], str | None]
# (converged, what was found) for an action a controller restart interrupted; may write to Swarm to
# finish undoing a temporary change (never to repeat the action).
Interrupted = Callable[["Swarm", "ServiceView", Mapping[str, object]], tuple[bool, str]]
Plan = Callable[[ServiceShape, Params], Mapping[str, ParamValue]]
Describe = Callable[[Decision], str]


def _no_plan(service: ServiceShape, params: Params) -> Mapping[str, ParamValue]:
    return {}


def _one_task(decision: Decision) -> int:
    return 1


@dataclass(frozen=True, eq=False)
class ActionPlugin:
    """One recovery action. Compared by identity: a decision names the very plugin it runs."""

    name: str
    help: str
    scopes: tuple[str, ...]  # rule scopes it works in: "container", "service"
    params: tuple[Param, ...]
    feasible: Feasible  # None, or why it cannot apply to the service
    describe: Describe  # what it would do, for a dry-run record ("would ...")
    run: Callable[[ActionContext, Decision, Timeline], ActionRecord]  # the work; raises Rejected/TimedOut
    timeout: Callable[[ActionSettings], float]  # the longest `run` waits for Swarm
    plan: Plan = _no_plan  # details it adds to the decision
    moving: Callable[[Decision], int] = _one_task  # tasks it has in transition at once (disruption budget)
    not_after: tuple[Spacing, ...] = ()
    settings: tuple[Param, ...] = ()  # plugin-wide settings (actions.<name>), e.g. its time-out
    # problems between the `actions.*` values of several parameters, e.g. min_replicas <= max_replicas
    settings_check: Callable[[Mapping[str, ParamValue]], list[str]] | None = None
    interrupted: Interrupted | None = None  # None: converged when the replica count runs

    def param(self, name: str) -> Param:
        return next(p for p in self.params if p.name == name)

    def missing(self, params: Params) -> list[str]:
        """The plugin's parameters a decision lacks (the rule loader fills them all)."""
        return [p.name for p in self.params if p.name not in params]

    def __repr__(self) -> str:
        return f"<action {self.name}>"
