"""The stress app's settings (prefix STRESS_): defaults < YAML < environment < command line."""
from __future__ import annotations

import math
from dataclasses import dataclass

from sgcommon.settings import SettingsError, setting

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


def check(settings: StressSettings) -> None:
    """Raises SettingsError listing every setting with a value the app cannot run with."""
    from stressapp.network import parse_peer

    errors = []
    for name in ("port", "sink_port"):
        if not 0 <= getattr(settings, name) <= 65535:
            errors.append(f"{ENV_PREFIX}{name.upper()}: expected a port in 0..65535, got {getattr(settings, name)}")
    for name in ("max_duration", "max_memory_mb", "max_bandwidth_mbps", "sample_interval"):
        value = getattr(settings, name)
        if not math.isfinite(value) or value <= 0:
            errors.append(f"{ENV_PREFIX}{name.upper()}: expected a number > 0, got {value}")
    if settings.network_peer:
        try:
            parse_peer(settings.network_peer)
        except ValueError as exc:
            errors.append(f"{ENV_PREFIX}NETWORK_PEER: {exc}")
    if errors:
        raise SettingsError("; ".join(errors))
