"""The cgroup and /proc readers give docker-stats figures on every supported layout."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import procfs
from exporter.cgroups import open_container
from exporter.files import FileGone, KernelFile
from tests.exporter.conftest import FakeHost, net_dev

CID = "a" * 64


def test_cpu_and_working_set_are_read_on_every_cgroup_layout(any_host: FakeHost) -> None:
    any_host.add_container(CID, pid=4242, cpu_ns=5_000_000_000, usage=300 << 20, inactive=100 << 20)
    reading = open_container(any_host.cgroup_root, CID).read()
    assert reading.cpu_ns == 5_000_000_000
    assert reading.memory_bytes == 200 << 20


def test_an_open_cgroup_sees_new_values_without_reopening(any_host: FakeHost) -> None:
    any_host.add_container(CID, pid=4242, cpu_ns=1_000_000, usage=10, inactive=0)
    cgroup = open_container(any_host.cgroup_root, CID)
    cgroup.read()
    any_host.set_cpu(CID, 9_000_000)
    any_host.set_memory(CID, usage=50, inactive=20)
    reading = cgroup.read()
    assert (reading.cpu_ns, reading.memory_bytes) == (9_000_000, 30)
    cgroup.close()


def test_a_working_set_never_goes_negative(host: FakeHost) -> None:
    host.add_container(CID, pid=1, usage=10, inactive=50)
    assert open_container(host.cgroup_root, CID).read().memory_bytes == 0


def test_a_container_without_a_cgroup_is_reported_gone(any_host: FakeHost) -> None:
    with pytest.raises(FileGone, match=CID):
        open_container(any_host.cgroup_root, CID)


def test_a_cgroup_removed_after_opening_is_reported_gone(host: FakeHost) -> None:
    host.add_container(CID, pid=7)
    cgroup = open_container(host.cgroup_root, CID)
    host.remove_container(CID)
    with pytest.raises(FileGone):
        cgroup.read()


def test_a_malformed_cgroup_file_names_the_file(host: FakeHost) -> None:
    host.add_container(CID, pid=7)
    cgroup = open_container(host.cgroup_root, CID)
    path = f"{host.cgroup_root}/memory/docker/{CID}/memory.stat"
    with open(path, "w") as fh:
        fh.write("cache 1\n")
    with pytest.raises(ValueError, match="memory.stat: no total_inactive_file line"):
        cgroup.read()


def test_a_kernel_file_that_vanished_raises_file_gone(tmp_path) -> None:
    f = KernelFile(str(tmp_path / "nope"))
    with pytest.raises(FileGone, match="nope"):
        f.read()


def test_net_dev_sums_every_interface_but_loopback() -> None:
    text = net_dev(lo=(1000, 10, 1000, 10), eth0=(100, 2, 50, 1), eth1=(7, 1, 3, 1))
    assert procfs.parse_net_dev(text) == procfs.NetCounters(rx_bytes=107, rx_packets=3, tx_bytes=53, tx_packets=2)
    assert procfs.parse_net_dev(text, only="eth1") == procfs.NetCounters(7, 1, 3, 1)
    assert procfs.has_interface(text, "eth1") and not procfs.has_interface(text, "eth9")


def test_net_dev_with_a_short_row_is_refused() -> None:
    with pytest.raises(ValueError, match="eth0"):
        procfs.parse_net_dev(net_dev() + "  eth0: 1 2 3\n")


def test_proc_stat_gives_total_idle_and_online_cpus() -> None:
    text = "cpu  10 1 5 100 4 0 2 0 7 0\ncpu0 5 0 2 50 2 0 1 0 0 0\ncpu1 5 1 3 50 2 0 1 0 0 0\nintr 1\n"
    assert procfs.parse_proc_stat(text) == procfs.CpuTimes(total=122, idle=104, online=2, modes=(10, 1, 5, 100, 4, 0, 2, 0))


def test_proc_stat_without_a_cpu_line_is_refused() -> None:
    with pytest.raises(ValueError, match="cpu"):
        procfs.parse_proc_stat("intr 0\n")


def test_meminfo_uses_mem_available_or_derives_it() -> None:
    assert procfs.parse_meminfo("MemTotal: 100 kB\nMemAvailable: 40 kB\n") == procfs.MemInfo(102400, 40960)
    old = procfs.parse_meminfo("MemTotal: 100 kB\nMemFree: 10 kB\nBuffers: 5 kB\nCached: 5 kB\n")
    assert old.available_bytes == 20 * 1024


def test_the_default_route_with_the_lowest_metric_wins() -> None:
    route = (
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "wlan0\t00000000\t0102A8C0\t0003\t0\t0\t600\t00000000\t0\t0\t0\n"
        "eno1\t00000000\t0102A8C0\t0003\t0\t0\t100\t00000000\t0\t0\t0\n"
        "eno1\t0002A8C0\t00000000\t0001\t0\t0\t100\t00FFFFFF\t0\t0\t0\n"
    )
    assert procfs.default_route_iface(route) == "eno1"
    assert procfs.default_route_iface(route.splitlines()[0]) is None


@pytest.mark.parametrize(("text", "expected"), [("1000\n", 1000.0), ("-1\n", None), ("", None), ("x", None)])
def test_a_link_speed_is_known_only_when_positive(text: str, expected: float | None) -> None:
    assert procfs.parse_speed_mbps(text) == expected


def test_real_host_files_parse_on_this_machine() -> None:
    with open("/proc/stat") as fh:
        assert procfs.parse_proc_stat(fh.read()).online >= 1
    with open("/proc/self/net/dev") as fh:
        procfs.parse_net_dev(fh.read())


counters = st.tuples(*(st.integers(min_value=0, max_value=2**63) for _ in range(4)))


@given(ifaces=st.dictionaries(st.from_regex(r"[a-z][a-z0-9]{0,9}", fullmatch=True).filter(lambda n: n != "lo"), counters, max_size=6),
       lo=counters)
def test_net_dev_totals_are_the_sums_of_every_non_loopback_interface(ifaces: dict, lo: tuple[int, int, int, int]) -> None:
    parsed = procfs.parse_net_dev(net_dev(lo=lo, **ifaces))
    assert parsed == procfs.NetCounters(*(sum(c[i] for c in ifaces.values()) for i in range(4)))
