"""Malformed cgroup and /proc content costs one container's sample (or the node figures), never the sweep.

Each class of bad content is tried on every file the exporter reads, then hypothesis writes
arbitrary content (bytes, and text made of the files' own vocabulary) into a fake host and runs
whole sweeps: the other containers keep their samples, nothing raises, errors are counted.
"""
from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exporter import procfs
from exporter.collect import Collector, NodeLink, resolve_link
from exporter.kerneltext import U64_MAX, counter
from exporter.sample import RawContainer, container_sample, ratio
from tests.common.fuzzing import fuzz
from tests.exporter.conftest import FakeClock, FakeHost, container

BAD, GOOD1, GOOD2 = "b" * 64, "c" * 64, "d" * 64
BAD_CONTENT = {
    "huge": "9" * 30 + "\n",
    "beyond u64": f"{U64_MAX + 1}\n",
    "thousands of digits": "7" * 5000 + "\n",
    "negative": "-5\n",
    "non-numeric": "garbage\n",
    "float": "1.5\n",
    "unicode digits": "\u0661\u0662\n",
    "superscript": "\u00b2\n",
    "underscore": "1_000\n",
    "plus sign": "+5\n",
    "short line": "cpu 1\n",
    "binary junk": "\x00\xff\xfe\x01garbage",
    "empty": "",
}


def container_files(host: FakeHost, cid: str, pid: int) -> dict[str, Path]:
    cpu_dir, mem_dir = host._dirs(cid)
    if host.layout.startswith("v2"):
        return {"cpu.stat": cpu_dir / "cpu.stat", "memory.current": mem_dir / "memory.current",
                "memory.stat": mem_dir / "memory.stat", "net/dev": host.root / "proc" / str(pid) / "net" / "dev"}
    return {"cpuacct.usage": cpu_dir / "cpuacct.usage", "memory.usage_in_bytes": mem_dir / "memory.usage_in_bytes",
            "memory.stat": mem_dir / "memory.stat", "net/dev": host.root / "proc" / str(pid) / "net" / "dev"}


def node_files(host: FakeHost) -> dict[str, Path]:
    proc = host.root / "proc"
    return {"stat": proc / "stat", "meminfo": proc / "meminfo", "1/net/dev": proc / "1" / "net" / "dev"}


def overwrite(path: Path, data: bytes) -> None:
    with open(path, "wb") as fh:  # in place, as the kernel regenerates a file: open descriptors see it
        fh.write(data)


class Rig:
    """A fake host with one container to break and two good ones, and a collector over it."""

    def __init__(self, root: Path, layout: str) -> None:
        self.host = FakeHost(root, layout)
        self.clock = FakeClock()
        self.errors: Counter[str] = Counter()
        self.metas = {cid: container(cid, pid=pid, cpu_limit=1.0, memory_limit=1 << 30)
                      for cid, pid in ((BAD, 10), (GOOD1, 11), (GOOD2, 12))}
        for cid, meta in self.metas.items():
            self.host.add_container(cid, pid=meta.pid, cpu_ns=10**9, usage=100 << 20, inactive=1 << 20, net=(10, 1, 10, 1))
        self.collector = Collector(cgroup_root=self.host.cgroup_root, proc_root=self.host.proc_root,
                                   link=NodeLink("eth0", 100.0, "setting"), on_error=lambda kind: self.errors.update([kind]),
                                   clock=self.clock.time, mono=self.clock.mono)

    def sweep(self) -> set[str]:
        self.clock.advance(1.0)
        for cid in (GOOD1, GOOD2):
            self.host.set_cpu(cid, 10**9 + int(self.clock.mono_now * 10**8))
        return {s.meta.id for s in self.collector.sweep(self.metas, "worker-1").containers}


@pytest.mark.parametrize("layout", ["v1", "v2"])
@pytest.mark.parametrize("kind", list(BAD_CONTENT))
def test_each_class_of_bad_container_content_costs_only_that_container(tmp_path: Path, layout: str, kind: str,
                                                                         caplog: pytest.LogCaptureFixture) -> None:
    for name in container_files(FakeHost(tmp_path / "probe", layout), BAD, 10):
        rig = Rig(tmp_path / f"{kind}-{name.replace('/', '_')}", layout)
        rig.sweep()
        overwrite(container_files(rig.host, BAD, 10)[name], BAD_CONTENT[kind].encode("utf-8", "surrogateescape"))
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="swarmguard.exporter.collect"):
            for _ in range(3):
                assert rig.sweep() >= {GOOD1, GOOD2}, (name, kind)
        bad_kinds = set(rig.errors) - {"node"}
        assert bad_kinds <= {"parse", "vanished"}
        if bad_kinds:
            logged = [r for r in caplog.records if r.getMessage() == "container unreadable, skipped"]
            assert len(logged) == len(bad_kinds), "one line per container and kind, not one per tick"
        rig.collector.close()


@pytest.mark.parametrize("kind", list(BAD_CONTENT))
def test_each_class_of_bad_node_content_costs_only_the_node_figures(tmp_path: Path, kind: str) -> None:
    for name in node_files(FakeHost(tmp_path / "probe")):
        rig = Rig(tmp_path / f"{kind}-{name.replace('/', '_')}", "v1")
        rig.sweep()
        overwrite(node_files(rig.host)[name], BAD_CONTENT[kind].encode("utf-8", "surrogateescape"))
        for _ in range(2):
            assert rig.sweep() == {BAD, GOOD1, GOOD2}
        assert set(rig.errors) <= {"node"}
        rig.collector.close()


def test_a_node_read_failure_keeps_the_last_node_memory_for_containers_without_limits(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "v1")
    rig.metas[GOOD1] = container(GOOD1, pid=11)  # no limits: percentages are of the node
    rig.sweep()
    overwrite(node_files(rig.host)["meminfo"], b"junk")
    rig.sweep()
    rig.clock.advance(1.0)
    (s,) = [s for s in rig.collector.sweep(rig.metas, "worker-1").containers if s.meta.id == GOOD1]
    assert s.memory_limit_bytes == 4_000_000 * 1024 and s.memory_percent > 0 and rig.errors["node"] == 2


def test_a_container_whose_files_vanish_between_listing_and_reading_is_skipped(tmp_path: Path) -> None:
    rig = Rig(tmp_path, "v2")
    rig.host.remove_container(BAD)
    assert rig.sweep() == set() and rig.sweep() == {GOOD1, GOOD2}
    assert rig.errors == Counter(vanished=2)


def test_the_link_resolution_survives_a_junk_route_table_and_speed(tmp_path: Path) -> None:
    host = FakeHost(tmp_path)
    overwrite(host.root / "proc" / "1" / "net" / "route", b"Iface\tDestination\n" + b"eth0 00000000 x x x x \xff9 00000000\n")
    host.set_speed("eth0", "9" * 5000)
    link = resolve_link(proc_root=host.proc_root, sys_root=host.sys_root, net_iface="", default_mbps=100)
    assert link.capacity_mbps == 100
    (host.root / "sys" / "class" / "net" / "eth1").mkdir(parents=True)
    overwrite(host.root / "sys" / "class" / "net" / "eth1" / "speed", b"1" * (2 << 20))  # larger than any real file
    assert resolve_link(proc_root=host.proc_root, sys_root=host.sys_root, net_iface="eth1", default_mbps=50).capacity_mbps == 50


@pytest.mark.parametrize("text", ["0", "18446744073709551615", " 42\n"])
def test_a_kernel_counter_is_ascii_digits_up_to_u64(text: str) -> None:
    assert counter(text, "f") == int(text)


@pytest.mark.parametrize("text", ["", "-1", "+1", "1_0", "\u0661", "\u00b2", "1e3", "18446744073709551616", "0x10", "1 2"])
def test_anything_else_is_a_value_error_naming_the_file(text: str) -> None:
    with pytest.raises(ValueError, match="^f: "):
        counter(text, "f")


# --- hypothesis -------------------------------------------------------------------------------

VOCABULARY = st.lists(st.sampled_from(list("0123456789 -+.:\n\t_eEx") + [
    "usage_usec ", "inactive_file ", "total_inactive_file ", "cpu ", "cpu0 ", "MemTotal: ", "MemAvailable: ",
    " kB", "eth0: ", "lo: ", "\u0661", "\u00b2", "\x00", "99999999999999999999999"]), max_size=120).map("".join)
CONTENT = st.one_of(st.binary(max_size=600), VOCABULARY.map(lambda t: t.encode("utf-8")))
CONTAINER_FILE = st.sampled_from(["cpu", "usage", "stat", "net/dev"])


@fuzz(250, io=True)
@given(layout=st.sampled_from(["v1", "v1-systemd", "v2"]), which=CONTAINER_FILE, data=CONTENT)
def test_fuzzed_container_files_never_cost_the_other_containers(layout: str, which: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp), layout)
        rig.sweep()
        files = list(container_files(rig.host, BAD, 10).values())
        overwrite(files[["cpu", "usage", "stat", "net/dev"].index(which)], data)
        assert rig.sweep() >= {GOOD1, GOOD2}
        assert rig.sweep() >= {GOOD1, GOOD2}
        assert set(rig.errors) <= {"parse", "vanished"}
        rig.collector.close()


@fuzz(150, io=True)
@given(which=st.sampled_from(["stat", "meminfo", "1/net/dev"]), data=CONTENT)
def test_fuzzed_node_files_never_cost_the_containers(which: str, data: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        rig = Rig(Path(tmp), "v1")
        rig.sweep()
        overwrite(node_files(rig.host)[which], data)
        assert rig.sweep() == {BAD, GOOD1, GOOD2}
        assert set(rig.errors) <= {"node"}
        rig.collector.close()


TEXT = st.one_of(st.text(max_size=400), VOCABULARY)


@fuzz(1000)
@given(text=TEXT)
def test_every_parser_returns_or_raises_value_error_only(text: str) -> None:
    for parse in (procfs.parse_net_dev, procfs.parse_proc_stat, procfs.parse_meminfo, lambda t: counter(t, "f")):
        try:
            parse(text)
        except ValueError:
            pass
    procfs.default_route_iface(text)
    procfs.parse_speed_mbps(text)
    procfs.has_interface(text, "eth0")


BIG = st.integers(min_value=0, max_value=2**64 - 1)


@fuzz(1000)
@given(now=st.tuples(BIG, BIG, BIG, BIG, BIG, BIG), before=st.tuples(BIG, BIG, BIG, BIG, BIG, BIG),
       seconds=st.floats(allow_nan=True, allow_infinity=True), cpus=st.integers(min_value=-5, max_value=10**6),
       cpu_limit=st.none() | st.floats(allow_nan=True, allow_infinity=True),
       memory_limit=st.none() | st.integers(min_value=-(2**70), max_value=2**70),
       node_memory=st.integers(min_value=-(2**70), max_value=2**70), capacity=st.floats(allow_nan=True, allow_infinity=True))
def test_the_sample_arithmetic_never_raises_and_percentages_stay_0_to_100(
        now: tuple[int, ...], before: tuple[int, ...], seconds: float, cpus: int, cpu_limit: float | None,
        memory_limit: int | None, node_memory: int, capacity: float) -> None:
    def raw(values: tuple[int, ...], mono: float) -> RawContainer:
        return RawContainer(mono=mono, cpu_ns=values[0], memory_bytes=values[1], net=procfs.NetCounters(*values[2:]))

    meta = container(GOOD1, pid=1, cpu_limit=cpu_limit, memory_limit=memory_limit)
    s = container_sample(meta, raw(now, seconds), raw(before, 0.0), node="n", ts=1.0, node_cpus=cpus,
                         node_memory=node_memory, capacity_mbps=capacity)
    for pct in (s.cpu_percent, s.memory_percent, s.network_percent):
        assert 0.0 <= pct <= 100.0
    assert s.rx_mbps >= 0 and s.tx_mbps >= 0 and s.cpu_limit_cores > 0


def test_ratio_is_zero_for_any_denominator_that_is_not_positive_and_finite() -> None:
    assert [ratio(1, d) for d in (0, -1, float("nan"), float("inf"))] == [0.0] * 4
    assert ratio(10**400, 1) == 0.0 and ratio(3, 2) == 1.5
    assert os.sysconf("SC_CLK_TCK") > 0
