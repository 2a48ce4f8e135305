"""A sweep turns two readings into the figures docs/metrics.md defines, and survives bad input."""
from __future__ import annotations

from collections import Counter

import pytest

from exporter.collect import Collector, NodeLink, resolve_link
from tests.exporter.conftest import FakeClock, FakeHost, container

CID, CID2 = "c" * 64, "d" * 64
GIB = 1 << 30


def make(host: FakeHost, clock: FakeClock, errors: Counter, *, capacity: float = 100.0) -> Collector:
    return Collector(
        cgroup_root=host.cgroup_root, proc_root=host.proc_root,
        link=NodeLink(iface="eth0", capacity_mbps=capacity, source="setting"),
        on_error=lambda kind: errors.update([kind]), clock=clock.time, mono=clock.mono,
    )


def test_a_container_appears_from_its_second_reading_with_exact_figures(any_host: FakeHost, clock: FakeClock) -> None:
    errors: Counter = Counter()
    meta = container(CID, pid=500, cpu_limit=0.5, memory_limit=GIB)
    any_host.add_container(CID, pid=500, cpu_ns=10**9, usage=GIB // 2, inactive=GIB // 4, net=(1000, 1, 2000, 2))
    collector = make(any_host, clock, errors)
    assert collector.sweep({CID: meta}, "node-1").containers == ()
    clock.advance(2.0)
    # 0.5 s of CPU in 2 s with a 0.5-CPU limit: 50 %; 2.5 MB received and 5 MB sent in 2 s: 10 + 20 Mbit/s
    any_host.set_cpu(CID, 10**9 + 500_000_000)
    any_host.set_net(500, (1000 + 2_500_000, 5, 2000 + 5_000_000, 9))
    sweep = collector.sweep({CID: meta}, "node-1")
    (s,) = sweep.containers
    assert s.cpu_percent == pytest.approx(50.0)
    assert s.memory_bytes == GIB // 4 and s.memory_percent == pytest.approx(25.0)
    assert (s.rx_mbps, s.tx_mbps) == (pytest.approx(10.0), pytest.approx(20.0))
    assert s.network_percent == pytest.approx(30.0)
    assert s.net.rx_packets == 5 and s.ts == clock.wall and s.node == "node-1"
    assert not errors


def test_without_limits_percentages_are_of_the_node(host: FakeHost, clock: FakeClock) -> None:
    meta = container(CID, pid=9)
    host.add_container(CID, pid=9, usage=1_000 * 1024, inactive=0)
    collector = make(host, clock, Counter())
    collector.sweep({CID: meta}, "n")
    clock.advance(1.0)
    host.set_cpu(CID, 10**9)  # one full core out of the node's two
    (s,) = collector.sweep({CID: meta}, "n").containers
    assert s.cpu_percent == pytest.approx(50.0)
    assert s.memory_percent == pytest.approx(100.0 * 1000 / 4_000_000)


def test_node_figures_come_from_proc_stat_meminfo_and_the_interface(host: FakeHost, clock: FakeClock) -> None:
    collector = make(host, clock, Counter(), capacity=1000.0)
    assert collector.sweep({}, "n").node is None
    clock.advance(1.0)
    host.set_node(cpu=(1300, 900, 0), cpus=2, mem_total_kib=4_000_000, mem_available_kib=1_000_000)
    host.set_node_net(eth0=(12_500_000, 10, 0, 0), eth1=(10**9, 1, 10**9, 1))
    node = collector.sweep({}, "n").node
    assert node is not None
    assert node.cpu_percent == pytest.approx(75.0)  # 300 busy of 400 jiffies
    assert node.memory_percent == pytest.approx(75.0)
    assert node.rx_mbps == pytest.approx(100.0) and node.network_percent == pytest.approx(10.0)


def test_a_vanished_container_is_counted_and_the_others_go_on(host: FakeHost, clock: FakeClock, no_leaked_fds: None) -> None:
    errors: Counter = Counter()
    metas = {CID: container(CID, pid=1), CID2: container(CID2, pid=2)}
    host.add_container(CID, pid=1)
    host.add_container(CID2, pid=2)
    collector = make(host, clock, errors)
    collector.sweep(metas, "n")
    host.remove_container(CID)
    clock.advance(1.0)
    sweep = collector.sweep(metas, "n")
    assert [s.meta.id for s in sweep.containers] == [CID2]
    assert errors == Counter(vanished=1)
    collector.close()


def test_a_container_that_is_not_listed_any_more_is_forgotten(host: FakeHost, clock: FakeClock, no_leaked_fds: None) -> None:
    host.add_container(CID, pid=1)
    collector = make(host, clock, Counter())
    collector.sweep({CID: container(CID, pid=1)}, "n")
    clock.advance(1.0)
    collector.sweep({}, "n")
    clock.advance(1.0)
    assert collector.sweep({CID: container(CID, pid=1)}, "n").containers == ()  # starts over: one reading
    collector.close()


def test_a_restarted_container_reads_its_new_namespace_and_never_shows_negative_rates(host: FakeHost, clock: FakeClock) -> None:
    host.add_container(CID, pid=10, cpu_ns=5 * 10**9, net=(10**6, 1, 10**6, 1))
    collector = make(host, clock, Counter())
    collector.sweep({CID: container(CID, pid=10)}, "n")
    clock.advance(1.0)
    host.set_cpu(CID, 10**8)  # counters restarted
    host.set_net(11, (500, 1, 0, 0))
    assert collector.sweep({CID: container(CID, pid=11)}, "n").containers == ()
    clock.advance(1.0)
    host.set_net(11, (125_500, 2, 0, 0))
    (s,) = collector.sweep({CID: container(CID, pid=11)}, "n").containers
    assert s.rx_mbps == pytest.approx(1.0) and s.cpu_percent == 0.0


def test_a_counter_that_goes_backwards_gives_zero_not_a_negative_rate(host: FakeHost, clock: FakeClock) -> None:
    host.add_container(CID, pid=3, cpu_ns=5 * 10**9, net=(10**6, 1, 10**6, 1))
    collector = make(host, clock, Counter())
    collector.sweep({CID: container(CID, pid=3)}, "n")
    clock.advance(1.0)
    host.set_cpu(CID, 10)
    host.set_net(3, (0, 0, 0, 0))
    (s,) = collector.sweep({CID: container(CID, pid=3)}, "n").containers
    assert (s.cpu_percent, s.rx_mbps, s.tx_mbps, s.network_percent) == (0.0, 0.0, 0.0, 0.0)


def test_a_malformed_file_is_counted_as_parse_error(host: FakeHost, clock: FakeClock) -> None:
    errors: Counter = Counter()
    host.add_container(CID, pid=4)
    host.set_cpu(CID, 0)
    with open(f"{host.cgroup_root}/cpuacct/docker/{CID}/cpuacct.usage", "w") as fh:
        fh.write("garbage\n")
    sweep = make(host, clock, errors).sweep({CID: container(CID, pid=4)}, "n")
    assert sweep.containers == () and errors == Counter(parse=1)


def test_a_missing_interface_is_counted_and_reads_zero(host: FakeHost, clock: FakeClock) -> None:
    errors: Counter = Counter()
    collector = Collector(cgroup_root=host.cgroup_root, proc_root=host.proc_root,
                          link=NodeLink(iface="eth7", capacity_mbps=100, source="setting"),
                          on_error=lambda k: errors.update([k]), clock=clock.time, mono=clock.mono)
    collector.sweep({}, "n")
    clock.advance(1)
    node = collector.sweep({}, "n").node
    assert node is not None and node.rx_mbps == 0.0 and errors["node"] == 2


def test_the_link_is_the_default_route_interface_with_its_speed(host: FakeHost) -> None:
    host.set_speed("eth0", "1000\n")
    link = resolve_link(proc_root=host.proc_root, sys_root=host.sys_root, net_iface="", default_mbps=100)
    assert link == NodeLink("eth0", 1000.0, "speed")


def test_an_unknown_speed_falls_back_to_the_configured_capacity(host: FakeHost) -> None:
    host.set_speed("enp1", "-1\n")
    link = resolve_link(proc_root=host.proc_root, sys_root=host.sys_root, net_iface="enp1", default_mbps=100)
    assert link == NodeLink("enp1", 100.0, "setting")


def test_node_figures_wait_until_the_node_name_is_known(host: FakeHost, clock: FakeClock) -> None:
    collector = make(host, clock, Counter())
    collector.sweep({}, "")
    clock.advance(1.0)
    assert collector.sweep({}, "").node is None
    clock.advance(1.0)
    node = collector.sweep({}, "worker-1").node
    assert node is not None and node.node == "worker-1"
