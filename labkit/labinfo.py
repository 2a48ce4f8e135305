"""Where the multi-node lab's pieces are, and whether it is up.

`swarm/lab` makes the lab; the Python tools (deploy, probe, baseline, cleanup) and the lab tests
need the same facts: the host engine's socket, one socket per worker engine, the registry, the
overlay network. They live here once, and `check_lab()` turns "not up" into one clear message.
"""
from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import ParamSpec

import requests

from sgcommon.engine import EngineError, connect, translate

REPO = Path(__file__).resolve().parents[1]
LAB_SCRIPT = REPO / "swarm" / "lab"
HOST_SOCKET = "unix:///var/run/docker.sock"
REGISTRY = "10.99.0.1:5000"
SINK = "http://10.99.0.1:8428"  # the lab host's victoria-metrics, where the exporters write (docs/exporter.md)
NETWORK = "swarmguard-net"
STACK = "swarmguard"
WORKERS_FILE = Path("/run/swarmguard-lab/workers")
BASE_IMAGE = f"{REGISTRY}/swarmguard-base:latest"


class LabNotUp(RuntimeError):
    """The lab (or the swarm a tool was pointed at) is not there; the message says what to do."""


P = ParamSpec("P")


def lab_tool(prog: str, *, also: tuple[type[Exception], ...] = ()) -> Callable[[Callable[P, int]], Callable[P, int]]:
    """A lab tool's `main`, with the exits every tool shares: one line on stderr, `prog: message`, and
    exit status 2 when the lab is not up, 1 on an engine error (a failed rollout or a lab-state error
    are engine errors) or on one of `also`. Anything else is a bug and keeps its traceback."""
    failures: tuple[type[Exception], ...] = (EngineError, *also)

    def wrap(main: Callable[P, int]) -> Callable[P, int]:
        @functools.wraps(main)
        def run(*args: P.args, **kwargs: P.kwargs) -> int:
            try:
                return main(*args, **kwargs)
            except LabNotUp as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                return 2
            except failures as exc:
                print(f"{prog}: {exc}", file=sys.stderr)
                return 1
        return run
    return wrap


def worker_socket(n: int) -> str:
    return f"unix:///run/sgn{n}/docker.sock"


@dataclasses.dataclass(frozen=True)
class Lab:
    """The lab's addresses: `node_sockets` maps each node's host name to its engine socket."""

    host_socket: str
    node_sockets: dict[str, str]
    registry: str = REGISTRY
    network: str = NETWORK

    def socket_of(self, hostname: str) -> str:
        try:
            return self.node_sockets[hostname]
        except KeyError:
            raise LabNotUp(f"node {hostname!r} is not a lab node ({sorted(self.node_sockets)})") from None


def workers_count(path: Path | None = None) -> int:
    """Workers of the running lab (as `swarm/lab up` recorded them), 0 when it is not up."""
    try:
        return int((path or WORKERS_FILE).read_text().strip())
    except (OSError, ValueError):
        return 0


def _swarm_state(url: str) -> tuple[str, str]:
    """(LocalNodeState, node host name) of the engine at `url`."""
    client = connect(url, timeout=5)
    try:
        with translate(f"info {url}"):
            info = client.info()
    finally:
        client.close()
    return info["Swarm"]["LocalNodeState"], info["Name"]


def check_lab() -> Lab:
    """The lab if every engine answers and is in the swarm, else LabNotUp saying what is missing."""
    hint = "run `swarm/lab up` (as root); `swarm/lab status` shows what is missing"
    n = workers_count()
    if n == 0:
        raise LabNotUp(f"the lab is not up ({WORKERS_FILE} missing): {hint}")
    sockets: dict[str, str] = {}
    for url in [HOST_SOCKET] + [worker_socket(i) for i in range(1, n + 1)]:
        try:
            state, name = _swarm_state(url)
        except EngineError as exc:
            raise LabNotUp(f"lab engine {url} does not answer ({exc}): {hint}") from exc
        if state != "active":
            raise LabNotUp(f"lab engine {url} ({name}) is not in the swarm ({state}): {hint}")
        sockets[name] = url
    try:
        requests.get(f"http://{REGISTRY}/v2/", timeout=3).raise_for_status()
    except requests.RequestException as exc:
        raise LabNotUp(f"the lab registry {REGISTRY} does not answer ({exc}): {hint}") from exc
    return Lab(host_socket=HOST_SOCKET, node_sockets=sockets)


def run_lab(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Runs `swarm/lab ARGS` (progress goes to this process's stdout/stderr)."""
    return subprocess.run([str(LAB_SCRIPT), *args], text=True, timeout=timeout, check=False)
