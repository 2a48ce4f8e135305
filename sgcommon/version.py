"""The project's version, from the installed package metadata, in one place: `--version` on every
command line and the `swarmguard_build_info` gauge on every /metrics read it from here.
"""
from __future__ import annotations

import argparse
import platform
from collections.abc import Iterator
from functools import cache
from importlib import metadata

from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from sgcommon.metricset import BUILD_INFO

DISTRIBUTION = "swarmguard"


@cache
def version() -> str:
    """The installed distribution's version; "unknown" when run from a tree that is not installed."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def version_line(name: str) -> str:
    """What `NAME --version` prints: `NAME VERSION`."""
    return f"{name} {version()}"


def add_version_argument(parser: argparse.ArgumentParser, name: str | None = None) -> None:
    """`--version`: prints `NAME VERSION` (NAME: the parser's prog) and exits 0."""
    parser.add_argument("--version", action="version", version=version_line(name or parser.prog),
                        help="print the program's name and version, then exit")


class BuildInfo(Collector):
    """`swarmguard_build_info{component,version,python} 1`, as Prometheus' own build_info gauges."""

    def __init__(self, component: str) -> None:
        self._labels = (component, version(), platform.python_version())

    def collect(self) -> Iterator[Metric]:
        gauge = GaugeMetricFamily(BUILD_INFO, "SwarmGuard build: version, component and Python version; always 1.",
                                  labels=("component", "version", "python"))
        gauge.add_metric(self._labels, 1.0)
        yield gauge


def register_build_info(registry: CollectorRegistry, component: str) -> None:
    registry.register(BuildInfo(component))
