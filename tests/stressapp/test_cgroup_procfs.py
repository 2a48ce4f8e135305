"""CPU capacity, memory limit and process figures read from fake cgroup and proc trees."""
from __future__ import annotations

from pathlib import Path

import pytest

from stressapp import cgroup, procfs
from tests.stressapp.conftest import write_tree

UNLIMITED_V1 = "9223372036854771712\n"


def test_a_v1_quota_in_the_processs_own_cgroup_sets_the_capacity(tmp_path: Path, fake_proc: Path) -> None:
    root = write_tree(tmp_path / "cg", {
        "cpu/docker/abc/cpu.cfs_quota_us": "150000\n", "cpu/docker/abc/cpu.cfs_period_us": "100000\n",
        "cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n",
    })
    assert cgroup.cpu_capacity(cgroup_root=str(root), proc_root=str(fake_proc), online_cpus=4) == 1.5


def test_inside_a_container_the_mount_root_is_the_containers_own_cgroup(tmp_path: Path, fake_proc: Path) -> None:
    root = write_tree(tmp_path / "cg", {"cpu,cpuacct/cpu.cfs_quota_us": "50000\n", "cpu,cpuacct/cpu.cfs_period_us": "100000\n"})
    assert cgroup.cpu_capacity(cgroup_root=str(root), proc_root=str(fake_proc), online_cpus=4) == 0.5


def test_without_a_quota_the_capacity_is_the_cpus_the_process_may_run_on(tmp_path: Path, fake_proc: Path) -> None:
    root = write_tree(tmp_path / "cg", {"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cgroup.cpu_capacity(cgroup_root=str(root), proc_root=str(fake_proc), online_cpus=3) == 3.0


def test_a_quota_above_the_usable_cpus_is_capped_by_them(tmp_path: Path, fake_proc: Path) -> None:
    root = write_tree(tmp_path / "cg", {"cpu/cpu.cfs_quota_us": "800000\n", "cpu/cpu.cfs_period_us": "100000\n"})
    assert cgroup.cpu_capacity(cgroup_root=str(root), proc_root=str(fake_proc), online_cpus=2) == 2.0


@pytest.mark.parametrize(("cpu_max", "expected"), [("250000 100000\n", 2.5), ("max 100000\n", 8.0)])
def test_a_v2_cpu_max_sets_the_capacity(tmp_path: Path, fake_proc: Path, cpu_max: str, expected: float) -> None:
    root = write_tree(tmp_path / "cg", {"cgroup.controllers": "cpu memory\n", "user.slice/app/cpu.max": cpu_max})
    assert cgroup.cpu_capacity(cgroup_root=str(root), proc_root=str(fake_proc), online_cpus=8) == expected


@pytest.mark.parametrize(
    ("files", "expected"),
    [
        ({"memory/docker/abc/memory.limit_in_bytes": "536870912\n"}, 512 * 2**20),
        ({"memory/memory.limit_in_bytes": "268435456\n"}, 256 * 2**20),
        ({"memory/memory.limit_in_bytes": UNLIMITED_V1}, None),
        ({"cgroup.controllers": "memory\n", "user.slice/app/memory.max": "1073741824\n"}, 2**30),
        ({"cgroup.controllers": "memory\n", "user.slice/app/memory.max": "max\n"}, None),
        ({}, None),
    ],
    ids=["v1-own-cgroup", "v1-container-root", "v1-unlimited", "v2-limit", "v2-max", "no-cgroup-files"],
)
def test_the_memory_limit_comes_from_the_cgroup(tmp_path: Path, fake_proc: Path, files: dict[str, str], expected: int | None) -> None:
    root = write_tree(tmp_path / "cg", files)
    assert cgroup.memory_limit_bytes(cgroup_root=str(root), proc_root=str(fake_proc)) == expected


@pytest.mark.parametrize(("capacity", "workers"), [(0.5, 1), (1.0, 1), (1.5, 2), (2.0, 2), (3.2, 4)])
def test_one_worker_runs_per_started_core_of_capacity(capacity: float, workers: int) -> None:
    assert cgroup.workers_for(capacity) == workers


def _stat(pid: int, comm: str, utime: int, stime: int, cutime: int = 0, cstime: int = 0) -> str:
    rest = ["S", "1", str(pid), str(pid), "0", "-1", "4194560", "0", "0", "0", "0",
            str(utime), str(stime), str(cutime), str(cstime), "20", "0", "3", "0", "100"]
    return f"{pid} ({comm}) {' '.join(rest)}\n"


@pytest.fixture
def process_tree(tmp_path: Path) -> Path:
    """Process 10 (a name with spaces and parentheses) with child 11, whose child is 12."""
    ticks = procfs.CLOCK_TICKS
    return write_tree(tmp_path / "proc", {
        "10/stat": _stat(10, "stress app) (x", 2 * ticks, ticks, cutime=ticks, cstime=0),
        "10/task/10/children": "11 ",
        "10/task/13/children": "",
        "10/status": "Name:\tpython\nVmRSS:\t   40960 kB\nRssAnon:\t   30000 kB\n",
        "11/stat": _stat(11, "python", 3 * ticks, 0, cutime=50 * ticks),
        "11/task/11/children": "12",
        "11/status": "VmRSS:\t   20480 kB\nRssAnon:\t    2048 kB\n",
        "12/stat": _stat(12, "python", ticks, ticks),
        "12/task/12/children": "",
        "12/status": "VmRSS:\t   10240 kB\nRssAnon:\t    1024 kB\n",
    })


def test_cpu_time_counts_the_process_its_reaped_children_and_live_descendants(process_tree: Path) -> None:
    # 10: 2 + 1 + 1 reaped; 11: 3 (its own reaped children are not counted twice); 12: 2.
    assert procfs.tree_cpu_seconds(str(process_tree), 10) == pytest.approx(9.0)


def test_the_descendants_are_found_through_every_threads_children_file(process_tree: Path) -> None:
    assert procfs.descendants(str(process_tree), 10) == [11, 12]


def test_resident_memory_counts_only_the_anonymous_pages_of_descendants(process_tree: Path) -> None:
    assert procfs.tree_rss_bytes(str(process_tree), 10) == (40960 + 2048 + 1024) * 1024


def test_a_descendant_that_vanished_mid_read_counts_zero(process_tree: Path) -> None:
    (process_tree / "12" / "stat").unlink()
    assert procfs.tree_cpu_seconds(str(process_tree), 10) == pytest.approx(7.0)


def test_the_total_memory_comes_from_meminfo(fake_proc: Path) -> None:
    assert procfs.mem_total_bytes(str(fake_proc)) == 4 * 2**30
