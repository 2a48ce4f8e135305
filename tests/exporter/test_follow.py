"""A fast memory climb is read every 0.25 s between sweeps and sent once it has kept climbing; a jump that holds is not."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.alerts import AlertSender, Thresholds
from exporter.collect import Collector, NodeLink
from exporter.discovery import Inventory
from exporter.follow import Follower, FollowSettings, climbs, judge
from exporter.metrics import SelfMetrics
from exporter.predict import TrendSettings
from exporter.sample import ContainerSample
from exporter.service import Exporter
from exporter.settings import ExporterSettings
from sgcommon.alert import Prediction, decode_alert
from sgcommon.settings import SettingsError
from tests.exporter.conftest import FakeClock, FakeHost, container
from tests.exporter.peers import Controller
from tests.exporter.samples import CID, sample, sweep

SETTINGS = FollowSettings(interval=0.25, rate=3.0, reads=4, horizon=10.0, limit=100.0, confidence=2.0)
T0 = 1_700_000_000.0
OTHER = "e" * 64


class Offers:
    """Stands in for the AlertSender: records what is offered, with its prediction."""

    def __init__(self) -> None:
        self.offered: list[tuple[float, float, Prediction | None]] = []

    def offer(self, s: ContainerSample, *, predicted: Prediction | None = None) -> bool:
        self.offered.append((round(s.ts - T0, 3), s.memory_percent, predicted))
        return True


class Memory:
    """A container's memory over time and a Follower reading it on a fake clock (seconds after T0)."""

    def __init__(self, level: dict[float, float] | None = None, settings: FollowSettings = SETTINGS) -> None:
        self.offers = Offers()
        self.follower = Follower(self.offers, settings)  # type: ignore[arg-type]
        self.level = level or {}
        self.reads: list[float] = []

    def at(self, t: float) -> ContainerSample:
        return sample(ts=T0 + t, mem_pct=self.level[round(t, 3)])

    def sweep(self, t: float) -> None:
        self.follower.on_sweep(sweep(self.at(t)), t)

    def until(self, end: float) -> None:
        """Takes every read due before `end` (the next sweep), as the collection loop does."""
        while (due := self.follower.next_due()) is not None and due < end:
            self.reads.append(round(due, 3))
            self.follower.run_due(due, lambda cid: self.at(due))


def leak(start: float = 8.0, per_s: float = 12.0, *, until: float = 6.0, from_t: float = 1.0) -> dict[float, float]:
    """Flat at `start` until `from_t`, then `per_s` points a second; every 0.25 s."""
    return {round(i * 0.25, 3): start + max(0.0, i * 0.25 - from_t) * per_s for i in range(int(until * 4) + 1)}


def test_a_fast_climb_is_read_every_quarter_second_and_sent_once_it_kept_climbing_for_a_whole_interval() -> None:
    m = Memory(leak())
    for t in (0.5, 1.5):  # 8 % then 14 %: 6 points in a second, over `rate`
        m.sweep(t)
        m.until(t + 1.0)
    assert m.reads == [1.75, 2.0, 2.25]  # three climbs after the sweep that saw it: nothing sent yet
    assert m.offers.offered == []
    m.sweep(2.5)  # the fourth climb: the run is judged, and all five of its samples go out, oldest first
    sent = m.offers.offered
    assert [t for t, _, _ in sent] == [1.5, 1.75, 2.0, 2.25, 2.5]
    assert [mem for _, mem, _ in sent] == [14.0, 17.0, 20.0, 23.0, 26.0]
    prediction = sent[0][2]
    assert prediction is not None and prediction.metric == "mem"
    assert prediction.at - T0 == pytest.approx(1.0 + 92.0 / 12.0)  # where the line reaches 100 %
    m.until(3.5)
    assert [t for t, _, _ in m.offers.offered[5:]] == [2.75, 3.0, 3.25]  # each further read at once
    assert m.follower.stats.started == 1 and m.follower.stats.sent == 8


def test_a_jump_that_holds_is_read_once_more_and_sends_nothing() -> None:
    # a noisy load's new level: the allocation is over by the next read
    m = Memory({0.5: 50.0, 1.5: 75.0, 1.75: 75.0, 2.0: 75.0, 2.5: 74.0})
    m.sweep(0.5)
    m.sweep(1.5)
    m.until(2.5)
    assert m.reads == [1.75] and m.follower.next_due() is None
    m.sweep(2.5)
    assert m.offers.offered == [] and m.follower.stats.started == 1


def test_an_allocation_that_stops_before_the_fourth_climb_sends_nothing() -> None:
    m = Memory({0.5: 45.0, 1.5: 50.0, 1.75: 58.0, 2.0: 66.0, 2.25: 73.0, 2.5: 73.5})
    m.sweep(0.5)
    m.sweep(1.5)
    m.until(2.5)
    m.sweep(2.5)  # half a point in 0.25 s: under 3 points a second; the run ends
    assert m.offers.offered == []
    m.level[2.75] = 73.5  # 23.5 points above the sweep before: a new run, which the next read ends
    m.until(3.5)
    assert m.reads == [1.75, 2.0, 2.25, 2.75] and m.follower.next_due() is None and m.offers.offered == []


def test_a_slow_climb_is_not_followed() -> None:
    m = Memory(leak(start=40.0, per_s=1.0, from_t=0.0))
    for t in (0.5, 1.5, 2.5, 3.5):
        m.sweep(t)
        m.until(t + 1.0)
    assert m.reads == [] and m.offers.offered == [] and m.follower.stats.started == 0


def test_a_steady_climb_that_will_not_reach_the_limit_within_the_horizon_is_followed_but_not_sent() -> None:
    m = Memory(leak(start=10.0, per_s=4.0, from_t=0.0))  # 4 points a second from 10 %: 100 % in 22 s
    for t in (0.5, 1.5, 2.5, 3.5):
        m.sweep(t)
        m.until(t + 1.0)
    assert len(m.reads) == 9 and m.offers.offered == []


def test_a_read_that_fails_or_a_container_that_is_gone_ends_the_run() -> None:
    m = Memory(leak())
    m.sweep(0.5)
    m.sweep(1.5)
    m.follower.run_due(1.75, lambda cid: None)
    assert m.follower.next_due() is None
    m.sweep(2.5)  # a climb since 1.5 starts a new run; a sweep without the container forgets it
    assert m.follower.next_due() == 2.75
    m.follower.on_sweep(sweep(sample(cid=OTHER, ts=T0 + 3.5, mem_pct=5.0)), 3.5)
    assert m.follower.next_due() is None


def test_climbs_and_judge_read_the_rate_and_the_line() -> None:
    assert climbs(sample(ts=T0, mem_pct=10.0), sample(ts=T0 + 0.25, mem_pct=10.75), 3.0)
    assert not climbs(sample(ts=T0, mem_pct=10.0), sample(ts=T0 + 0.25, mem_pct=10.7), 3.0)
    assert not climbs(sample(ts=T0, mem_pct=10.0), sample(ts=T0, mem_pct=20.0), 3.0)  # no time between them
    steep = [sample(ts=T0 + i * 0.25, mem_pct=20.0 + 3.0 * i) for i in range(5)]
    assert judge(steep, SETTINGS) is not None
    zigzag = [sample(ts=T0 + i * 0.25, mem_pct=v) for i, v in enumerate((20.0, 35.0, 22.0, 38.0, 24.0))]
    assert judge(zigzag, SETTINGS) is None


def test_the_exporter_settings_check_the_follow_reads() -> None:
    s = ExporterSettings()
    assert (s.follow_interval, s.follow_rate, s.follow_reads) == (0.25, 3.0, 4)
    assert s.effective_follow_interval == 0.25
    assert ExporterSettings(predict_horizon=0).effective_follow_interval == 0.0  # predictive alerts off: no follow
    assert ExporterSettings(interval=0.2).effective_follow_interval == 0.1
    with pytest.raises(SettingsError) as caught:
        ExporterSettings(follow_interval=-1, follow_rate=0, follow_reads=1)
    for name in ("follow_interval", "follow_rate", "follow_reads"):
        assert name in str(caught.value)


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


def test_the_running_exporter_sends_a_leak_read_between_sweeps(host: FakeHost, clock: FakeClock,
                                                              controller: Controller) -> None:
    mib = 1 << 20
    host.add_container(CID, pid=50, usage=20 * mib)
    alerts = AlertSender(controller.url, token=None, thresholds=Thresholds(), min_gap=0.125, clock=clock.time)
    metrics = SelfMetrics()
    collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root, link=NodeLink("eth0", 100.0, "setting"),
                          on_error=metrics.error, clock=clock.time, mono=clock.mono)
    inventory = Inventory("worker-1")
    inventory.replace({CID: container(CID, pid=50, memory_limit=256 * mib)})
    # the sweep-based predictive alert flags the sweep that completes the run too: the run's older reads go first
    trend = TrendSettings(horizon=10.0, window=4.0, limit=100.0, confidence=2.0)
    exporter = Exporter(collector, inventory, interval=1.0, alerts=alerts, self_metrics=metrics, follow=SETTINGS,
                        trend=trend, mono=clock.mono)
    used = 20.0

    def step(seconds: float) -> None:
        nonlocal used
        clock.advance(seconds)
        used += 30.0 * seconds  # 30 MiB a second
        host.set_memory(CID, usage=int(used * mib), inactive=0)

    exporter.tick()  # the first reading: a sample needs two
    step(1.0)
    exporter.tick()
    step(1.0)
    exporter.tick()  # +30 MiB: 11.7 points in a second, followed from here
    for _ in range(3):
        assert exporter.next_due() == pytest.approx(clock.mono() + 0.25)
        step(0.25)
        exporter.confirm_due()
    assert controller.received == []  # three climbs: not yet
    step(0.25)
    exporter.tick()  # the fourth: the run goes out
    got = [decode_alert(body) for _, body in controller.wait_for(5)]
    alerts.close()
    assert [round(a.t0 - got[0].t0, 3) for a in got] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert all(a.predicted is not None and a.predicted.metric == "mem" for a in got)
    assert got[-1].metrics["mem"] == pytest.approx(100.0 * 110.0 / 256.0, abs=0.01)
    body = exporter.exposition().decode()
    assert exporter.trends is not None and exporter.trends.stats.sent == 0  # its offer of the same sample was a duplicate
    assert "swarmguard_exporter_follow_sent_total 5.0" in body and "swarmguard_exporter_follow_reads_total 3.0" in body
    collector.close()
