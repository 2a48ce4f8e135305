"""A rule that keeps firing on a service the executor makes wait (an action still running, the 60 s
yield to an operator's change) is logged once per wait, not at every evaluation round: the executor's
"action not started" and the runtime's "decision" lines come when the service's verdict changes, and
every decision is counted in swarmguard_controller_decisions_total by verdict (fake clock, the real
executor with a stand-in action that ends as an operator's change would end it)."""
from __future__ import annotations

import threading
import time
from collections import Counter
from typing import Any

import pytest

from controller.actions.context import Abandoned, ActionContext
from controller.actions.executor import OPERATOR_YIELD, Executor
from controller.actions.plugin import ActionPlugin
from controller.actions.settings import ActionSettings
from controller.decide import RuleState
from controller.model import ActionRecord, Decision, Snapshot, Submission, Timeline
from controller.rules import RuleSet
from tests.controller.conftest import FakeClock
from tests.controller.test_runtime import make_rig

RELEASE = threading.Event()  # set by the test: the stand-in action then ends as superseded


def _superseded(ctx: ActionContext, decision: Decision, timeline: Timeline) -> ActionRecord:
    assert RELEASE.wait(10), "the test did not release the action"
    raise Abandoned("superseded while the action waited: an operator updated the service")


HOLD = ActionPlugin(name="hold", help="waits, then is superseded", scopes=("service",), params=(),
                    feasible=lambda service, params: None, describe=lambda decision: "hold",
                    run=_superseded, timeout=lambda settings: 10.0)


class FiresEveryRound:
    """The rule engine's stand-in: one decision for `web` at every cycle."""

    def __call__(self, rules: RuleSet, snapshot: Snapshot, now: float, state: RuleState, *,
                 container_id: str | None = None, scope: str | None = None, forget: bool = True) -> list[Decision]:
        if scope == "service":
            return []
        return [Decision(rule="keeps-firing", action=HOLD, service="web", container_id=None, node=None, t0=now,
                         reason="always")]


class Answers:
    """The real executor, with every answer it gave kept."""

    def __init__(self, inner: Executor) -> None:
        self.inner = inner
        self.given: list[Submission] = []

    def submit(self, decision: Decision, timeline: Timeline) -> Submission:
        answer = self.inner.submit(decision, timeline)
        self.given.append(answer)
        return answer

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_service_kept_waiting_is_logged_once_per_wait_and_every_round_is_counted(
        clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level("INFO", logger="swarmguard.controller")
    RELEASE.clear()
    executor = Executor(object(), ActionSettings(poll_interval=0.01), on_record=lambda record: None,  # type: ignore[arg-type]
                        node_load=dict, plugins={"hold": HOLD}, clock=clock)
    answers = Answers(executor)
    rig = make_rig(clock=clock, executor=answers, evaluate=FiresEveryRound())
    try:
        rig.runtime.scrape_and_evaluate()  # the action starts ...
        for _ in range(5):  # ... and runs for 5 rounds
            clock.advance(1.0)
            rig.runtime.scrape_and_evaluate()
        RELEASE.set()  # an operator's change ends it: the service is left alone for OPERATOR_YIELD
        assert _eventually(lambda: not executor.busy_services())
        rounds = 0
        while True:
            clock.advance(1.0)
            rig.runtime.scrape_and_evaluate()
            rounds += 1
            if answers.given[-1].verdict != "busy":
                break
        assert rounds == int(OPERATOR_YIELD)  # the yield's 59 busy rounds, then the next action starts
    finally:
        executor.shutdown(wait=True)

    verdicts = [(a.verdict.value, a.repeated) for a in answers.given]
    assert verdicts == ([("accepted", False), ("busy", False)] + [("busy", True)] * 4
                        + [("busy", False)] + [("busy", True)] * 58 + [("accepted", False)])
    not_started = [r for r in caplog.records if r.getMessage() == "action not started"]
    assert [r.__dict__["fields"]["reason"].split(":")[0] for r in not_started] == [
        "an action on web is running", "an operator's change ended SwarmGuard's last action on web"]
    decisions = Counter(r.__dict__["fields"]["submit"] for r in caplog.records if r.getMessage() == "decision")
    assert decisions == {"accepted": 2, "busy": 2}
    counted = {v: rig.registry.get_sample_value("swarmguard_controller_decisions_total", {"verdict": v})
               for v in ("accepted", "busy")}
    assert counted == {"accepted": 2.0, "busy": 64.0}


def _eventually(check: Any, timeout: float = 10.0) -> bool:
    """The executor's action thread runs on the wall clock: waits for it, not for controller time."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True
