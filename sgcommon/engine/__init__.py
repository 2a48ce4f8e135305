"""The one adapter to the Docker Engine API.

Everything in SwarmGuard that talks to Docker goes through this package:
`client.connect()` opens a low-level API client at the API version negotiated with the
engine (`versions`: the supported range, docs/engine-api.md), `errors.translate()` turns every
failure into one of the project's own exceptions. `containers` (local engine:
listing, inspecting, events) and `swarm` (nodes, services, tasks, updates) map one
method to one endpoint family.
"""
from sgcommon.engine.client import connect
from sgcommon.engine.errors import (
    EngineError,
    EngineUnavailable,
    NotFound,
    OutOfSequence,
    ServerError,
    UnsupportedVersion,
    translate,
)
from sgcommon.engine.versions import MAX_API_VERSION, MIN_API_VERSION

__all__ = [
    "MAX_API_VERSION",
    "MIN_API_VERSION",
    "connect",
    "EngineError",
    "EngineUnavailable",
    "NotFound",
    "OutOfSequence",
    "ServerError",
    "UnsupportedVersion",
    "translate",
]
