"""The project's version, from the installed package metadata, in one place: `--version` on every
command line and the `swarmguard_build_info` gauge on every /metrics read it from here.

Every command imports this module at start, and a new stress-app replica is not healthy before its
imports are done (docs/fast-recovery.md), so the package metadata and prometheus_client are loaded
only when asked for: `--version` reads the metadata when it is given, the gauge when it is registered.
"""
from __future__ import annotations

import argparse
import platform
from collections.abc import Iterator, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from prometheus_client.core import Metric
    from prometheus_client.registry import CollectorRegistry

from sgcommon.metricset import BUILD_INFO

DISTRIBUTION = "swarmguard"


@cache
def version() -> str:
    """The installed distribution's version; "unknown" when run from a tree that is not installed."""
    from importlib import metadata

    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def version_line(name: str) -> str:
    """What `NAME --version` prints: `NAME VERSION`."""
    return f"{name} {version()}"


class _VersionAction(argparse.Action):
    """argparse's "version" action, with the version read only when the option is given."""

    def __init__(self, option_strings: Sequence[str], dest: str = argparse.SUPPRESS, *, name: str, help: str) -> None:  # noqa: A002
        super().__init__(option_strings, dest=dest, default=argparse.SUPPRESS, nargs=0, help=help)
        self.name = name

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> NoReturn:
        print(version_line(self.name or parser.prog))  # on stdout, as argparse's own "version" action
        parser.exit()


def add_version_argument(parser: argparse.ArgumentParser, name: str | None = None) -> None:
    """`--version`: prints `NAME VERSION` (NAME: the parser's prog) and exits 0."""
    parser.add_argument("--version", action=_VersionAction, name=name or "",
                        help="print the program's name and version, then exit")


class BuildInfo:
    """`swarmguard_build_info{component,version,python} 1`, as Prometheus' own build_info gauges (a
    collector by its `collect` method, which is all a registry calls)."""

    def __init__(self, component: str) -> None:
        self._labels = (component, version(), platform.python_version())

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import GaugeMetricFamily

        gauge = GaugeMetricFamily(BUILD_INFO, "SwarmGuard build: version, component and Python version; always 1.",
                                  labels=("component", "version", "python"))
        gauge.add_metric(self._labels, 1.0)
        yield gauge


def register_build_info(registry: CollectorRegistry, component: str) -> None:
    registry.register(BuildInfo(component))
