"""`test-rules`: the shipped rule tests, what they catch, the diff, the replay against the runtime, and
broken test files.

- The shipped tests (rules/tests/) pass, cover every rule of rules/*.yml (each fires somewhere and
  is checked not to fire somewhere), and fail when a default rule is weakened (each mutation below
  must make a named test fail, so they test something).
- The replay makes the decisions the controller's own Runtime makes when fed the same samples
  through its scrape round and alert path, for every shipped test without apply_decisions.
- A failing test prints the documented diff (exact text); exit codes 0, 1, 2.
- Hostile test files give exit 2 with `file:line:` messages, never a traceback or an internal
  error; hypothesis fuzzes the fields of a valid test file (fixed budget, derandomized when CI=true).
"""
from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from controller.__main__ import main as controller_main
from controller.decide import evaluate
from controller.model import ContainerMetrics, NodeMetrics
from controller.rules import RuleError, load_rules
from controller.ruletest import command
from controller.ruletest.notation import Stale
from controller.ruletest.replay import BASE, cache_for, replay
from controller.ruletest.spec import RuleTest, TestFileError, load_test_file
from controller.scrape import RoundResult
from sgcommon.alert import Alert
from tests.controller.conftest import FakeClock
from tests.controller.test_runtime import FixedRules, RecordingExecutor, make_rig

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ROOT / "rules" / "tests"
DEFAULT = ROOT / "rules" / "default.yml"
CI = os.environ.get("CI") == "true"


def run(*paths: Path | str, verbose: bool = False) -> tuple[int, str]:
    out = io.StringIO()
    code = command.run([str(p) for p in paths], out=out, verbose=verbose)
    return code, out.getvalue()


# -- the shipped tests ----------------------------------------------------------------------------

def test_the_shipped_rule_tests_pass() -> None:
    code, output = run(SHIPPED)
    assert code == 0, output
    files = sorted(SHIPPED.glob("*.yml"))
    tests = sum(len(load_test_file(str(f)).tests) for f in files)
    assert output.splitlines()[-1] == f"OK: {tests} tests in {len(files)} files"
    assert tests >= 30


def test_every_rule_in_the_rule_directory_is_tested_firing_and_not_firing() -> None:
    rules = load_rules([str(ROOT / "rules")])
    fires: set[str] = set()
    held: set[str] = set()
    for path in SHIPPED.glob("*.yml"):
        for test in load_test_file(str(path)).tests:
            fires |= {e.rule for check in test.checks for e in check.decisions}
            held |= {never.rule for never in test.nevers if never.rule is not None}
            if any(never.rule is None for never in test.nevers):
                held |= {rule.name for rule in test.rules.rules}
    names = {rule.name for rule in rules.rules}
    assert names - fires == set(), "rules no shipped test expects to fire"
    assert names - held == set(), "rules no shipped test checks in a must-not-fire range"


# (what to change in rules/default.yml, the change, a test that must then fail)
MUTATIONS = [
    ("and net < net_low\n    for: 2", "and net < net_low\n    for: 1",
     "must not flap - noisy CPU around the threshold"),
    ("net < net_low\n    for: 2\n    action: migrate\n    priority: 20\n    cooldown: 30s",
     "net < net_low\n    for: 2\n    action: migrate\n    priority: 20\n    cooldown: 10s",
     "a lasting problem migrates again once the cooldown is over"),
    ("net_low: 35", "net_low: 55", "high CPU with traffic between net_low and net_high does nothing"),
    ("cpu > cpu_high and mem > mem_high and net > net_high", "cpu > cpu_high and net > net_high",
     "two high figures out of three do not scale"),
    ("cooldown: 60s\n    max_replicas: 10", "cooldown: 20s\n    max_replicas: 10",
     "lasting traffic scales up once per cooldown until max_replicas"),
    ("max_replicas: 10", "max_replicas: 12", "a service at max_replicas is not scaled up"),
    ("for: 180s", "for: 120s", "an idle service of 3 replicas loses one after 180 s"),
    ("containers >= replicas\n      and ", "", "a replica that does not report yet holds the scale-down back"),
    ("labels: {swarmguard.enable: \"true\"}\n    scope: service\n    when: >-", "scope: service\n    when: >-",
     "services that do not opt in by label are never scaled down"),
    ("mem > trend_from and net < net_low and predict", "net < net_low and predict",
     "below trend_from even a steep climb is a service starting up"),
    ("8 * predict_se(mem, 10s, 5s)", "0 * predict_se(mem, 10s, 5s)",
     "memory that jumps around a high level without a trend is not a leak"),
    ("mem > oom_from and net < net_low", "net < net_low", "under oom_from even a steep climb is left alone"),
    ("3 * predict_se(mem, 10s, 1400ms)", "0 * predict_se(mem, 10s, 1400ms)",
     "memory that jumps up and down every read has no trend to trust"),
    ("predict(mem, 10s, 1400ms) - 3 * predict_se(mem, 10s, 1400ms)", "predict(mem, 10s, 3s) - 3 * predict_se(mem, 10s, 3s)",
     "the same leak seen once a second gets no line from this rule"),
    ("trend_from < cpu < cpu_high", "cpu < cpu_high", "below trend_from a climb is not watched (trend_from 100 turns the rule off)"),
    ("task_skew > max_task_skew", "task_skew >= max_task_skew", "an even spread, or a skew of one task, is left alone"),
    ("cooldown: 30s            #", "cooldown: 10s            #", "the skew that stays is moved again only after the 30 s cooldown"),
]


@pytest.mark.parametrize(("old", "new", "failing"), MUTATIONS, ids=[m[2] for m in MUTATIONS])
def test_the_shipped_tests_fail_when_a_default_rule_is_weakened(tmp_path: Path, old: str, new: str,
                                                                failing: str) -> None:
    text = DEFAULT.read_text()
    assert text.count(old) == 1, f"the mutation's anchor {old!r} is not once in rules/default.yml"
    (tmp_path / "default.yml").write_text(text.replace(old, new))
    shutil.copytree(SHIPPED, tmp_path / "tests")
    code, output = run(tmp_path / "tests")
    assert code == 1, output
    assert f": {failing}\n" in output and "FAIL " in output


# -- the replay is the runtime's -------------------------------------------------------------------

@dataclass
class StepScraper:
    """A scraper that brings one step of a test's series per round, as controller/scrape.py would."""

    test: RuleTest
    cache: Any
    step: int = 0
    feeds: dict[str, list[Any]] = field(default_factory=dict)

    def scrape_round(self) -> RoundResult:
        ts = BASE + self.step * self.test.interval
        samples = [s for s in (_sample(c, self.step, ts) for c in self.test.containers) if s is not None]
        self.cache.add_containers(samples)
        observed = {n: replace(i, observed=ts) for n, i in self.test.services.items() if i.tasks_per_node is not None}
        if observed:  # Swarm's task spread, read at each step as the controller's service-list job does
            self.cache.set_services({**self.test.services, **observed})
        for node in self.test.nodes:
            point = _point(node.series, node.length, self.step)
            if isinstance(point, dict):
                self.cache.add_nodes([NodeMetrics(node.name, ts, cpu=point.get("cpu", 0.0), mem=point.get("mem", 0.0),
                                                  net=point.get("net", 0.0))])
                self.cache.set_node_down(node.name, False)
            elif isinstance(point, Stale):
                self.cache.set_node_down(node.name, True, since=ts)
        return RoundResult(up={}, containers=len(samples), nodes=len(self.test.nodes), seconds=0.0)


def _point(series: Any, length: int, step: int) -> dict[str, float] | Stale | None:
    """The figures at `step` read from the expanded series (independently of the replay's walk)."""
    if step >= length:
        return None
    figures: dict[str, float] = {}
    for key, one in series.items():
        points = one.expand()
        point = points[0] if len(points) == 1 and one.constant is not None else points[step]
        if not isinstance(point, float):
            return point  # type: ignore[no-any-return]
        figures[key] = point
    return figures


def _sample(container: Any, step: int, ts: float) -> ContainerMetrics | None:
    point = _point(container.series, container.length, step)
    if not isinstance(point, dict):
        return None
    figures = {"cpu": 0.0, "mem": 0.0, "mem_mb": 0.0, "net": 0.0, "net_rx": 0.0, "net_tx": 0.0, **point}
    return ContainerMetrics(node=container.node, service=container.service, container_id=container.id,
                            task_id=f"task-{container.id}", ts=ts, cpu=figures["cpu"], mem=figures["mem"],
                            mem_mb=figures["mem_mb"], net=figures["net"], net_rx=figures["net_rx"],
                            net_tx=figures["net_tx"])


def runtime_decisions(test: RuleTest) -> list[tuple[int, str, str, str, str | None, float | None]]:
    """The decisions the real Runtime (alert path, scrape round, real engine) makes on the test's samples."""
    clock = FakeClock(BASE)
    cache = cache_for()
    cache.set_services(test.services)
    executor = RecordingExecutor()
    scraper = StepScraper(test, cache)
    rig = make_rig(clock=clock, cache=cache, rules=FixedRules(test.rules), evaluate=evaluate, executor=executor,
                   scraper=scraper)
    for step in range(test.steps):
        clock.now = ts = BASE + step * test.interval
        for container in (c for c in test.containers if c.alerts):
            sample = _sample(container, step, ts)
            if sample is not None:
                metrics = {k: getattr(sample, k) for k in ("cpu", "mem", "mem_mb", "net", "net_rx", "net_tx")}
                rig.runtime.handle_alert(Alert(t0=ts, t1=ts, node=sample.node, container_id=sample.container_id,
                                               service=sample.service, task_id=sample.task_id, metrics=metrics),
                                         received=ts)
        scraper.step = step
        rig.runtime.scrape_and_evaluate()
    decided = []
    for d, timeline in executor.submitted:
        assert timeline.t3 is not None
        via = "scrape" if timeline.t1 is None else "alert"  # only an alert has a T1
        decided.append((round((timeline.t3 - BASE) / test.interval), via, d.rule, d.service, d.container_id, d.t0))
    return decided


def _shipped_tests() -> list[RuleTest]:
    return [t for path in sorted(SHIPPED.glob("*.yml")) for t in load_test_file(str(path)).tests]


@pytest.mark.parametrize("test", [t for t in _shipped_tests() if not t.apply_decisions], ids=lambda t: t.name)
def test_the_replay_decides_what_the_controllers_runtime_decides_on_the_same_samples(test: RuleTest) -> None:
    replayed = [(f.step, f.via, f.decision.rule, f.decision.service, f.decision.container_id, f.decision.t0)
                for f in replay(test)]
    assert replayed == runtime_decisions(test)


# -- the diff ---------------------------------------------------------------------------------------

FAILING = """rule_files: [{rules}]
interval: 1s
tests:
  - name: a CPU problem on web.1 migrates it
    services:
      - {{name: web, replicas: 2, labels: {{swarmguard.enable: "true"}}}}
    containers:
      - id: web.1
        service: web
        node: worker-1
        series: {{cpu: "40 90 70 90x3", mem: "50", net: "5"}}
    expect:
      - at: 2s
        decisions:
          - {{rule: migrate-on-container-problem, service: web, container: web.1, t0: 1s}}
      - at: 4s
        decisions:
          - {{rule: migrate-on-container-problem, service: web, container: web.1, t0: 2s}}
  - name: traffic scales up once
    services:
      - {{name: web, replicas: 2, labels: {{swarmguard.enable: "true"}}}}
    containers:
      - {{id: web.1, service: web, series: {{cpu: "90x70", mem: "90", net: "80"}}}}
    expect:
      - at: 1s
        decisions:
          - {{rule: scale-up-on-traffic, service: web, container: web.1, t0: 0s}}
    never:
      - {{from: 2s}}
"""

DIFF = """FAIL {path}:4: a CPU problem on web.1 migrates it
  at 2s (line 13): expected 1 decision, got no decision
    - did not fire: migrate-on-container-problem: migrate web/web.1, t0 1s
        condition false: (cpu > cpu_high or mem > mem_high) and net < net_low (cpu=70, cpu_high=75, mem=50, mem_high=80, net=5, net_low=35)
        breaching run: none (for: 2 samples)
  at 4s (line 16): expected 1 decision, got 1 decision
    ~ fired otherwise: migrate-on-container-problem: migrate web/web.1: t0 expected 2s, got 3s
        reason: (cpu > cpu_high or mem > mem_high) and net < net_low held for 2 samples (cpu=90, cpu_high=75, \
mem=50, mem_high=80, net=5, net_low=35)
  decisions of the replay (1):
    4s  migrate-on-container-problem: migrate web/web.1 on worker-1, t0 3s
FAIL {path}:19: traffic scales up once
  never from 2s to 70s (line 29): 1 fired
    + fired at 62s: scale-up-on-traffic: scale_up web/web.1 on worker-1, 2 -> 3 replicas, t0 61s
        reason: cpu > cpu_high and mem > mem_high and net > net_high held for 2 samples (cpu=90, cpu_high=75, \
mem=90, mem_high=80, net=80, net_high=65)
  decisions of the replay (2):
    1s  scale-up-on-traffic: scale_up web/web.1 on worker-1, 2 -> 3 replicas, t0 0s
    62s  scale-up-on-traffic: scale_up web/web.1 on worker-1, 2 -> 3 replicas, t0 61s
FAILED: 2 of 2 tests in 1 file
"""


def test_a_failing_test_prints_per_time_what_did_not_fire_and_why_and_what_fired_instead(tmp_path: Path) -> None:
    path = tmp_path / "web.yml"
    path.write_text(FAILING.format(rules=DEFAULT))
    assert run(path) == (1, DIFF.format(path=path))


def test_a_decision_nobody_expected_shows_with_its_reason_and_an_explanation_shows_a_cooldown(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(f"""rule_files: [{DEFAULT}]
tests:
  - name: t
    services:
      - {{name: web, replicas: 2, labels: {{swarmguard.enable: "true"}}}}
    containers:
      - {{id: web.1, service: web, series: {{cpu: "90x5", net: "5"}}}}
    expect:
      - at: 1s
        decisions: []
      - at: 3s
        decisions:
          - {{rule: migrate-on-container-problem, service: web, container: web.1}}
""")
    code, output = run(path)
    assert code == 1
    assert "  at 1s (line 9): expected no decision, got 1 decision\n" in output
    assert "    + fired, not expected: migrate-on-container-problem: migrate web/web.1 on worker-1, t0 0s\n" in output
    assert "        reason: (cpu > cpu_high or mem > mem_high) and net < net_low held for 2 samples (cpu=90" in output
    assert "        cooling down until 31s (cooldown 30s)\n" in output


def test_exit_codes_and_a_broken_file_does_not_stop_the_others(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(BASE_TEXT)
    failing = tmp_path / "failing.yml"
    failing.write_text(FAILING.format(rules=DEFAULT))
    broken = tmp_path / "broken.yml"
    broken.write_text("rule_files: [nope.yml]\ntests: []\n")
    assert run(good) == (0, f"PASS {good}: 1 test\nOK: 1 test in 1 file\n")
    assert run(good, failing)[0] == 1
    code, output = run(good, failing, broken)
    assert code == 2
    assert f"PASS {good}: 1 test" in output and f"FAIL {failing}:4:" in output
    assert f"{broken}:1: rule_files: the rule files do not load: " in output
    assert output.splitlines()[-1] == "BROKEN: 1 error in the test files (1 of 3 tests passed in the files that load)"
    assert run(tmp_path / "missing.yml") == (2, f"{tmp_path / 'missing.yml'}: no such file or directory\n"
                                                "BROKEN: 1 error in the test files (0 of 0 tests passed in the files "
                                                "that load)\n")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert run(empty) == (2, f"no test files (*.yml, *.yaml) in {empty}\nBROKEN: 1 error in the test files "
                             "(0 of 0 tests passed in the files that load)\n")


def test_verbose_lists_every_test_that_passed(tmp_path: Path) -> None:
    code, output = run(SHIPPED / "scale-up-on-traffic.yml", verbose=True)
    assert code == 0
    assert f"PASS {SHIPPED / 'scale-up-on-traffic.yml'}:" in output
    assert output.count("PASS ") == len(load_test_file(str(SHIPPED / "scale-up-on-traffic.yml")).tests)


def test_swarmguard_controller_test_rules_is_the_command(tmp_path: Path) -> None:
    out = io.StringIO()
    assert controller_main(["test-rules", str(SHIPPED)], out=out) == 0
    assert out.getvalue().splitlines()[-1].startswith("OK: ")
    failing = tmp_path / "failing.yml"
    failing.write_text(FAILING.format(rules=DEFAULT))
    done = subprocess.run([sys.executable, "-m", "controller.ruletest", str(failing)], capture_output=True, text=True,
                          cwd=ROOT, check=False)
    assert (done.returncode, done.stdout) == (1, DIFF.format(path=failing))


# -- broken test files ------------------------------------------------------------------------------

BASE_TEXT = f"""rule_files: [{DEFAULT}]
tests:
  - name: t
    services:
      - {{name: web, replicas: 2, labels: {{swarmguard.enable: "true"}}}}
    containers:
      - {{id: web.1, service: web, series: {{cpu: "90x3", net: "5"}}}}
    expect:
      - at: 1s
        decisions:
          - {{rule: migrate-on-container-problem, service: web, container: web.1, t0: 0s}}
"""
DECISION = "{rule: migrate-on-container-problem, service: web, container: web.1, t0: 0s}"
SERIES = '{cpu: "90x3", net: "5"}'


def swap(old: str, new: str) -> str:
    assert BASE_TEXT.count(old) == 1, old
    return BASE_TEXT.replace(old, new)


def decision(extra: str) -> str:
    return swap(DECISION, DECISION[:-1] + ", " + extra + "}")


# (id, test file text, line of the message, a fragment of it)
HOSTILE: list[tuple[str, str | bytes, int, str]] = [
    ("python-tag", swap("replicas: 2", "replicas: !!python/object:os.system 2"), 5, "YAML tag"),
    ("replicas-text", swap("replicas: 2", "replicas: many"), 5, "replicas must be a whole number from 0"),
    ("replicas-infinite", swap("replicas: 2", "replicas: 1e999"), 5, "replicas must be a whole number"),
    ("replicas-huge", swap("replicas: 2", "replicas: " + "9" * 40), 5, "replicas must be a whole number"),
    ("replicas-negative", swap("replicas: 2", "replicas: -1"), 5, "replicas must be a whole number"),
    ("services-not-a-list", swap("    services:\n      - {name: web, replicas: 2, labels: {swarmguard.enable: "
                                 "\"true\"}}", "    services: 3"), 4, "expected a list of services"),
    ("series-a-list", swap(SERIES, "[1, 2]"), 7, "expected a mapping"),
    ("series-repeat-huge", swap('"90x3"', '"90x99999999999"'), 7, "the repeat count is larger than 100000"),
    ("series-too-long", swap('"90x3"', '"1x100000"'), 7, "more than 100000 samples"),
    ("series-infinite", swap('"90x3"', '"1e999"'), 7, "'1e999' is not a finite number"),
    ("series-yaml-infinity", swap('"90x3"', "1e999"), 7, "cpu: the value is not a finite number"),
    ("series-not-text", swap('"90x3"', "[1]"), 7, "a series is a text like"),
    ("series-unknown-metric", swap("cpu:", "gpu:"), 7, "unknown key 'gpu'"),
    ("series-lengths", swap('net: "5"', 'net: "5 5"'), 7, "net has 2 samples, cpu has 4"),
    ("series-gaps", swap(SERIES, '{cpu: "90 _ 90 90", net: "5 5 _ 5"}'), 7, "net has its _ or stale at other places"),
    ("stale-in-a-container", swap('"90x3"', '"90 stale"'), 7, "stale is for node series"),
    ("at-not-a-time", swap("at: 1s", "at: soon"), 9, "at must be a time like 2s"),
    ("at-bool", swap("at: 1s", "at: true"), 9, "at must be a time"),
    ("at-negative", swap("at: 1s", "at: -1"), 9, "at must be a time"),
    ("at-huge", swap("at: 1s", "at: 1e300"), 9, "is after the last sample (3s)"),
    ("at-after-the-last-sample", swap("at: 1s", "at: 10s"), 9, "at 10s is after the last sample (3s)"),
    ("at-between-samples", swap("at: 1s", "at: 1.5s"), 9, "at 1.5s is not a sample time (one every 1s)"),
    ("t0-after-at", swap("t0: 0s", "t0: 2s"), 11, "t0 2s is after the decision's time"),
    ("unknown-rule", swap("rule: migrate-on-container-problem", "rule: migrate-everything"), 11,
     "unknown rule 'migrate-everything' (the rule files hold: scale-up-on-traffic, migrate-on-container-problem,"),
    ("rule-name-not-a-name", swap("rule: migrate-on-container-problem", "rule: \"a b\""), 11,
     "rule must be a rule name"),
    ("unknown-service", swap("service: web, container", "service: api, container"), 11,
     "service 'api' is not declared"),
    ("unknown-container", swap("container: web.1, t0", "container: web.9, t0"), 11,
     "container 'web.9' is not declared"),
    ("container-of-another-service", swap("services:\n", "services:\n      - {name: api}\n")
     .replace("container: web.1, t0", "container: web.1, service: api, t0").replace(
         "service: web, container: web.1, service: api", "container: web.1, service: api"), 12,
     "container web.1 belongs to web, not api"),
    ("action-mismatch", decision("action: scale_up"), 11,
     "rule migrate-on-container-problem runs migrate, not scale_up"),
    ("unknown-action", decision("action: reboot"), 11, "action must be one of migrate, scale_up, scale_down"),
    ("container-missing", swap(", container: web.1, t0: 0s", ", t0: 0s"), 11,
     "is a container rule: name the container"),
    ("via-alert-without-alerts", decision("via: alert"), 11, "via: alert needs a container with alerts: true"),
    ("via-unknown", decision("via: email"), 11, "via must be alert or scrape"),
    ("target-replicas-text", decision("target_replicas: x"), 11, "target_replicas must be a whole number"),
    ("decisions-a-mapping", swap("decisions:\n          - " + DECISION, "decisions: {}"), 10,
     "expected a list of decisions"),
    ("unknown-key", swap("  - name: t\n", "  - name: t\n    colour: red\n"), 4, "unknown key 'colour'"),
    ("duplicate-key", swap("  - name: t\n", "  - name: t\n    name: u\n"), 4, "duplicate key 'name'"),
    ("checks-nothing", BASE_TEXT.split("    expect:")[0], 3, "the test checks nothing"),
    ("rule-files-empty", swap(f"rule_files: [{DEFAULT}]", "rule_files: []"), 1, "rule_files must be a list"),
    ("rule-file-missing", swap(f"rule_files: [{DEFAULT}]", "rule_files: [nope.yml]"), 1,
     "rule_files: the rule files do not load: "),
    ("test-threshold-unknown", swap("  - name: t\n", "  - name: t\n    thresholds: {cpu_hgh: 80}\n"), 4,
     "test 't': the rule files do not load: threshold override: unknown threshold 'cpu_hgh'"),
    ("threshold-unknown", swap("tests:\n", "thresholds: {cpu_hgh: 80}\ntests:\n"), 2,
     "rule_files: the rule files do not load: threshold override: unknown threshold 'cpu_hgh'"),
    ("rule-file-missing-with-thresholds", swap(f"rule_files: [{DEFAULT}]\ntests:\n",
                                               "rule_files: [nope.yml]\nthresholds: {cpu_high: 80}\ntests:\n"), 1,
     "rule_files: the rule files do not load: "),
    ("threshold-text", swap("tests:\n", "thresholds: {cpu_high: high}\ntests:\n"), 2,
     "thresholds: cpu_high: expected a finite number, got 'high'"),
    ("threshold-name", swap("tests:\n", "thresholds: {CPU: 1}\ntests:\n"), 2, "'CPU' is not a valid name"),
    ("interval-too-small", swap("tests:\n", "interval: 1ms\ntests:\n"), 2, "interval must be from 0.2s to 60s"),
    ("interval-huge", swap("tests:\n", "interval: 1e300\ntests:\n"), 2, "interval must be from"),
    ("never-backwards", swap("    expect:", "    never:\n      - {from: 3s, to: 1s}\n    expect:"), 9,
     "from 3s is after to 1s"),
    ("never-after-the-end", swap("    expect:", "    never:\n      - {to: 1h}\n    expect:"), 9,
     "to 3600s is after the last sample (3s)"),
    ("never-unknown-rule", swap("    expect:", "    never:\n      - {rule: nope}\n    expect:"), 9,
     "unknown rule 'nope'"),
    ("stale-node-with-a-container-sample", swap("    expect:", "    nodes:\n      - {name: worker-1, series: {cpu: "
                                                 "\"10 stale 10 10\"}}\n    expect:"), 9,
     "node worker-1 is stale at 1s but its container web.1 has a sample then: write _ there"),
    ("node-unknown-metric", swap("    expect:", "    nodes:\n      - {name: worker-1, series: {node_cpu: \"1\"}}"
                                                 "\n    expect:"), 9, "unknown key 'node_cpu'"),
    ("labels-a-list", swap('labels: {swarmguard.enable: "true"}', "labels: [a]"), 5, "labels must be a mapping"),
    ("name-too-long", swap("  - name: t\n", f"  - name: {'x' * 300}\n"), 3, "name must be one line of text"),
    ("duplicate-test-names", BASE_TEXT + BASE_TEXT.split("tests:\n")[1], 12,
     "a test of this name is already at line 3"),
    ("duplicate-container", swap("    expect:", "      - {id: web.1, service: web, series: {cpu: \"1\"}}\n"
                                                "    expect:"), 8, "a container of this id is already declared"),
    ("too-much-work", swap("    containers:\n      - {id: web.1, service: web, series: " + SERIES + "}\n",
                           "    containers:\n      - {id: web.1, service: web, series: " + SERIES + "}\n").replace(
        "{name: web, replicas: 2,", "{name: web, replicas: 999, series: {cpu: \"1x9999\"},"), 3,
     "more than 2000000 container samples"),
    ("service-containers-huge", swap("replicas: 2,", "replicas: 2, containers: 100000, series: {cpu: \"1\"},"), 5,
     "100000 containers, at most 1000"),
    ("control-character", swap("  - name: t\n", '  - name: "t\\x07"\n'), 3, "control characters"),
    ("empty-file", "", 1, "the file is empty"),
    ("a-list", "- a\n", 1, "expected a mapping with rule_files: and tests:"),
    ("not-yaml", "rule_files: [\n", 2, "not valid YAML"),
    ("second-document", BASE_TEXT + "---\na: 1\n", 12, "a second document"),
    ("deep-nesting", "a: " + "[" * 100, 1, "nested deeper than 64 levels"),
    ("tests-empty", swap(BASE_TEXT.split("tests:\n")[1], "").replace("tests:\n", "tests: []\n"), 2,
     "tests: the list is empty"),
    ("not-utf-8", BASE_TEXT.encode().replace(b"name: t", b"name: \xff"), 3, "not UTF-8 text"),
]


@pytest.mark.parametrize(("text", "line", "fragment"), [c[1:] for c in HOSTILE], ids=[c[0] for c in HOSTILE])
def test_a_broken_test_file_is_exit_2_with_file_line_messages(tmp_path: Path, text: str | bytes, line: int,
                                                              fragment: str) -> None:
    path = tmp_path / "t.yml"
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    code, output = run(path)
    lines = output.splitlines()
    assert code == 2, output
    assert "Traceback" not in output and "internal error" not in output
    assert lines[-1].startswith("BROKEN: ")
    assert all(message.startswith(f"{path}:") for message in lines[:-1]), output
    assert any(message.startswith(f"{path}:{line}: ") and fragment in message for message in lines), output


SAME_AS_RULE_FILES = [  # (test file change, the rule file's same value in a rule)
    ("label-value-two-lines", swap('{swarmguard.enable: "true"}', '{swarmguard.enable: "a\\nb"}'),
     'labels: {swarmguard.enable: "a\\nb"}'),
    ("label-name-bad", swap('{swarmguard.enable: "true"}', '{"-x": "true"}'), 'labels: {"-x": "true"}'),
    ("label-value-a-list", swap('{swarmguard.enable: "true"}', '{swarmguard.enable: [1]}'),
     "labels: {swarmguard.enable: [1]}"),
]


@pytest.mark.parametrize(("test_text", "rule_line"), [c[1:] for c in SAME_AS_RULE_FILES],
                         ids=[c[0] for c in SAME_AS_RULE_FILES])
def test_a_test_file_says_what_a_rule_file_says_about_the_same_bad_value(tmp_path: Path, test_text: str,
                                                                         rule_line: str) -> None:
    """Both readers check a label selector in one place (controller/rules/fields.py): the message
    after `file:line: where: ` is the same."""
    test_file = tmp_path / "t.yml"
    test_file.write_text(test_text)
    rule_file = tmp_path / "r.yml"
    rule_file.write_text(f"rules:\n  - name: r\n    when: cpu > 1\n    action: migrate\n    {rule_line}\n")
    with pytest.raises(TestFileError) as test_error:
        load_test_file(str(test_file))
    with pytest.raises(RuleError) as rule_error:
        load_rules([str(rule_file)])
    [from_test] = [e.split("service web: ", 1)[1] for e in test_error.value.errors if "labels" in e]
    [from_rule] = [e.split("rule r: ", 1)[1] for e in rule_error.value.errors]
    assert from_test == from_rule and from_test.startswith("labels"), (from_test, from_rule)


def test_a_label_value_written_as_a_number_selects_in_a_test_as_in_a_rule(tmp_path: Path) -> None:
    """`tier: 3` unquoted is the label text "3" in both files, so the rule's selector matches the service."""
    rules = tmp_path / "r.yml"
    rules.write_text("rules:\n  - name: r\n    labels: {tier: 3}\n    when: cpu > 75\n    action: migrate\n")
    test_file = tmp_path / "t.yml"
    test_file.write_text(f"""rule_files: [{rules}]
tests:
  - name: t
    services:
      - {{name: web, replicas: 2, labels: {{tier: 3}}}}
    containers:
      - {{id: web.1, service: web, series: {{cpu: "90x2"}}}}
    expect:
      - at: 0s
        decisions:
          - {{rule: r, service: web, container: web.1}}
""")
    code, output = run(test_file)
    assert code == 0 and "OK: 1 test in 1 file" in output, output


def test_the_base_of_the_hostile_cases_is_a_sound_test(tmp_path: Path) -> None:
    path = tmp_path / "t.yml"
    path.write_text(BASE_TEXT)
    assert run(path)[0] == 0


def test_a_broken_rule_file_under_test_is_reported_through_the_test_file(tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    rules.write_text("rules:\n  - name: r\n    when: cpu >\n    action: migrate\n")
    path = tmp_path / "t.yml"
    path.write_text(swap(f"rule_files: [{DEFAULT}]", "rule_files: rules.yml"))
    with pytest.raises(TestFileError) as caught:
        load_test_file(str(path))
    [message] = caught.value.errors
    assert message.startswith(f"{path}:1: rule_files: the rule files do not load: {rules}:3: rule r: when: "
                              "syntax error")


def test_a_fifo_or_a_directory_is_refused_without_blocking_and_an_empty_directory_is_reported(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo.yml"
    os.mkfifo(fifo)
    (tmp_path / "folder.yml").mkdir()
    empty = tmp_path / "empty"
    empty.mkdir()
    code, output = run(tmp_path, empty)
    assert code == 2
    assert f"{fifo}: not a regular file (a FIFO); test files must be regular files" in output
    assert f"{tmp_path / 'folder.yml'}: not a regular file (a directory)" in output
    assert f"no test files (*.yml, *.yaml) in {empty}" in output


# -- fuzzing the fields of a sound test file --------------------------------------------------------

VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-10, 10), st.integers(min_value=10 ** 6, max_value=10 ** 30),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["1s", "0s", "2s", "-1s", "1.5s", "1h", "90x3", "_", "stale", "global", "web", "web.1",
                     "migrate-on-container-problem", "scale_up", "alert", "1x99999999", "\u202e", "!!python"]),
    st.lists(st.integers(0, 3), max_size=3), st.dictionaries(st.sampled_from(["a", "cpu", "at"]), st.integers(0, 3),
                                                             max_size=2),
)
PLACES = [("tests", 0, "services", 0, "replicas"), ("tests", 0, "services", 0, "name"),
          ("tests", 0, "services", 0, "labels"), ("tests", 0, "containers", 0, "series", "cpu"),
          ("tests", 0, "containers", 0, "series", "net"), ("tests", 0, "containers", 0, "id"),
          ("tests", 0, "containers", 0, "node"), ("tests", 0, "containers", 0, "alerts"),
          ("tests", 0, "expect", 0, "at"), ("tests", 0, "expect", 0, "decisions"),
          ("tests", 0, "expect", 0, "decisions", 0, "t0"), ("tests", 0, "expect", 0, "decisions", 0, "rule"),
          ("tests", 0, "expect", 0, "decisions", 0, "container"), ("tests", 0, "expect", 0, "decisions", 0, "via"),
          ("tests", 0, "interval"), ("tests", 0, "thresholds"), ("tests", 0, "apply_decisions"), ("tests", 0, "never"),
          ("interval",), ("rule_files",), ("tests", 0), ("tests",)]


@settings(max_examples=150, deadline=None, derandomize=CI, database=None if CI else settings().database,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(PLACES), VALUES), min_size=1, max_size=3))
def test_fuzzed_fields_give_a_verdict_or_file_line_messages_never_a_crash(
        tmp_path: Path, changes: list[tuple[tuple[Any, ...], Any]]) -> None:
    doc = yaml.safe_load(BASE_TEXT)
    for place, value in changes:
        target = doc
        try:
            for key in place[:-1]:
                target = target[key]
            target[place[-1]] = value
        except (KeyError, IndexError, TypeError):
            continue
    path = tmp_path / "fuzz.yml"
    try:
        path.write_text(yaml.safe_dump(doc, allow_unicode=True))
    except (yaml.YAMLError, UnicodeEncodeError):
        return
    code, output = run(path)
    event(f"exit {code}")
    assert code in (0, 1, 2)
    assert "Traceback" not in output and "internal error" not in output
    if code == 2:
        assert all(line.startswith(f"{path}:") for line in output.splitlines()[:-1]), output


def test_the_example_and_the_failing_output_in_docs_rules_md_are_what_the_command_does(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    doc = (ROOT / "docs" / "rules.md").read_text()
    section = doc.split("## Testing rules", 1)[1]
    example = section.split("```yaml\n", 1)[1].split("```", 1)[0]
    shown = section.split("    $ swarmguard-controller test-rules rules/tests/failing.yml\n", 1)[1]
    shown = "".join(line[4:] + "\n" for line in shown.split("\n\n", 1)[0].splitlines())
    (tmp_path / "rules" / "tests").mkdir(parents=True)
    shutil.copy(DEFAULT, tmp_path / "rules" / "default.yml")
    (tmp_path / "rules" / "tests" / "example.yml").write_text(example)
    mistakes = example.replace('"40 90 90 90x3"', '"40 90 70 90x3"').replace("at: 180s", "at: 181s")
    (tmp_path / "rules" / "tests" / "failing.yml").write_text(mistakes)
    monkeypatch.chdir(tmp_path)
    assert run("rules/tests/example.yml")[0] == 0
    assert run("rules/tests/failing.yml") == (1, shown)
