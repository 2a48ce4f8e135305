"""Hand-made samples and sweeps for the serialisation and alert tests."""
from __future__ import annotations

from exporter.procfs import CpuTimes, NetCounters
from exporter.sample import ContainerSample, NodeSample, Sweep
from tests.exporter.conftest import container

CID = "0123456789ab" + "f" * 52


def sample(*, cid: str = CID, cpu: float = 12.5, mem_pct: float = 25.0, net_pct: float = 3.0,
           ts: float = 1_700_000_000.25, service: str = "web", task: str = "task-1") -> ContainerSample:
    return ContainerSample(
        meta=container(cid, pid=10, service=service, task=task), node="worker-1", ts=ts,
        cpu_percent=cpu, cpu_ns=12_500_000_000, cpu_limit_cores=0.5, memory_bytes=256 << 20,
        memory_limit_bytes=1 << 30, memory_percent=mem_pct,
        net=NetCounters(rx_bytes=1000, rx_packets=10, tx_bytes=2000, tx_packets=20),
        rx_mbps=1.5, tx_mbps=1.5, network_percent=net_pct,
    )


def node(ts: float = 1_700_000_000.25) -> NodeSample:
    return NodeSample(node="worker-1", ts=ts, iface="eth0", cpu_percent=40.0,
                      cpu=CpuTimes(total=1000, idle=600, online=2, modes=(300, 0, 100, 500, 100, 0, 0, 0)), memory_percent=60.0,
                      net=NetCounters(5, 1, 7, 1), rx_mbps=2.0, tx_mbps=1.0, network_percent=3.0)


def sweep(*samples: ContainerSample, with_node: bool = True, ts: float = 1_700_000_000.25) -> Sweep:
    return Sweep(ts=ts, duration=0.002, node=node(ts) if with_node else None, containers=tuple(samples))
