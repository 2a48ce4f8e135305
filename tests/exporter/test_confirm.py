"""A breach is confirmed by a second read of that container after the confirm delay, not a whole interval later."""
from __future__ import annotations

from collections.abc import Iterator

import pytest

from exporter.alerts import AlertSender, Thresholds
from exporter.collect import Collector, NodeLink
from exporter.confirm import Confirmer, confirms
from exporter.discovery import Inventory
from exporter.metrics import SelfMetrics
from exporter.service import Exporter
from sgcommon.alert import decode_alert
from tests.exporter.conftest import FakeClock, FakeHost, container
from tests.exporter.peers import Controller
from tests.exporter.samples import sample, sweep

CID, OTHER = "b" * 64, "e" * 64


class Offers:
    """Stands in for the AlertSender: records what is offered."""

    def __init__(self) -> None:
        self.thresholds = Thresholds()
        self.offered: list[tuple[str, float, float]] = []

    def offer(self, s) -> bool:  # type: ignore[no-untyped-def]
        self.offered.append((s.meta.id, s.ts, s.cpu_percent))
        return True


def test_with_no_delay_every_sample_goes_to_the_sender_as_before() -> None:
    offers = Offers()
    Confirmer(offers, delay=0.0).on_sweep(sweep(sample(cpu=90.0), sample(cid=OTHER, cpu=10.0)), now=5.0)  # type: ignore[arg-type]
    assert [cid for cid, _, _ in offers.offered] == [sample().meta.id, OTHER]


def test_a_first_breach_is_held_and_sent_with_its_confirmation() -> None:
    offers, c = Offers(), None
    c = Confirmer(offers, delay=0.25)  # type: ignore[arg-type]
    first = sample(cpu=90.0, ts=100.0)
    c.on_sweep(sweep(first), now=5.0)
    assert offers.offered == [] and c.next_due() == 5.25
    c.run_due(5.2, lambda cid: pytest.fail("read before it is due"))
    c.run_due(5.25, lambda cid: sample(cpu=92.0, ts=100.25))  # above 75 by more than the default 10-point margin
    assert offers.offered == [(first.meta.id, 100.0, 90.0), (first.meta.id, 100.25, 92.0)]
    assert (c.stats.confirmed, c.stats.cleared) == (1, 0) and c.next_due() is None
    c.on_sweep(sweep(sample(cpu=91.0, ts=101.0)), now=6.0)  # still breaching: sent at once
    assert offers.offered[-1] == (first.meta.id, 101.0, 91.0) and c.next_due() is None
    c.on_sweep(sweep(sample(cpu=10.0, ts=102.0)), now=7.0)  # the breach ends
    c.on_sweep(sweep(sample(cpu=95.0, ts=103.0)), now=8.0)  # a new breach is held again
    assert len(offers.offered) == 3 and c.next_due() == 8.25


def test_a_breach_the_second_read_does_not_confirm_waits_for_the_next_sweep_and_ends_there_if_clear() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    c.on_sweep(sweep(sample(cpu=90.0, ts=100.0)), now=5.0)
    c.run_due(5.3, lambda cid: sample(cpu=80.0, ts=100.25))  # above 75, but not by the 10-point margin
    assert offers.offered == [] and c.next_due() is None
    c.on_sweep(sweep(sample(cpu=60.0, ts=101.0)), now=6.0)
    assert offers.offered == [] and (c.stats.confirmed, c.stats.confirmed_next_sweep, c.stats.cleared) == (0, 0, 1)


def test_a_breach_the_second_read_does_not_confirm_is_confirmed_by_the_next_breaching_sweep_as_before() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    cid = sample().meta.id
    c.on_sweep(sweep(sample(cpu=90.0, ts=100.0)), now=5.0)
    c.run_due(5.3, lambda _: None)  # the read failed: the next sweep decides
    c.on_sweep(sweep(sample(cpu=78.0, ts=101.0)), now=6.0)
    assert offers.offered == [(cid, 100.0, 90.0), (cid, 101.0, 78.0)]
    assert (c.stats.confirmed, c.stats.confirmed_next_sweep, c.stats.unreadable) == (0, 1, 1)
    c.on_sweep(sweep(sample(cpu=79.0, ts=102.0)), now=7.0)  # in the breach: sent at once
    assert offers.offered[-1] == (cid, 102.0, 79.0)


def test_a_container_gone_before_the_next_sweep_is_forgotten() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    c.on_sweep(sweep(sample(cpu=90.0)), now=5.0)
    c.run_due(5.3, lambda cid: sample(cpu=60.0))
    c.on_sweep(sweep(sample(cpu=90.0, cid=OTHER)), now=6.0)
    c.on_sweep(sweep(sample(cpu=90.0)), now=7.0)  # back: a first breaching sample again, held
    assert offers.offered == [] and c.next_due() == 7.25


def test_a_confirmation_needs_the_same_figure_above_its_threshold_by_the_margin() -> None:
    t = Thresholds()
    assert confirms(sample(cpu=90.0), sample(cpu=76.0), t, 0.0)
    assert not confirms(sample(cpu=90.0), sample(cpu=76.0), t, 5.0)
    assert not confirms(sample(cpu=90.0), sample(cpu=10.0, mem_pct=95.0), t, 0.0)  # another figure: a new breach
    assert confirms(sample(cpu=90.0, mem_pct=95.0), sample(cpu=10.0, mem_pct=95.0), t, 0.0)


def test_a_rate_over_its_threshold_after_a_climb_and_not_falling_back_confirms_without_the_margin() -> None:
    t = Thresholds()
    climbing = sample(cpu=70.0)  # the sweep before: within the 10-point margin below 75
    assert confirms(sample(cpu=78.0), sample(cpu=80.0), t, 10.0, previous=climbing)
    assert confirms(sample(cpu=78.0), sample(cpu=78.0), t, 10.0, previous=climbing)  # holding is enough
    assert not confirms(sample(cpu=78.0), sample(cpu=76.0), t, 10.0, previous=climbing)  # falling back toward the mean
    assert not confirms(sample(cpu=78.0), sample(cpu=80.0), t, 10.0, previous=sample(cpu=60.0))  # a jump from far below
    assert not confirms(sample(cpu=78.0), sample(cpu=80.0), t, 10.0)  # nothing before it: no climb seen
    assert confirms(sample(net_pct=70.0), sample(net_pct=71.0), t, 10.0, previous=sample(net_pct=60.0))  # network too


def test_a_memory_level_confirms_a_first_breach_only_by_the_margin_but_a_new_figure_in_a_breach_when_still_over() -> None:
    t = Thresholds()
    climbing = sample(mem_pct=77.0)
    assert not confirms(sample(mem_pct=81.0), sample(mem_pct=82.0), t, 10.0, previous=climbing)  # a held level proves no trend
    assert confirms(sample(mem_pct=81.0), sample(mem_pct=91.0), t, 10.0, previous=climbing)
    assert confirms(sample(mem_pct=81.0), sample(mem_pct=80.9), t, 10.0, previous=climbing, figures={"memory"}, in_breach=True)
    assert not confirms(sample(mem_pct=81.0), sample(mem_pct=79.0), t, 10.0, previous=climbing, figures={"memory"},
                        in_breach=True)
    assert not confirms(sample(mem_pct=81.0), sample(mem_pct=81.0), t, 10.0, previous=sample(mem_pct=50.0),
                        figures={"memory"}, in_breach=True)  # jumped from far below and holds: what memory noise does


def test_a_ramping_first_breach_is_confirmed_by_the_read_a_quarter_interval_later() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    c.on_sweep(sweep(sample(cpu=70.0, ts=99.0)), now=4.0)
    c.on_sweep(sweep(sample(cpu=78.0, ts=100.0)), now=5.0)  # crosses by 3 points, 8 above the sample before
    c.run_due(5.25, lambda cid: sample(cpu=81.0, ts=100.25))  # still climbing, though not 10 points over
    assert [ts for _, ts, _ in offers.offered] == [100.0, 100.25] and c.stats.confirmed == 1


def ramp_to_memory_crossing(c: Confirmer, *, memory_before: float) -> None:
    """CPU and network high and confirmed for two sweeps, then memory crosses 80 (scenario 2's ramp)."""
    c.on_sweep(sweep(sample(cpu=80.0, mem_pct=memory_before - 4, ts=98.0)), now=3.0)
    c.run_due(3.25, lambda cid: sample(cpu=77.0, mem_pct=memory_before - 3, ts=98.25))  # not 10 over, no climb seen
    c.on_sweep(sweep(sample(cpu=82.0, mem_pct=memory_before, ts=99.0)), now=4.0)  # the pairing confirms the CPU breach
    c.on_sweep(sweep(sample(cpu=84.6, mem_pct=81.3, ts=100.0)), now=5.0)  # memory crosses, by 1.3 points


def test_a_figure_crossing_in_a_confirmed_breach_is_read_again_and_sent_a_quarter_interval_later() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    ramp_to_memory_crossing(c, memory_before=77.3)
    assert [ts for _, ts, _ in offers.offered] == [98.0, 99.0, 100.0] and c.next_due() == 5.25
    c.run_due(5.25, lambda cid: sample(cpu=83.0, mem_pct=81.4, ts=100.25))
    assert [ts for _, ts, _ in offers.offered] == [98.0, 99.0, 100.0, 100.25]
    assert c.stats.confirmed_in_breach == 1 and c.next_due() is None
    c.on_sweep(sweep(sample(cpu=84.0, mem_pct=83.0, ts=101.0)), now=6.0)  # nothing new crosses: no read
    assert offers.offered[-1][1] == 101.0 and c.next_due() is None


def test_a_read_with_a_figure_back_under_its_threshold_is_not_sent_as_it_would_break_the_rules_pairing() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    ramp_to_memory_crossing(c, memory_before=77.3)
    c.run_due(5.25, lambda cid: sample(cpu=70.0, mem_pct=81.5, ts=100.25))  # memory holds, CPU's 0.25 s rate dipped
    assert [ts for _, ts, _ in offers.offered] == [98.0, 99.0, 100.0] and c.stats.confirmed_in_breach == 0
    assert c.next_due() == 5.5  # read once more, over twice the window
    c.run_due(5.5, lambda cid: sample(cpu=78.0, mem_pct=81.6, ts=100.5))
    assert [ts for _, ts, _ in offers.offered] == [98.0, 99.0, 100.0, 100.5] and c.stats.confirmed_in_breach == 1


def test_the_second_read_in_a_breach_is_the_last_one_before_the_next_sweep() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    ramp_to_memory_crossing(c, memory_before=77.3)
    c.run_due(5.25, lambda cid: sample(cpu=70.0, mem_pct=81.5, ts=100.25))
    c.run_due(5.5, lambda cid: sample(cpu=72.0, mem_pct=81.6, ts=100.5))
    assert len(offers.offered) == 3 and c.next_due() is None


def test_a_figure_crossing_in_the_sweep_sample_that_confirms_a_breach_is_read_again_too() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    c.on_sweep(sweep(sample(cpu=56.0, mem_pct=77.1, ts=98.0)), now=3.0)
    c.on_sweep(sweep(sample(cpu=74.6, mem_pct=81.0, ts=99.0)), now=4.0)  # memory crosses: a level needs the margin
    c.run_due(4.25, lambda cid: sample(cpu=75.0, mem_pct=83.0, ts=99.25))
    c.on_sweep(sweep(sample(cpu=76.5, mem_pct=84.9, ts=100.0)), now=5.0)  # pairs memory's breach; CPU crosses
    assert [ts for _, ts, _ in offers.offered] == [99.0, 100.0] and c.next_due() == 5.25
    c.run_due(5.25, lambda cid: sample(cpu=77.0, mem_pct=85.0, ts=100.25))
    assert [ts for _, ts, _ in offers.offered] == [99.0, 100.0, 100.25] and c.stats.confirmed_in_breach == 1


def test_a_figure_that_jumped_into_a_confirmed_breach_waits_for_the_next_sweep_as_before() -> None:
    offers = Offers()
    c = Confirmer(offers, delay=0.25, margin=10.0)  # type: ignore[arg-type]
    ramp_to_memory_crossing(c, memory_before=55.0)  # 55 -> 81.3: a jump, not a climb
    c.run_due(5.25, lambda cid: sample(cpu=83.0, mem_pct=81.3, ts=100.25))
    assert [ts for _, ts, _ in offers.offered] == [98.0, 99.0, 100.0] and c.stats.confirmed_in_breach == 0


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


def test_the_running_exporter_alerts_a_quarter_interval_after_the_breach(host: FakeHost, clock: FakeClock,
                                                                         controller: Controller) -> None:
    host.add_container(CID, pid=50, usage=10 << 20)
    alerts = AlertSender(controller.url, token=None, thresholds=Thresholds(), min_gap=0.125, clock=clock.time)
    metrics = SelfMetrics()
    collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root, link=NodeLink("eth0", 100.0, "setting"),
                          on_error=metrics.error, clock=clock.time, mono=clock.mono)
    inventory = Inventory("worker-1")
    inventory.replace({CID: container(CID, pid=50, cpu_limit=1.0)})
    exporter = Exporter(collector, inventory, interval=1.0, alerts=alerts, self_metrics=metrics, confirm_delay=0.25,
                        mono=clock.mono)
    exporter.tick()
    clock.advance(1.0)
    host.set_cpu(CID, 950_000_000)  # 95 % over the last second
    t0 = clock.wall
    exporter.tick()
    assert controller.received == []
    clock.advance(0.25)
    host.set_cpu(CID, 950_000_000 + 237_500_000)  # 95 % over the next 250 ms: 20 points above, a clear breach
    exporter.confirm_due()
    got = controller.wait_for(2)
    alerts.close()
    (first, second) = [decode_alert(body) for _, body in got]
    assert (first.t0, second.t0) == (pytest.approx(t0, abs=1e-3), pytest.approx(t0 + 0.25, abs=1e-3))
    assert second.metrics["cpu"] == pytest.approx(95.0) and second.t1 - first.t0 == pytest.approx(0.25, abs=1e-3)
    body = exporter.exposition().decode()
    assert "swarmguard_exporter_breaches_confirmed_total 1.0" in body
    collector.close()
