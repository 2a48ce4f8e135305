"""The stress app's settings (prefix STRESS_): defaults < YAML < environment < command line."""
from __future__ import annotations

from dataclasses import dataclass

from sgcommon.settings import setting

ENV_PREFIX = "STRESS_"


@dataclass(frozen=True)
class StressSettings:
    host: str = setting("127.0.0.1", "address the HTTP API and the traffic sink listen on (0.0.0.0 in a container)")
    port: int = setting(8080, "HTTP API port")
    sink_port: int = setting(8081, "TCP port of the app's own traffic sink (0 = any free port)")
    network_peer: str = setting("", "host:port that network stress sends to; empty = the app's own sink on loopback")
    max_duration: float = setting(3600.0, "longest accepted duration (and ramp) of a stress, in seconds")
    max_memory_mb: float = setting(2048.0, "largest accepted memory target in MB (the container limit also caps it)")
    max_bandwidth_mbps: float = setting(1000.0, "largest accepted network target in Mbit/s")
    cgroup_root: str = setting("/sys/fs/cgroup", "where the cgroup file systems are mounted (tests use fake trees)")
    proc_root: str = setting("/proc", "where procfs is mounted (tests use fake trees)")
    sample_interval: float = setting(1.0, "seconds between two samples of the figures /metrics reports")
    log_level: str = setting("INFO", "log level of the JSON logs")
