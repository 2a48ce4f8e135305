"""Entry point of `swarmguard-exporter`: parse settings, wire the parts, run until SIGTERM.

Start-up errors (bad settings, unreadable secret file, port in use) end the program with one
clear line and exit status 2; runtime failures (engine, controller, InfluxDB) never do.
"""
from __future__ import annotations

import argparse
import signal
import sys
import threading

from prometheus_client import disable_created_metrics

from exporter.alerts import AlertSender, Thresholds
from exporter.collect import Collector, log_link, resolve_link
from exporter.discovery import Discovery, Inventory
from exporter.follow import FollowSettings
from exporter.metrics import SelfMetrics
from exporter.predict import TrendSettings
from exporter.service import Exporter, make_http_server
from exporter.settings import PREFIX, ExporterSettings
from sgcommon import jsonlog
from sgcommon.influx import InfluxWriter, open_writer, parse_target
from sgcommon.secretfile import SecretError, read_secret
from sgcommon.settings import SettingsError, add_arguments, cli_overrides, describe, load_settings
from sgcommon.version import add_version_argument

log = jsonlog.get_logger("swarmguard.exporter")


def parse_args(argv: list[str] | None) -> ExporterSettings:
    parser = argparse.ArgumentParser(
        prog="swarmguard-exporter",
        description="Per-container CPU, memory and network metrics from cgroups and /proc: "
        "Prometheus /metrics, InfluxDB batches and instant alerts to the SwarmGuard controller.",
        epilog="Secrets: ALERT_TOKEN or ALERT_TOKEN_FILE, INFLUXDB_TOKEN or INFLUXDB_TOKEN_FILE.",
    )
    add_version_argument(parser)
    parser.add_argument("--config", help="YAML file of settings (keys: the option names with underscores)")
    add_arguments(parser, ExporterSettings, prefix=PREFIX)
    args = parser.parse_args(argv)
    return load_settings(ExporterSettings, prefix=PREFIX, yaml_path=args.config, overrides=cli_overrides(args, ExporterSettings))


def make_writer(s: ExporterSettings) -> InfluxWriter | None:
    if not s.influxdb_url:
        jsonlog.event(log, "influxdb disabled", reason="INFLUXDB_URL not set")
        return None
    try:
        target = parse_target(s.influxdb_url, org=s.influxdb_org, bucket=s.influxdb_bucket)
    except ValueError as exc:
        raise SettingsError(str(exc)) from None
    jsonlog.event(log, "influxdb enabled", url=target.url, org=target.org, bucket=target.bucket)
    return open_writer(
        target, token=read_secret("INFLUXDB_TOKEN"), flush_interval=s.influx_flush_interval, buffer_size=s.influx_buffer_size
    )


def make_alerts(s: ExporterSettings) -> AlertSender | None:
    if not s.alerts:
        return None
    thresholds = Thresholds(cpu=s.cpu_threshold, memory=s.memory_threshold, network=s.network_threshold)
    return AlertSender(
        s.controller_url,
        token=read_secret("ALERT_TOKEN"),
        thresholds=thresholds,
        # the confirming sample comes confirm_delay after the first, a followed container's every follow_interval
        min_gap=0.5 * min(s.effective_confirm_delay or s.interval, s.effective_follow_interval or s.interval),
        queue_size=s.alert_queue_size,
        timeout=s.alert_timeout,
    )


def run(s: ExporterSettings, stop: threading.Event) -> int:
    disable_created_metrics()  # type: ignore[no-untyped-call]  # no `_created` series: Prometheus users rarely want them, and they cost bytes per scrape
    inventory = Inventory(s.node_name)
    link = resolve_link(proc_root=s.proc_root, sys_root=s.sys_root, net_iface=s.net_iface, default_mbps=s.network_capacity_mbps)
    log_link(link)
    alerts = make_alerts(s)
    writer = make_writer(s)
    exporter: Exporter | None = None
    discovery: Discovery | None = None
    try:
        metrics = SelfMetrics()
        collector = Collector(cgroup_root=s.cgroup_root, proc_root=s.proc_root, link=link, on_error=metrics.error)
        exporter = Exporter(collector, inventory, interval=s.interval, alerts=alerts, writer=writer, self_metrics=metrics,
                            confirm_delay=s.effective_confirm_delay, confirm_margin=s.confirm_margin,
                            trend=TrendSettings(horizon=s.predict_horizon, window=s.predict_window, limit=s.predict_limit,
                                                confidence=s.predict_confidence, metrics=tuple(s.predict_metrics)),
                            follow=FollowSettings(interval=s.effective_follow_interval, rate=s.follow_rate, reads=s.follow_reads,
                                                  horizon=s.predict_horizon, limit=s.predict_limit,
                                                  confidence=s.predict_confidence))
        server = make_http_server(exporter, s.listen_address, s.port)
        discovery = Discovery(inventory, base_url=s.docker_host or None, node_name=s.node_name, on_error=exporter.self_metrics.error)
        discovery.start()
        exporter.start()
        threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
        jsonlog.event(log, "exporter started", port=server.server_address[1], interval=s.interval)
        stop.wait()
        server.shutdown()
        server.server_close()
        return 0
    finally:
        if discovery is not None:
            discovery.stop()
        if exporter is not None:
            exporter.stop()
            exporter.collector.close()
        if alerts is not None:
            alerts.close()
        if writer is not None:
            writer.close()
        jsonlog.event(log, "exporter stopped")


def main(argv: list[str] | None = None) -> int:
    try:
        settings = parse_args(argv)
    except SettingsError as exc:
        print(f"swarmguard-exporter: {exc}", file=sys.stderr)
        return 2
    jsonlog.configure(settings.log_level)
    jsonlog.event(log, "settings", **dict(describe(settings)))
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return run(settings, stop)
    except (SettingsError, SecretError, OSError) as exc:
        print(f"swarmguard-exporter: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
