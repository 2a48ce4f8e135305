"""Runs one rule test and compares what the rules decided with what the test expects.

At each `expect` time the decisions made at that evaluation (alert path and scrape round) must be
exactly the expected ones; in each `never` range no decision matching its rule, service and
container may be made. A failure is a diff per evaluation time:

    - did not fire: ...     an expected decision that was not made, with the engine's view of why
    + fired, not expected   a decision nobody expected, with its reason (the condition's figures)
    ~ fired otherwise       the expected rule fired on that service, with another t0, action, ...

and the list of every decision the replay made, so the reader sees the whole story.
"""
from __future__ import annotations

from dataclasses import dataclass

from controller.ruletest.explain import why_not
from controller.ruletest.replay import BASE, Fired, Step, replay
from controller.ruletest.spec import Check, Expected, Never, RuleTest, fmt_time

MAX_LISTED = 20  # decisions listed under a failed test


@dataclass(frozen=True)
class Outcome:
    test: RuleTest
    failures: tuple[str, ...]  # the report's lines; empty when the test passed
    fired: tuple[Fired, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_test(test: RuleTest) -> Outcome:
    """Replays `test` and checks it."""
    checker = _Checker(test)
    fired = replay(test, watch=checker.observe)
    lines = [line for step in sorted(checker.reports) for line in checker.reports[step]]
    for never in test.nevers:
        lines.extend(_never_report(test, never, fired))
    if lines:
        lines.append(f"decisions of the replay ({len(fired)}):" if fired else "decisions of the replay: none")
        lines.extend(f"  {fmt_time(test.time(f.step))}  {describe(test, f)}" for f in fired[:MAX_LISTED])
        if len(fired) > MAX_LISTED:
            lines.append(f"  ... {len(fired) - MAX_LISTED} more")
    return Outcome(test, tuple(lines), tuple(fired))


def describe(test: RuleTest, fired: Fired) -> str:
    """One decision as the report shows it: `rule: action service/container on node, t0 1s`."""
    d = fired.decision
    target = d.service if d.container_id is None else f"{d.service}/{d.container_id}"
    text = f"{d.rule}: {d.action.name} {target}"
    if d.node is not None:
        text += f" on {d.node}"
    if "target_replicas" in d.params and "replicas" in d.params:
        text += f", {d.params['replicas']:g} -> {d.params['target_replicas']:g} replicas"
    if d.t0 is not None:
        text += f", t0 {_clock(d.t0)}"
    return text + (" (alert)" if fired.via == "alert" else "")


def _expected_text(test: RuleTest, e: Expected, *, brief: bool = False) -> str:
    """An expected decision as the report shows it; `brief`: only what names it (rule, action, target)."""
    rule = test.rules.by_name(e.rule)
    assert rule is not None  # the test file reader checked every rule name
    target = e.service if e.container is None else f"{e.service}/{e.container}"
    text = f"{e.rule}: {e.action or rule.action.name} {target}"
    if brief:
        return text
    if e.node is not None:
        text += f" on {e.node}"
    if e.target_replicas is not None:
        text += f", -> {e.target_replicas} replicas"
    if e.t0 is not None:
        text += f", t0 {fmt_time(test.time(e.t0))}"
    return text + (f" (via {e.via})" if e.via else "")


def _clock(ts: float) -> str:
    return fmt_time(ts - BASE)


class _Checker:
    """Compares each `expect` time as the replay reaches it (while the engine's view is at hand)."""

    def __init__(self, test: RuleTest) -> None:
        self.test = test
        self.checks = {check.step: check for check in test.checks}
        self.reports: dict[int, list[str]] = {}

    def observe(self, step: Step) -> None:
        check = self.checks.get(step.index)
        if check is not None:
            lines = self.compare(check, step)
            if lines:
                self.reports[step.index] = lines

    def compare(self, check: Check, step: Step) -> list[str]:
        test = self.test
        got = list(step.fired)
        missing: list[Expected] = []
        for expected in check.decisions:
            match = next((f for f in got if _target(expected, f) and not _differences(test, expected, f)), None)
            if match is None:
                missing.append(expected)
            else:
                got.remove(match)
        body: list[str] = []
        for expected in list(missing):
            near = next((f for f in got if _target(expected, f)), None)
            if near is not None:
                missing.remove(expected)
                got.remove(near)
                body.append(f"  ~ fired otherwise: {_expected_text(test, expected, brief=True)}: "
                            f"{'; '.join(_differences(test, expected, near))}")
                body.append(f"      reason: {near.decision.reason}")
        for expected in missing:
            body.append(f"  - did not fire: {_expected_text(test, expected)}")
            rule = test.rules.by_name(expected.rule)
            assert rule is not None  # the test file reader checked every rule name
            for line in why_not(rule, snapshot=step.snapshot, state=step.state, now=step.now,
                                service=expected.service, container=expected.container,
                                decided=[f.decision for f in step.fired], clock=_clock):
                body.append(f"      {line}")
        for fired in got:
            body.append(f"  + fired, not expected: {describe(test, fired)}")
            body.append(f"      reason: {fired.decision.reason}")
        if not body:
            return []
        wanted = len(check.decisions)
        head = (f"at {fmt_time(test.time(check.step))} (line {check.line}): expected "
                f"{_count(wanted)}, got {_count(len(step.fired))}")
        return [head, *body]


def _count(number: int) -> str:
    return "no decision" if number == 0 else f"{number} decision{'' if number == 1 else 's'}"


def _target(expected: Expected, fired: Fired) -> bool:
    d = fired.decision
    return (expected.rule == d.rule and expected.service == d.service
            and (expected.container is None or expected.container == d.container_id))


def _differences(test: RuleTest, expected: Expected, fired: Fired) -> list[str]:
    d = fired.decision
    differences = []
    if expected.action is not None and expected.action != d.action.name:
        differences.append(f"action expected {expected.action}, got {d.action.name}")
    if expected.t0 is not None:
        got = None if d.t0 is None else round((d.t0 - BASE) / test.interval)
        if got != expected.t0:
            differences.append(f"t0 expected {fmt_time(test.time(expected.t0))}, got "
                               f"{'none' if d.t0 is None else _clock(d.t0)}")
    if expected.node is not None and expected.node != d.node:
        differences.append(f"node expected {expected.node}, got {d.node}")
    target = d.params.get("target_replicas")
    if expected.target_replicas is not None and expected.target_replicas != target:
        differences.append(f"target_replicas expected {expected.target_replicas}, got "
                           f"{'none' if target is None else f'{target:g}'}")
    if expected.via is not None and expected.via != fired.via:
        differences.append(f"via expected {expected.via}, got {fired.via}")
    return differences


def _never_report(test: RuleTest, never: Never, fired: list[Fired]) -> list[str]:
    hits = [f for f in fired if never.first <= f.step <= never.last
            and (never.rule is None or f.decision.rule == never.rule)
            and (never.service is None or f.decision.service == never.service)
            and (never.container is None or f.decision.container_id == never.container)]
    if not hits:
        return []
    what = ", ".join(f"{key} {value}" for key, value in
                     (("rule", never.rule), ("service", never.service), ("container", never.container)) if value)
    lines = [f"never from {fmt_time(test.time(never.first))} to {fmt_time(test.time(never.last))}"
             f"{', ' + what if what else ''} (line {never.line}): {len(hits)} fired"]
    for hit in hits[:MAX_LISTED]:
        lines.append(f"  + fired at {fmt_time(test.time(hit.step))}: {describe(test, hit)}")
        lines.append(f"      reason: {hit.decision.reason}")
    return lines
