"""The one adapter to the Docker Engine API.

Everything in SwarmGuard that talks to Docker goes through this package:
`client.connect()` opens a low-level API client, `errors.translate()` turns every
failure into one of the project's own exceptions. `containers` (local engine:
listing, inspecting, events) and `swarm` (nodes, services, tasks, updates) map one
method to one endpoint family.
"""
from sgcommon.engine.client import API_VERSION, connect
from sgcommon.engine.errors import (
    EngineError,
    EngineUnavailable,
    NotFound,
    OutOfSequence,
    ServerError,
    translate,
)

__all__ = [
    "API_VERSION",
    "connect",
    "EngineError",
    "EngineUnavailable",
    "NotFound",
    "OutOfSequence",
    "ServerError",
    "translate",
]
