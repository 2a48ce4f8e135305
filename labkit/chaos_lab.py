"""Fault primitives and observers for the chaos cases (labkit/chaos.py) on the multi-node lab.

The faults are real: a worker's engine SIGKILLed (its pid file), a worker's link taken down inside
its network namespace, the host's victoria-metrics stopped, the host engine (the manager) stopped
and started again, a container SIGKILLed. Each has its undo, and `restore` undoes all of them and
then puts the stack back in its known state (labkit/labreset.py), whatever a case left behind.

The observers read what SwarmGuard and Swarm say: the controller's /healthz, /metrics and /events
(from inside its container: nothing is published in the lab), service labels and tasks, every
exporter's own metrics on its node's host-mode port, a container's log, and the resident memory of a
container's main process (every lab node's containers share the host's /proc).
"""
from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any, Generic, TypeVar

import requests
from prometheus_client.parser import text_string_to_metric_families

from controller.actions.ownership import ACTION_LABEL, EXCLUSIONS_LABEL
from labkit import controller_api as api
from labkit import labinfo, labreset
from sgcommon.engine import EngineError, connect, translate
from sgcommon.engine.swarm import SwarmAdapter

STATE = Path("/run/swarmguard-lab")
HOST_PIDFILE = Path("/var/run/docker.pid")
SINK = labinfo.SINK
EXPORTER_PORT = 9101
T = TypeVar("T")


class ChaosError(EngineError):
    """A fault could not be made or undone on the lab; the message says which."""


# ---- processes -------------------------------------------------------------------------------

def read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_process(pid: int, *, grace: float) -> float:
    """SIGTERM, SIGKILL after `grace` s; seconds until it was gone."""
    began = time.monotonic()
    os.kill(pid, signal.SIGTERM)
    while alive(pid) and time.monotonic() - began < grace:
        time.sleep(0.1)
    if alive(pid):
        os.kill(pid, signal.SIGKILL)
        while alive(pid) and time.monotonic() - began < grace + 10:
            time.sleep(0.1)
    return time.monotonic() - began


def rss_bytes(pid: int) -> int | None:
    """VmRSS of a process, None when it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lab(*args: str) -> None:
    """`swarm/lab ARGS`; ChaosError when it fails."""
    done = labinfo.run_lab(*args)
    if done.returncode != 0:
        raise ChaosError(f"`swarm/lab {' '.join(args)}` failed with status {done.returncode}")


# ---- workers ---------------------------------------------------------------------------------

def worker_number(hostname: str) -> int:
    """worker-N -> N; ValueError for the manager or a name the lab does not make."""
    head, _, number = hostname.rpartition("-")
    if head != "worker" or not number.isdigit():
        raise ValueError(f"{hostname!r} is not a lab worker")
    return int(number)


def worker_pid(n: int) -> int | None:
    return read_pid(Path(f"/run/sgn{n}/dockerd.pid"))


def fail_worker_engine(n: int, *, kill: bool) -> int:
    """Worker N's dockerd SIGKILLed (a crash: its containers stay with containerd) or sent SIGTERM
    (as `swarm/lab node-stop`: it stops its containers, then exits; not waited for); its pid."""
    pid = worker_pid(n)
    if not alive(pid):
        raise ChaosError(f"worker-{n}'s engine is not running")
    assert pid is not None
    os.kill(pid, signal.SIGKILL if kill else signal.SIGTERM)
    return pid


def engine_answers(url: str) -> bool:
    try:
        client = connect(url, timeout=3)
    except EngineError:
        return False
    try:
        with translate(f"ping {url}"):
            return bool(client.ping())
    except EngineError:
        return False
    finally:
        client.close()


def set_link(n: int, *, up: bool) -> None:
    """Worker N's own end of its veth pair (eth0 in netns sgnN) up or down."""
    cmd = ["nsenter", f"--net=/var/run/netns/sgn{n}", "ip", "link", "set", "eth0", "up" if up else "down"]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ChaosError(f"{' '.join(cmd)}: {done.stderr.strip()}")


def link_is_up(n: int) -> bool:
    done = subprocess.run(["nsenter", f"--net=/var/run/netns/sgn{n}", "ip", "-o", "link", "show", "eth0"],
                          capture_output=True, text=True, check=False)
    return done.returncode == 0 and "state UP" in done.stdout


# ---- the metrics sink and the host engine ------------------------------------------------------

def sink_pid() -> int | None:
    return read_pid(STATE / "victoria-metrics.pid")


def sink_healthy() -> bool:
    try:
        return requests.get(f"{SINK}/health", timeout=2).ok
    except requests.RequestException:
        return False


def stop_sink() -> float:
    """Stops the lab's victoria-metrics as `swarm/lab down` does; seconds it took."""
    pid = sink_pid()
    if not alive(pid):
        raise ChaosError("the lab's victoria-metrics is not running")
    assert pid is not None
    return stop_process(pid, grace=10)


def restart_host_engine() -> dict[str, float]:
    """Stops the host engine (the manager) as a service manager would (SIGTERM: it stops its
    containers), then starts it again the way the lab does (`swarm/lab up`). Unix times of each step."""
    pid = read_pid(HOST_PIDFILE)
    if not alive(pid):
        raise ChaosError("the host engine is not running")
    assert pid is not None
    times = {"stop": time.time()}
    stop_process(pid, grace=60)
    times["stopped"] = time.time()
    lab("up")
    times["started"] = time.time()
    return times


# ---- Swarm ------------------------------------------------------------------------------------

def nodes(client: Any) -> list[dict[str, str]]:
    with translate("nodes"):
        return [{"id": n["ID"], "hostname": n["Description"]["Hostname"], "addr": n["Status"].get("Addr", ""),
                 "state": n["Status"]["State"], "role": n["Spec"]["Role"]} for n in client.nodes()]


def node_state(client: Any, hostname: str) -> str:
    return next((n["state"] for n in nodes(client) if n["hostname"] == hostname), "missing")


def service_spec(client: Any, service: str) -> dict[str, Any] | None:
    """The service's spec, None when it does not exist."""
    with translate(f"service {service}"):
        found = client.services(filters={"name": service})
    spec = next((s["Spec"] for s in found if s["Spec"]["Name"] == service), None)
    return dict(spec) if spec is not None else None


def service_labels(client: Any, service: str) -> dict[str, str]:
    spec = service_spec(client, service)
    return dict(spec.get("Labels") or {}) if spec else {}


def exclusions(labels: dict[str, str]) -> dict[str, float]:
    raw = labels.get(EXCLUSIONS_LABEL)
    return {k: float(v) for k, v in json.loads(raw).items()} if raw else {}


def marker(labels: dict[str, str]) -> dict[str, Any] | None:
    raw = labels.get(ACTION_LABEL)
    return dict(json.loads(raw)) if raw else None


def constraints(client: Any, service: str) -> list[str]:
    spec = service_spec(client, service) or {}
    return list(((spec.get("TaskTemplate") or {}).get("Placement") or {}).get("Constraints") or [])


def tasks(client: Any, service: str) -> list[dict[str, Any]]:
    with translate(f"tasks of {service}"):
        return list(client.tasks(filters={"service": service}))


def task_node(client: Any, task: dict[str, Any]) -> str | None:
    return api.node_names(client).get(task.get("NodeID") or "")


def set_env(client: Any, service: str, env: dict[str, str]) -> None:
    """Adds or replaces environment variables of a service (one update; its tasks restart)."""
    def edit(spec: dict[str, Any]) -> None:
        container = spec.setdefault("TaskTemplate", {}).setdefault("ContainerSpec", {})
        kept = [e for e in container.get("Env") or [] if e.split("=", 1)[0] not in env]
        container["Env"] = kept + [f"{k}={v}" for k, v in env.items()]

    SwarmAdapter(client).update(service, edit, what=f"environment of {service}")


# ---- the controller ---------------------------------------------------------------------------

def controller_json(client: Any, path: str) -> dict[str, Any] | None:
    try:
        return dict(json.loads(api.controller_get(client, path)))
    except (EngineError, ValueError, TypeError):
        return None


def controller_metric(client: Any, name: str, labels: str = "") -> float | None:
    try:
        return api.metric_value(api.controller_get(client, "/metrics"), name, labels)
    except EngineError:
        return None


def wait_controller_ready(client: Any, *, exporters: int, timeout: float = 120.0) -> str:
    """Waits until one controller runs, has reconciled and scrapes `exporters` exporters; its container."""
    def ready() -> str | None:
        container = api.controller_container(client)
        if not container:
            return None
        health = controller_json(client, "/healthz")
        up = controller_metric(client, "swarmguard_controller_exporters_up")
        if health and health.get("reconciled") and health.get("started") and up is not None and up >= exporters:
            return container
        return None

    return api.eventually(ready, timeout=timeout, every=1.0, what=f"the controller ready with {exporters} exporters up")


def container_pid(client: Any, container: str) -> int | None:
    try:
        with translate(f"inspect {container[:12]}"):
            pid = int(client.inspect_container(container)["State"]["Pid"])
    except EngineError:
        return None
    return pid or None


def container_log(client: Any, container: str, *, since: float) -> list[dict[str, Any]]:
    """A container's JSON log lines since a Unix time, the whole log for 0 (other lines are skipped)."""
    # docker-py refuses since=0 ("should be datetime or positive"): 0 or less means the whole log
    after = {"since": int(since)} if since >= 1 else {}
    with translate(f"logs of {container[:12]}"):
        text = client.logs(container, stdout=True, stderr=True, **after).decode(errors="replace")
    lines = []
    for line in text.splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue
        if isinstance(doc, dict):
            lines.append(doc)
    return lines


# ---- the exporters' own figures ---------------------------------------------------------------

def exporter_text(addr: str) -> str | None:
    try:
        answer = requests.get(f"http://{addr}:{EXPORTER_PORT}/metrics", timeout=3)
        return answer.text if answer.ok else None
    except requests.RequestException:
        return None


def sample_values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    """Every sample of `name` in exposition text, by its sorted label pairs."""
    out: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                out[tuple(sorted(sample.labels.items()))] = float(sample.value)
    return out


def value(text: str | None, name: str) -> float | None:
    if text is None:
        return None
    found = sample_values(text, name)
    return next(iter(found.values())) if len(found) == 1 else None


def buckets(text: str, histogram: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count) of a label-less histogram, ascending."""
    found = sample_values(text, f"{histogram}_bucket")
    pairs = [(float(dict(labels)["le"]), count) for labels, count in found.items()]
    return sorted(pairs)


def quantile(before: Sequence[tuple[float, float]], after: Sequence[tuple[float, float]], q: float) -> float | None:
    """The q-quantile's bucket upper bound of what a histogram observed between two readings."""
    start = dict(before)
    delta = [(le, count - start.get(le, 0.0)) for le, count in after]
    total = delta[-1][1] if delta else 0.0
    if total <= 0:
        return None
    for le, count in delta:
        if count >= q * total:
            return le
    return math.inf


# ---- sampling while a fault lasts ---------------------------------------------------------------

class Sampler(Generic[T]):
    """Calls `read` every `every` s on a thread; `samples` holds (Unix time, value) pairs."""

    def __init__(self, read: Callable[[], T], *, every: float) -> None:
        self._read, self._every = read, every
        self.samples: list[tuple[float, T]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chaos-sampler", daemon=True)

    def __enter__(self) -> Sampler[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.time(), self._read()))
            except Exception as exc:  # noqa: BLE001 - a sampler must not die with the lab in a fault
                self.samples.append((time.time(), exc))  # type: ignore[arg-type]
            self._stop.wait(self._every)

    def values(self) -> list[T]:
        return [v for _, v in self.samples if not isinstance(v, Exception)]


# ---- back to the known state ------------------------------------------------------------------

def restore(lab_: labinfo.Lab, *, say: Callable[[str], None] = print, workers: Iterable[int] | None = None) -> list[str]:
    """Undoes every fault a case can make, then the stack's known state: links up, every engine and
    the sink running (`swarm/lab up` starts what is missing), all nodes Ready, labreset.reset."""
    notes: list[str] = []
    numbers = list(workers) if workers is not None else list(range(1, labinfo.workers_count() + 1))
    for n in numbers:
        if not link_is_up(n):
            set_link(n, up=True)
            notes.append(f"worker-{n}: link up again")
    down = [n for n in numbers if not engine_answers(labinfo.worker_socket(n))]
    host_down = not engine_answers(labinfo.HOST_SOCKET)
    if down or host_down or not sink_healthy():
        lab("up")
        notes.append("swarm/lab up: " + ", ".join(
            [f"worker-{n}'s engine" for n in down] + (["the host engine"] if host_down else [])
            + ([] if sink_healthy() else ["the sink (still down!)"])) or "swarm/lab up")
    fresh = labinfo.check_lab()
    client = connect(fresh.host_socket, timeout=60)
    try:
        api.eventually(lambda: all(n["state"] == "ready" for n in nodes(client)), timeout=120, every=1.0,
                       what="every node Ready")
    finally:
        client.close()
    notes += labreset.reset(fresh, say=say)
    return notes
