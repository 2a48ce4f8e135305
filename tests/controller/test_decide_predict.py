"""The shipped predictive rules through the engine and the real cache: they move a climbing container
before its threshold or its limit, leave noise and flat loads alone, and share one history per call."""
from __future__ import annotations

from pathlib import Path

from controller.cache import MetricsCache
from controller.decide import RuleState, evaluate
from controller.model import ContainerMetrics, ServiceInfo
from controller.rules import load_rules

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = load_rules([str(ROOT / "rules" / "default.yml")])
WEB = ServiceInfo("web", 1, {"swarmguard.enable": "true"})
T = 1_800_000_000.0
PREDICTIVE = {"migrate-before-oom", "migrate-before-memory-threshold", "migrate-before-cpu-threshold"}


def replay(samples: list[tuple[float, float, float]], *, overrides: dict[str, float] | None = None) -> list[tuple[float, str]]:
    """(ts, mem, cpu) samples of one container, each evaluated as it arrives: (ts, rule) of each decision."""
    rules = DEFAULT if not overrides else load_rules([str(ROOT / "rules" / "default.yml")], overrides=overrides)
    cache = MetricsCache()
    cache.set_services({"web": WEB})
    state = RuleState()
    decided = []
    for ts, mem, cpu in samples:
        cache.add_container(ContainerMetrics("worker-1", "web", "c1", "t1", ts, cpu=cpu, mem=mem, mem_mb=mem * 5.12,
                                             net=0.5, net_rx=0.1, net_tx=0.1))
        decided += [(ts, d.rule) for d in evaluate(rules, cache.snapshot(ts + 0.01), ts + 0.01, state)]
    return decided


def test_a_slow_memory_climb_is_moved_seconds_before_it_crosses_mem_high() -> None:
    climb = [(T + i, 40.0 + max(0, i - 30), 10.0) for i in range(80)]  # flat 30 s, then +1 %/s: 80 % at T+70
    [(ts, rule), *_] = replay(climb)
    assert rule == "migrate-before-memory-threshold" and T + 60 <= ts <= T + 66


def test_with_the_predictive_rules_off_the_threshold_rule_fires_after_the_crossing() -> None:
    climb = [(T + i, 40.0 + max(0, i - 30), 10.0) for i in range(80)]
    [(ts, rule), *_] = replay(climb, overrides={"trend_from": 100.0})
    assert rule == "migrate-on-container-problem" and ts > T + 70


def test_a_cpu_climb_is_moved_before_it_crosses_cpu_high() -> None:
    climb = [(T + i, 30.0, 40.0 + max(0, i - 30)) for i in range(80)]  # 75 % at T+65
    [(ts, rule), *_] = replay(climb)
    assert rule == "migrate-before-cpu-threshold" and ts < T + 63


def test_a_fast_leak_is_moved_by_the_oom_rule_seconds_before_the_limit() -> None:
    leak = [(T + i, 8.0 + max(0.0, i - 30) * 11.7, 5.0) for i in range(38)]  # 30 MiB/s on 256 MiB: 100 % at T+37.9
    [(ts, rule), *_] = replay(leak)
    assert rule == "migrate-before-oom" and ts <= T + 35


def test_a_flat_load_above_the_threshold_is_left_to_the_threshold_rule_alone() -> None:
    decided = replay([(T + i, 90.0, 10.0) for i in range(70)])
    assert {rule for _, rule in decided} == {"migrate-on-container-problem"}


def test_a_noisy_steady_load_is_left_alone() -> None:
    import random

    rnd = random.Random(3)
    noisy = [(T + i, 60.0 + rnd.uniform(-15, 15), 60.0 + rnd.uniform(-15, 15)) for i in range(600)]
    assert [d for d in replay(noisy) if d[1] in PREDICTIVE] == []


def test_rules_reading_one_container_share_one_history_per_call() -> None:
    fetched = []

    class Counting(dict):  # type: ignore[type-arg]
        def get(self, key, default=None):  # type: ignore[no-untyped-def]
            fetched.append(key)
            return super().get(key, default)

    cache = MetricsCache()
    cache.set_services({"web": WEB})
    for i in range(40):
        cache.add_container(ContainerMetrics("worker-1", "web", "c1", "t1", T + i, cpu=60.0, mem=60.0 + 0.1 * i,
                                             mem_mb=300.0, net=0.5, net_rx=0.1, net_tx=0.1))
    snapshot = cache.snapshot(T + 40)
    counted = type(snapshot)(snapshot.containers, Counting(snapshot.history), snapshot.services, snapshot.nodes)
    evaluate(DEFAULT, counted, T + 40, RuleState())
    assert fetched == ["c1"]  # three predictive rules read it, one fetch
