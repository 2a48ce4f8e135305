"""The exporter's settings (docs/exporter.md): defaults < YAML (--config) < environment < command line.

Environment variables are EXPORTER_<FIELD>, except the deployment-wide ones the stack file
sets by their plain names: NET_IFACE, NETWORK_CAPACITY_MBPS, NODE_NAME, CONTROLLER_URL and
INFLUXDB_*. Secrets (ALERT_TOKEN, INFLUXDB_TOKEN, or their _FILE forms) are not settings:
they are read through sgcommon.secretfile and never logged.
"""
from __future__ import annotations

from dataclasses import dataclass

from sgcommon.settings import SettingsError, setting

PREFIX = "EXPORTER_"


@dataclass(frozen=True)
class ExporterSettings:
    interval: float = setting(1.0, "seconds between two sweeps of the containers")
    listen_address: str = setting("0.0.0.0", "address of the /metrics and /healthz server")
    port: int = setting(9101, "port of the /metrics and /healthz server (9100 is node_exporter's)")
    cgroup_root: str = setting("/sys/fs/cgroup", "cgroup mount root (/host/sys/fs/cgroup in the container)")
    proc_root: str = setting("/proc", "the host's /proc (/host/proc in the container)")
    sys_root: str = setting("/sys", "the host's /sys, for the link speed (/host/sys in the container)")
    docker_host: str = setting("", "engine address; empty: DOCKER_HOST, else unix:///var/run/docker.sock")
    node_name: str = setting("", "node host name; empty: the engine's /info Name", env="NODE_NAME")
    net_iface: str = setting("", "node interface for node network figures; empty: the default route's", env="NET_IFACE")
    network_capacity_mbps: float = setting(100.0, "link capacity when the interface does not report a speed", env="NETWORK_CAPACITY_MBPS")
    controller_url: str = setting("http://controller:5000", "controller base URL; alerts go to {url}/alert", env="CONTROLLER_URL")
    alerts: bool = setting(True, "send instant alerts to the controller")
    cpu_threshold: float = setting(75.0, "alert when a container's cpu_percent is above this")
    memory_threshold: float = setting(80.0, "alert when a container's memory_percent is above this")
    network_threshold: float = setting(65.0, "alert when a container's network_percent is above this")
    confirm_delay: float = setting(0.25, "seconds after a container's first breaching sample to read it again and alert "
                                   "if it still breaches (at most half the interval; docs/exporter.md); 0: the next "
                                   "sweep confirms, as the rules' for: 2 did before")
    confirm_margin: float = setting(10.0, "points by which the read confirm_delay after a breaching sample must exceed "
                                    "its threshold to alert at once; a rate (CPU, network) that climbed from within this "
                                    "margin below needs only to stay over it and not fall (docs/exporter.md); otherwise "
                                    "the next sweep confirms")
    predict_horizon: float = setting(10.0, "seconds ahead a container's trend is extrapolated for a predictive alert; "
                                     "0: no predictive alerts (docs/exporter.md)")
    predict_window: float = setting(5.0, "seconds of a container's samples the trend's line goes through")
    predict_limit: float = setting(100.0, "percent the trend must reach within predict_horizon for a predictive alert")
    predict_confidence: float = setting(2.0, "standard errors below the trend's line that must still reach the limit")
    predict_metrics: list[str] = setting(["mem"], "figures whose trend is watched: mem, cpu")
    follow_interval: float = setting(0.25, "seconds between reads of a container whose memory climbs fast, between sweeps "
                                     "(at most half the interval; docs/exporter.md); 0, or predict_horizon 0: not followed")
    follow_rate: float = setting(3.0, "points of memory_percent a second a climb must keep up to be followed")
    follow_reads: int = setting(4, "climbs in a row a followed container must show before its samples may be sent")
    alert_timeout: float = setting(1.0, "seconds before an alert POST is given up (one retry after 100 ms)")
    alert_queue_size: int = setting(64, "alerts waiting to be sent; beyond that new ones are dropped and counted")
    influxdb_url: str = setting("", "InfluxDB base URL (or its /api/v2/write URL); empty: no InfluxDB", env="INFLUXDB_URL")
    influxdb_org: str = setting("swarmguard", "InfluxDB organisation", env="INFLUXDB_ORG")
    influxdb_bucket: str = setting("metrics", "InfluxDB bucket", env="INFLUXDB_BUCKET")
    influx_flush_interval: float = setting(
        5.0, "seconds between InfluxDB batches (5-10 s keeps the sink's writes few and the dashboards fresh)")
    influx_buffer_size: int = setting(20_000, "lines kept while InfluxDB is unreachable; the oldest are dropped first")
    log_level: str = setting("INFO", "DEBUG, INFO, WARNING or ERROR")

    def __post_init__(self) -> None:
        errors = []
        if not 0.05 <= self.interval <= 3600:
            errors.append(f"interval: expected 0.05..3600 seconds, got {self.interval}")
        if not 0 <= self.port <= 65535:
            errors.append(f"port: expected 0..65535, got {self.port}")
        if self.network_capacity_mbps <= 0:
            errors.append(f"network_capacity_mbps: expected > 0, got {self.network_capacity_mbps}")
        for name in ("cpu_threshold", "memory_threshold", "network_threshold"):
            if not 0 <= getattr(self, name) <= 100:
                errors.append(f"{name}: expected 0..100, got {getattr(self, name)}")
        if not 0 <= self.confirm_delay <= 60:
            errors.append(f"confirm_delay: expected 0..60 seconds, got {self.confirm_delay}")
        if not 0 <= self.confirm_margin <= 100:
            errors.append(f"confirm_margin: expected 0..100 points, got {self.confirm_margin}")
        if not 0 <= self.predict_horizon <= 300:
            errors.append(f"predict_horizon: expected 0..300 seconds, got {self.predict_horizon}")
        if not 2 <= self.predict_window <= 120:
            errors.append(f"predict_window: expected 2..120 seconds, got {self.predict_window}")
        if not 0 < self.predict_limit <= 100:
            errors.append(f"predict_limit: expected more than 0 and at most 100 percent, got {self.predict_limit}")
        if not 0 <= self.predict_confidence <= 100:
            errors.append(f"predict_confidence: expected 0..100 standard errors, got {self.predict_confidence}")
        unknown = [m for m in self.predict_metrics if m not in ("mem", "cpu")]
        if unknown:
            errors.append(f"predict_metrics: expected mem and/or cpu, got {', '.join(unknown)}")
        if not 0 <= self.follow_interval <= 60:
            errors.append(f"follow_interval: expected 0..60 seconds, got {self.follow_interval}")
        if not 0 < self.follow_rate <= 1000:
            errors.append(f"follow_rate: expected more than 0 and at most 1000 points a second, got {self.follow_rate}")
        if not 2 <= self.follow_reads <= 100:
            errors.append(f"follow_reads: expected 2..100, got {self.follow_reads}")
        if self.alert_timeout <= 0 or self.alert_queue_size < 1 or self.influx_buffer_size < 1 or self.influx_flush_interval <= 0:
            errors.append("alert_timeout and influx_flush_interval must be > 0, queue and buffer sizes >= 1")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            errors.append(f"log_level: expected DEBUG, INFO, WARNING or ERROR, got {self.log_level!r}")
        if errors:
            raise SettingsError("; ".join(errors))

    @property
    def effective_confirm_delay(self) -> float:
        """The confirm delay in use: a confirming read must come well before the next sweep."""
        return min(self.confirm_delay, self.interval / 2)

    @property
    def effective_follow_interval(self) -> float:
        """The follow interval in use: 0 (off) without predictive alerts; at least one read between two sweeps."""
        return 0.0 if self.predict_horizon <= 0 else min(self.follow_interval, self.interval / 2)
