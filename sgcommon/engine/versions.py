"""Engine API versions: the range SwarmGuard speaks, the negotiation, and request fields newer than a version.

Why it exists: an engine refuses every request outside its own API range with HTTP 400 (Docker
Engine 29.0-29.2 refuse anything below 1.44, Engine 20.10 anything above 1.41), so the adapter
must pick, per engine, the newest version both sides speak; and a write at a version older than a
field makes the engine drop that field without a word (its `adjustForAPIVersion`). This module is
the one home for both rules; `client.connect` uses `negotiate`, `swarm.SwarmAdapter` uses
`fields_newer_than`. docs/engine-api.md has the field table these constants were checked against.
"""
from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sgcommon.engine.errors import UnsupportedVersion

# The oldest engine we run on: Docker Engine 20.10 (Debian 12's docker.io), the lab's engine.
MIN_API_VERSION = "1.41"
# The newest Engine API reference every field we send or read was checked against
# (https://docs.docker.com/reference/api/engine/version/v1.55/, Docker Engine 29.6/29.7).
# Raise it only after checking the version history for the endpoints in docs/engine-api.md.
MAX_API_VERSION = "1.55"


def parse(version: str) -> tuple[int, int]:
    """"1.44" -> (1, 44); ValueError for anything that is not MAJOR.MINOR."""
    major, dot, minor = version.strip().partition(".")
    if not dot or not major.isdigit() or not minor.isdigit():
        raise ValueError(f"not an API version: {version!r}")
    return int(major), int(minor)


def at_least(version: str, wanted: str) -> bool:
    return parse(version) >= parse(wanted)


@dataclass(frozen=True)
class EngineVersions:
    """What an engine's `GET /version` says about itself."""

    api_version: str  # the newest (and default) API version it speaks
    min_api_version: str  # the oldest it accepts
    engine: str = ""  # the release, e.g. "29.2.1"

    @classmethod
    def from_version_doc(cls, doc: Mapping[str, Any]) -> EngineVersions:
        """Reads `ApiVersion` / `MinAPIVersion` / `Version`; ValueError when ApiVersion is unusable.

        An engine that omits MinAPIVersion (none in our range does) is taken to accept anything
        up to its ApiVersion; a request it refuses still fails with a clear UnsupportedVersion.
        """
        api = str(doc.get("ApiVersion") or "")
        parse(api)
        minimum = str(doc.get("MinAPIVersion") or "")
        try:
            parse(minimum)
        except ValueError:
            minimum = "1.0"
        return cls(api_version=api, min_api_version=minimum, engine=str(doc.get("Version") or ""))

    def describe(self) -> str:
        release = f"Docker Engine {self.engine}, " if self.engine else ""
        return f"{release}API {self.min_api_version} to {self.api_version}"


def supported_range() -> str:
    return f"API {MIN_API_VERSION} to {MAX_API_VERSION}"


def negotiate(engine: EngineVersions, *, where: str) -> str:
    """The newest API version both the engine and SwarmGuard speak.

    Raises UnsupportedVersion naming both ranges when they do not overlap (`where`: the engine's URL).
    """
    low = max(parse(engine.min_api_version), parse(MIN_API_VERSION))
    high = min(parse(engine.api_version), parse(MAX_API_VERSION))
    if low > high:
        raise UnsupportedVersion(
            f"engine at {where} speaks {engine.describe()}; SwarmGuard speaks {supported_range()}: "
            "no common API version (docs/engine-api.md)"
        )
    return f"{high[0]}.{high[1]}"


@dataclass(frozen=True)
class VersionedField:
    """A request field that exists only from API `since` on.

    `path` walks a request body; "*" steps into every item of a list. `zero_is_unset`: the Go
    type is a plain value whose zero means "not set"; False for pointer fields where 0 is a value.
    """

    path: tuple[str, ...]
    since: str
    zero_is_unset: bool = True

    @property
    def name(self) -> str:
        return ".".join(self.path).replace(".*", "[]")


# Service spec fields an engine zeroes when the request's version is older than `since`, within
# our range (moby daemon/server/router/swarm/helpers.go `adjustForAPIVersion`, Docker Engine 29.2:
# https://github.com/moby/moby/blob/docker-v29.2.1/daemon/server/router/swarm/helpers.go).
SERVICE_SPEC_FIELDS: tuple[VersionedField, ...] = (
    VersionedField(("TaskTemplate", "ContainerSpec", "Healthcheck", "StartInterval"), "1.44"),
    VersionedField(("TaskTemplate", "ContainerSpec", "Privileges", "Seccomp"), "1.44"),
    VersionedField(("TaskTemplate", "ContainerSpec", "Privileges", "AppArmor"), "1.44"),
    VersionedField(("TaskTemplate", "ContainerSpec", "Privileges", "NoNewPrivileges"), "1.44"),
    VersionedField(("TaskTemplate", "ContainerSpec", "OomScoreAdj"), "1.46"),
    VersionedField(("TaskTemplate", "ContainerSpec", "Mounts", "*", "TmpfsOptions", "Options"), "1.46"),
    VersionedField(("TaskTemplate", "Resources", "SwapBytes"), "1.52", zero_is_unset=False),
    VersionedField(("TaskTemplate", "Resources", "MemorySwappiness"), "1.52", zero_is_unset=False),
)


def fields_newer_than(
    body: Mapping[str, Any], api_version: str, fields: tuple[VersionedField, ...] = SERVICE_SPEC_FIELDS
) -> list[VersionedField]:
    """The fields set in `body` that API `api_version` does not carry (the engine would drop them)."""
    return [f for f in fields if not at_least(api_version, f.since) and any(_is_set(v, f) for v in _values(body, f.path))]


def _values(node: Any, path: tuple[str, ...]) -> Iterator[Any]:
    if not path:
        yield node
        return
    head, rest = path[0], path[1:]
    if head == "*":
        for item in node if isinstance(node, list) else ():
            yield from _values(item, rest)
    elif isinstance(node, Mapping) and head in node:
        yield from _values(node[head], rest)


def _is_set(value: Any, field: VersionedField) -> bool:
    if value is None:
        return False
    return bool(value) if field.zero_is_unset else True
