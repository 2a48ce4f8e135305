"""The controller's settings in one dataclass: defaults < YAML < env (CONTROLLER_*) < CLI
(docs/controller.md, "Running it", lists them all).

Threshold overrides for the rule files are not here: the rule files name them, so they come as
`SWARMGUARD_THRESHOLD_<NAME>` variables and `--threshold NAME=VALUE` options through
controller.rules.merge_overrides. The recovery actions' settings nest as `actions`
(controller.actions.settings.ActionSettings): YAML `actions:`, `CONTROLLER_ACTIONS_<NAME>`,
`--actions-<name>`, so an operator still has one YAML file and one prefix.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import ClassVar

from controller.actions.settings import ActionSettings
from sgcommon.settings import SettingsError, group, setting

PREFIX = "CONTROLLER_"


@dataclass
class ControllerSettings:
    """Everything the controller process needs besides its secrets and the rule files' content."""

    # Settings that moved into `actions` (refused under their old names: sgcommon.settings).
    RENAMED: ClassVar[Mapping[str, str]] = {
        "dry_run": "actions.dry_run",
        "max_actions_per_minute": "actions.max_actions_per_minute",
        "migrate_timeout": "actions.migrate_timeout",
        "scale_timeout": "actions.scale_timeout",
        "exclusion_ttl": "actions.exclusion_ttl",
        "scale_down_cooldown": "actions.after_scale_up",
        "min_replicas": "actions.min_replicas",
        "max_replicas": "actions.max_replicas",
    }

    listen: str = setting("0.0.0.0", "address the HTTP server binds")
    port: int = setting(5000, "HTTP port for /alert, /events, /metrics, /healthz")
    rules: str = setting("rules", "rule directory (every *.yml in it) or one rule file")
    insecure_no_alert_token: bool = setting(False, "accept alerts without a bearer token (testing only)")
    docker_url: str | None = setting(None, "Docker Engine API URL (default $DOCKER_HOST, else the local socket)")
    scrape_interval: float = setting(1.0, "seconds between scrape rounds of every exporter (1-5 recommended)")
    scrape_timeout: float = setting(1.0, "seconds an exporter has to answer one scrape")
    scrape_workers: int = setting(64, "scrape requests in flight at once in one round")
    exporters: list[str] = setting([], "static exporter list (host:port or URL); empty = find them through Swarm")
    exporter_service: str = setting("swarmguard_exporter", "Swarm service whose tasks are the exporters")
    exporter_port: int = setting(9101, "port of each exporter's /metrics")
    services_interval: float = setting(5.0, "seconds between refreshes of the Swarm service list")
    service_rules_interval: float = setting(15.0, "seconds between evaluations of service rules (scale-down)")
    rules_interval: float = setting(0.5, "seconds between checks of the rule files for changes (hot reload)")
    rules_configs_interval: float = setting(
        1.0, "seconds between looks at the rule set applied with `swarmguard-controller rules apply` "
        "(a Swarm config; needs a manager's Engine API); 0: the rule files only")
    exclusions_interval: float = setting(10.0, "seconds between checks for expired node exclusions")
    cache_window: float = setting(300.0, "seconds of samples kept per container")
    cache_max_samples: int = setting(600, "samples kept per container at most")
    cache_max_containers: int = setting(20000, "containers kept at most (least recently seen dropped)")
    stale_after: float = setting(10.0, "a container whose newest sample is older than this is stale")
    forget_after: float = setting(120.0, "a container not seen for this long is forgotten")
    events_keep: int = setting(500, "action records kept for GET /events")
    influx_url: str | None = setting(None, "InfluxDB base URL for recovery_events (unset: not written)", env="INFLUXDB_URL")
    influx_org: str = setting("swarmguard", "InfluxDB organisation", env="INFLUXDB_ORG")
    influx_bucket: str = setting("metrics", "InfluxDB bucket", env="INFLUXDB_BUCKET")
    log_level: str = setting("INFO", "log level")
    actions: ActionSettings = group(ActionSettings, "recovery actions: limits, time-outs, rule parameter defaults")

    def __post_init__(self) -> None:
        errors = []
        if not 0.2 <= self.scrape_interval <= 60:
            errors.append(f"scrape_interval: {self.scrape_interval} s is outside 0.2-60")
        for name in ("scrape_timeout", "services_interval", "service_rules_interval", "exclusions_interval",
                     "rules_interval", "cache_window", "stale_after", "forget_after"):
            if not getattr(self, name) > 0:
                errors.append(f"{name}: must be > 0")
        if not 0 <= self.rules_configs_interval <= 60:
            errors.append(f"rules_configs_interval: {self.rules_configs_interval} s is outside 0-60 (0: off)")
        for name in ("scrape_workers", "cache_max_samples", "cache_max_containers", "events_keep", "port"):
            if getattr(self, name) < 1:
                errors.append(f"{name}: must be >= 1")
        if errors:
            raise SettingsError("; ".join(errors))
