"""Opens a low-level Docker API client with a pinned API version (no version round trip)."""
from __future__ import annotations

import os

import docker

from sgcommon.engine.errors import translate

# Engine 20.10 (Debian 12's docker.io) speaks 1.41; newer engines still accept it.
API_VERSION = "1.41"
DEFAULT_SOCKET = "unix:///var/run/docker.sock"


def connect(base_url: str | None = None, *, timeout: float = 10.0) -> docker.APIClient:
    """A client for `base_url`, else `$DOCKER_HOST`, else the local socket."""
    url = base_url or os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
    with translate(f"connect {url}"):
        return docker.APIClient(base_url=url, version=API_VERSION, timeout=timeout)
