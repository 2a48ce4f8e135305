"""Opens a low-level Docker API client at the newest API version the engine and SwarmGuard share.

Why not a pinned version: an engine refuses every version outside its own range (Docker Engine
29.0-29.2 answer a 1.41 client "client version 1.41 is too old"), and 20.10 refuses anything above
1.41. Why not docker-py's `version="auto"`: it takes the engine's newest version as it is, with no
upper bound, so a newer engine would be spoken to at a version whose fields nobody checked. So:
one `GET /version` (unversioned, served at the engine's own version; it is the one answer that
carries both `ApiVersion` and `MinAPIVersion`, `/_ping` only has the `Api-Version` header), then
`versions.negotiate` clamps to SwarmGuard's range. Each `connect` negotiates once for its client;
the result is logged once per engine URL and again only when it changes.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import threading

import docker

from sgcommon.engine import versions
from sgcommon.engine.errors import EngineError, EngineUnavailable, translate
from sgcommon.jsonlog import event, get_logger

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# docker-py reaches ssh:// engines only through paramiko, which SwarmGuard does not install: an
# engine's socket forwarded by the system's ssh does the same with nothing more (docs/lab.md).
SSH_HINT = ("{url}: ssh:// engines need the paramiko package, which SwarmGuard does not install; forward the "
            "manager's socket instead (ssh -nNT -L /tmp/manager.sock:/var/run/docker.sock USER@MANAGER) and use "
            "unix:///tmp/manager.sock")

log = get_logger("swarmguard.engine.client")
_logged: dict[str, str] = {}  # engine URL -> the version last logged for it
_logged_lock = threading.Lock()


def connect(base_url: str | None = None, *, timeout: float = 10.0) -> docker.APIClient:
    """A client for `base_url`, else `$DOCKER_HOST`, else the local socket, at the negotiated version.

    Raises EngineUnavailable when the engine cannot be reached, UnsupportedVersion when its API
    range and SwarmGuard's do not overlap (the message names both), EngineError otherwise.
    """
    url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    if url.startswith("ssh://") and importlib.util.find_spec("paramiko") is None:
        raise EngineUnavailable(SSH_HINT.format(url=url))
    engine = probe(url, timeout=timeout)
    version = versions.negotiate(engine, where=url)
    _log_once(url, engine, version)
    with translate(f"connect {url}"):
        # The stub says int; docker hands the timeout to requests, which takes seconds as a float.
        return docker.APIClient(base_url=url, version=version, timeout=timeout)  # type: ignore[arg-type]


def probe(url: str, *, timeout: float) -> versions.EngineVersions:
    """The engine's API range from one unversioned `GET /version`."""
    with translate(f"engine version at {url}"):
        # The version given here is never sent: /version is asked without a version prefix.
        client = docker.APIClient(base_url=url, version=versions.MIN_API_VERSION, timeout=timeout)  # type: ignore[arg-type]  # float, as above
        try:
            doc = client.version(api_version=False)
        finally:
            client.close()
    try:
        return versions.EngineVersions.from_version_doc(doc)
    except ValueError as exc:
        raise EngineError(f"engine version at {url}: unusable /version answer ({exc})") from exc


def _log_once(url: str, engine: versions.EngineVersions, version: str) -> None:
    with _logged_lock:
        if _logged.get(url) == version:
            return
        _logged[url] = version
    newer = not versions.at_least(versions.MAX_API_VERSION, engine.api_version)
    event(
        log, "engine API version negotiated", level=logging.WARNING if newer else logging.INFO,
        url=url, api_version=version, engine=engine.describe(), supported=versions.supported_range(),
        **({"note": f"the engine is newer than the newest API SwarmGuard was checked against; speaking {version}"}
           if newer else {}),
    )
