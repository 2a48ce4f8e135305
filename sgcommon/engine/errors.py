"""One translator from docker/requests failures to the project's own exceptions."""
from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator

import docker.errors
import requests


class EngineError(RuntimeError):
    """A Docker Engine API call failed; `status` is the HTTP status when there was one."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class NotFound(EngineError):
    """The object (container, service, task, node) does not exist (any more)."""


class OutOfSequence(EngineError):
    """A service update carried a stale version ("update out of sequence")."""


class ServerError(EngineError):
    """The engine answered 5xx: worth a back-off and a retry."""


class EngineUnavailable(EngineError):
    """The engine could not be reached or did not answer in time."""


class UnsupportedVersion(EngineError):
    """The engine's API range and SwarmGuard's do not fit: no common version, a request refused for
    its version ("client version 1.41 is too old"), or a field the negotiated version lacks."""


# The engine's version middleware (moby daemon/server/middleware/version.go, the same text since 20.10).
_VERSION_REFUSED = re.compile(r"client version \S+ is too (old|new)")


@contextlib.contextmanager
def translate(what: str) -> Iterator[None]:
    """Runs a block of API calls, re-raising failures as EngineError subclasses naming `what`."""
    try:
        yield
    except docker.errors.NotFound as exc:
        raise NotFound(f"{what}: not found ({_explain(exc)})", status=404) from exc
    except docker.errors.APIError as exc:
        status = exc.status_code
        text = _explain(exc)
        if status == 400 and _VERSION_REFUSED.search(text):
            raise UnsupportedVersion(f"{what}: the engine refused the API version: {text}", status=status) from exc
        if "out of sequence" in text:
            raise OutOfSequence(f"{what}: {text}", status=status) from exc
        if status is not None and status >= 500:
            raise ServerError(f"{what}: engine error {status}: {text}", status=status) from exc
        raise EngineError(f"{what}: {text}", status=status) from exc
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise EngineUnavailable(f"{what}: engine unreachable ({exc.__class__.__name__})") from exc
    except docker.errors.DockerException as exc:
        raise EngineError(f"{what}: {exc}") from exc


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc).strip()
