"""`swarmguard-controller rules apply|status|prune|reset` against the fake engine: validated exactly
as `check-rules` validates (with the controller service's threshold overrides), nothing written on an
error, the set stored and made active otherwise."""
from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest

from controller.__main__ import main
from controller.ruleconfigs import RuleConfigs
from controller.rules.bundle import from_paths
from controller.rules_command import threshold_args
from sgcommon.engine.swarm import SwarmAdapter
from tests.fakes.engine import FakeEngine, service_spec

ROOT = Path(__file__).resolve().parents[2]
BROKEN = "rules:\n  - name: bad\n    when: cpu >> 2\n    action: migrate\n"


def run(*argv: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), env=env or {}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def controller(fake_engine: FakeEngine) -> FakeEngine:
    """The fake cluster with a controller service running with the lab's network overrides."""
    spec = service_spec("swarmguard_controller", healthcheck=False)
    spec["TaskTemplate"]["ContainerSpec"]["Env"] = ["SWARMGUARD_THRESHOLD_NET_HIGH=3", "SWARMGUARD_THRESHOLD_NET_LOW=1",
                                                    "CONTROLLER_RULES=/etc/swarmguard/rules"]
    spec["TaskTemplate"]["ContainerSpec"]["Args"] = ["run", "--threshold", "cpu_high=80"]
    fake_engine.create_service(spec)
    return fake_engine


@pytest.fixture
def rules(tmp_path: Path) -> Path:
    directory = tmp_path / "rules"
    shutil.copytree(ROOT / "rules", directory)
    return directory


def test_apply_validates_stores_and_activates_the_set(controller: FakeEngine, rules: Path, swarm: SwarmAdapter) -> None:
    code, out, err = run("rules", "apply", str(rules), "--docker-host", controller.base_url)
    name = from_paths([str(rules)]).name
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0] == ("checking with the threshold overrides of service swarmguard_controller: "
                        "net_high=3, net_low=1, cpu_high=80")
    assert lines[1] == "OK: 8 rules in 1 file"
    assert lines[2] == f"applied {name} (default.yml; stored now)"
    active = RuleConfigs(swarm).active()
    assert active is not None and active.name == name


def test_a_broken_set_is_refused_with_check_rules_messages_and_nothing_is_written(
        controller: FakeEngine, rules: Path, swarm: SwarmAdapter) -> None:
    (rules / "default.yml").write_text(BROKEN)
    code, out, _ = run("rules", "apply", str(rules), "--docker-host", controller.base_url, "--service", "")
    check_out = io.StringIO()
    assert main(["check-rules", str(rules)], env={}, out=check_out) == 1
    assert code == 1 and out == check_out.getvalue()
    assert out.startswith(f"{rules}/default.yml:3: rule bad: when:")
    assert swarm.list_configs() == []
    assert not any(method == "POST" for method, _ in controller.requests)


def test_a_set_the_controller_would_refuse_for_its_overrides_is_refused_at_apply(
        controller: FakeEngine, tmp_path: Path, swarm: SwarmAdapter) -> None:
    (tmp_path / "mine.yml").write_text("thresholds: {cpu_high: 90}\n"
                                       "rules:\n  - {name: hot, when: cpu > cpu_high, action: migrate}\n")
    code, out, _ = run("rules", "apply", str(tmp_path), "--docker-host", controller.base_url)
    assert code == 1
    assert "threshold override: unknown threshold 'net_high' (defined: cpu_high)" in out
    assert swarm.list_configs() == []


def test_apply_names_a_missing_controller_service_and_writes_nothing(controller: FakeEngine, rules: Path,
                                                                     swarm: SwarmAdapter) -> None:
    code, out, err = run("rules", "apply", str(rules), "--docker-host", controller.base_url, "--service", "nope")
    assert code == 1 and out == ""
    assert err.startswith("swarmguard-controller rules apply: no service nope: name the controller's service")
    assert swarm.list_configs() == []


def test_a_dry_run_names_the_set_and_needs_no_engine(rules: Path) -> None:
    code, out, _ = run("rules", "apply", str(rules), "--dry-run", "--service", "",
                       "--docker-host", "http://127.0.0.1:9")
    assert code == 0
    assert out.splitlines()[-1] == f"dry run: would apply {from_paths([str(rules)]).name} (default.yml); nothing written"


def test_file_names_a_config_cannot_carry_are_refused_at_apply(controller: FakeEngine, tmp_path: Path) -> None:
    shutil.copy(ROOT / "rules" / "default.yml", tmp_path / "my rules.yml")
    code, out, _ = run("rules", "apply", str(tmp_path), "--docker-host", controller.base_url)
    assert code == 1 and "my rules.yml: a stored rule set takes file names" in out
    assert out.splitlines()[-1] == "FAILED: 1 error; nothing applied"


def test_status_prune_and_reset(controller: FakeEngine, rules: Path, swarm: SwarmAdapter) -> None:
    code, out, _ = run("rules", "status", "--docker-host", controller.base_url)
    assert code == 0 and out.startswith("active rule set: none (the controller runs its rule files")
    names = []
    for limit in (81, 82, 83):
        text = (ROOT / "rules" / "default.yml").read_text().replace("cpu_high: 75", f"cpu_high: {limit}")
        (rules / "default.yml").write_text(text)
        assert run("rules", "apply", str(rules), "--docker-host", controller.base_url)[0] == 0
        names.append(from_paths([str(rules)]).name)
    code, out, _ = run("rules", "status", "--docker-host", controller.base_url)
    lines = out.splitlines()
    assert lines[0].startswith(f"active rule set: {names[2]}, applied ") and lines[0].endswith("files default.yml")
    assert lines[1] == "stored rule sets (3, most recently applied first):"
    assert lines[2].startswith(f"  * {names[2]}") and lines[3].startswith(f"    {names[1]}")
    code, out, _ = run("rules", "prune", "--keep", "2", "--docker-host", controller.base_url)
    assert (code, out) == (0, f"removed 1 stored rule set(s)\n  {names[0]}\n")
    code, out, _ = run("rules", "reset", "--docker-host", controller.base_url)
    assert (code, out) == (0, f"no rule set is active now: the controller goes back to its rule files (was: {names[2]})\n")
    assert RuleConfigs(swarm).active() is None


def test_apply_with_keep_prunes_after_applying(controller: FakeEngine, rules: Path, swarm: SwarmAdapter) -> None:
    for limit in (81, 82, 83):
        text = (ROOT / "rules" / "default.yml").read_text().replace("cpu_high: 75", f"cpu_high: {limit}")
        (rules / "default.yml").write_text(text)
        code, out, _ = run("rules", "apply", str(rules), "--keep", "1", "--docker-host", controller.base_url)
        assert code == 0
    assert [c.name for c in RuleConfigs(swarm).stored()] == [from_paths([str(rules)]).name]
    assert run("rules", "prune", "--keep", "0", "--docker-host", controller.base_url)[0] == 1


def test_an_engine_that_cannot_be_reached_is_a_message_and_exit_1() -> None:
    code, out, err = run("rules", "status", "--docker-host", "http://127.0.0.1:9")
    assert code == 1 and out == "" and err.startswith("swarmguard-controller rules status: ")
    assert "engine unreachable" in err


def test_threshold_options_are_read_from_a_command_line() -> None:
    words = ["swarmguard-controller", "run", "--threshold", "a=1", "--threshold=b=2", "--port", "5000", "--threshold"]
    assert threshold_args(words) == ["a=1", "b=2"]
