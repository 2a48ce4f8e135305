"""Deploys SwarmGuard's stack (`tests/scripts/deploy_web_stress`) and waits until Swarm says it rolled out.

The production stack file is deployed unchanged; the lab adds swarm/stack.lab.yml, merged by the
docker CLI itself (`docker stack config`), and this module then applies what a compose merge cannot
express: services labelled `org.swarmguard.lab=omit` are left out, and a dnsrr service loses its
ingress-published ports (Swarm refuses them, and the lab has no routing mesh). Compose-to-service
conversion only exists in the docker CLI, so the deploy itself is `docker stack deploy -c -`; the
network check and the wait go through sgcommon.engine.

"Rolled out" is what Swarm reports, service by service: no update in progress (UpdateStatus), the
desired tasks (ServiceStatus) running and up to date by Swarm's own rule (the `_up-to-date` task
filter the docker CLI's convergence progress uses), nothing else meant to run. Comparing whole task
specs instead never ends after a lifted node exclusion: Swarm keeps a task whose node satisfies the
relaxed constraints, and that task's spec still holds the old constraint.
"""
from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import os
import secrets
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

import yaml

from sgcommon.engine import EngineError, NotFound, connect, translate, versions
from labkit import labinfo
from sgcommon.version import add_version_argument

OMIT_LABEL = "org.swarmguard.lab"
APP = "web-stress"
# A service's healthcheck for engines with start_interval (docs/fast-recovery.md): merged into its
# healthcheck there, dropped elsewhere. Compose's start_interval needs file format 3.12 (docker CLI 25+).
START_INTERVAL_KEY = "x-healthcheck-with-start-interval"
START_INTERVAL_SINCE = next(f.since for f in versions.SERVICE_SPEC_FIELDS if f.path[-1] == "StartInterval")
START_INTERVAL_FORMAT = "3.12"


def _labels(service: dict[str, Any]) -> dict[str, str]:
    labels = (service.get("deploy") or {}).get("labels") or {}
    if isinstance(labels, list):  # compose allows ["k=v", ...]
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in labels)
    return {str(k): str(v) for k, v in labels.items()}


def _used(services: dict[str, Any], key: str) -> set[str]:
    """Top-level `key` entries (volumes, secrets, configs, networks) the services refer to."""
    names: set[str] = set()
    for service in services.values():
        refs = service.get(key) or []
        if key == "networks":
            names.update(refs)  # a list of names or a dict keyed by name
            continue
        for ref in refs:
            if isinstance(ref, str):  # short syntax: "name" or "volume:/path"
                names.add(ref.split(":", 1)[0])
            elif key != "volumes" or ref.get("type", "volume") == "volume":
                names.add(ref.get("source", ""))
    return names


def shape_stack(
    config: dict[str, Any], *, lab: bool, replicas: int | None = None, port: int | None = None,
    network: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The stack to deploy from a merged config, and one note per change made (for the log)."""
    stack = copy.deepcopy(config)
    services: dict[str, Any] = stack.get("services") or {}
    notes: list[str] = []
    if lab:
        for name in [n for n, s in services.items() if _labels(s).get(OMIT_LABEL) == "omit"]:
            del services[name]
            notes.append(f"left out {name} (labelled {OMIT_LABEL}=omit)")
    if APP in services and replicas is not None:
        services[APP].setdefault("deploy", {})["replicas"] = replicas
        notes.append(f"{APP}: {replicas} replicas")
    if APP in services and port is not None:
        for entry in services[APP].get("ports") or []:
            if isinstance(entry, dict) and entry.get("target") == 8080:
                entry["published"] = port
        notes.append(f"{APP}: published on port {port}")
    for name, service in services.items():
        if (service.get("deploy") or {}).get("endpoint_mode") == "dnsrr" and service.get("ports"):
            kept = [p for p in service["ports"] if isinstance(p, dict) and p.get("mode") == "host"]
            if len(kept) != len(service["ports"]):
                notes.append(f"{name}: dropped ingress ports (dnsrr has no routing mesh)")
            service["ports"] = kept
            if not kept:
                del service["ports"]
    nets = stack.get("networks") or {}
    if network is not None and labinfo.NETWORK in nets and network != labinfo.NETWORK:
        nets[labinfo.NETWORK] = {**(nets[labinfo.NETWORK] or {}), "name": network}
        notes.append(f"{labinfo.NETWORK} is the existing network {network}")
    for key in ("volumes", "secrets", "configs", "networks"):
        if key in stack:
            used = _used(services, key)
            stack[key] = {k: v for k, v in (stack[key] or {}).items() if k in used}
            if not stack[key]:
                del stack[key]
    return stack, notes


def use_start_interval(stack: dict[str, Any], *, api_version: str) -> list[str]:
    """On an engine that has the health check's start interval (API 1.44+), merges each service's
    START_INTERVAL_KEY into its healthcheck (a task is probed often only while it starts) and
    raises the file format to 3.12; on an older engine the key is dropped and the stack file's
    short interval stays. One note per service changed."""
    notes: list[str] = []
    newer = versions.at_least(api_version, START_INTERVAL_SINCE)
    for name, service in (stack.get("services") or {}).items():
        extra = service.pop(START_INTERVAL_KEY, None)
        if not extra or not newer or not service.get("healthcheck"):
            continue
        service["healthcheck"].update(extra)
        stack["version"] = START_INTERVAL_FORMAT
        notes.append(f"{name}: healthcheck {', '.join(f'{k} {v}' for k, v in extra.items())} (API {api_version})")
    return notes


def name_configs_by_content(stack: dict[str, Any]) -> list[str]:
    """Names each file-backed config after a hash of its content, so a changed file rolls out.

    A Swarm config cannot be updated in place: deploying a changed rule file under the same
    name fails. A content-named config is a new object that the service update switches to.
    """
    notes: list[str] = []
    for key, config in (stack.get("configs") or {}).items():
        path = (config or {}).get("file")
        if not path or config.get("external"):
            continue
        with open(path, "rb") as fh:
            digest = hashlib.sha256(fh.read()).hexdigest()[:12]
        config["name"] = f"{key}-{digest}"
        notes.append(f"config {key} is {config['name']} (named by content)")
    return notes


def ensure_lab_secrets(client: Any, stack: dict[str, Any]) -> list[str]:
    """Creates each external secret the lab stack uses and lacks, with a random value.

    Only for the lab: on a real cluster the operator creates the secrets (README), and a missing
    one stops `docker stack deploy` with its name. The values never touch the disk or the repo.
    """
    wanted = [k for k, v in (stack.get("secrets") or {}).items() if (v or {}).get("external")]
    with translate("secrets"):
        have = {s["Spec"]["Name"] for s in client.secrets()}
        created = []
        for name in wanted:
            if name not in have:
                client.create_secret(name, secrets.token_urlsafe(32).encode())
                created.append(f"created the secret {name} (random value)")
    return created


def _docker_env(docker_host: str) -> dict[str, str]:
    return {**os.environ, "DOCKER_HOST": docker_host}


def merged_config(files: Sequence[str], *, docker_host: str) -> dict[str, Any]:
    args = ["docker", "stack", "config"]
    for path in files:
        args += ["-c", path]
    done = subprocess.run(args, env=_docker_env(docker_host), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"deploy: `{' '.join(args)}` failed: {done.stderr.strip()}")
    merged: dict[str, Any] = yaml.safe_load(done.stdout)
    return merged


def ensure_network(client: Any, name: str) -> bool:
    """Creates the attachable overlay `name` when missing; True if it had to."""
    with translate(f"network {name}"):
        if any(n["Name"] == name for n in client.networks(names=[name])):
            return False
        client.create_network(name, driver="overlay", attachable=True)
    return True


def escape_interpolation(value: Any) -> Any:
    """`value` with every `$` doubled in its strings.

    `docker stack config` prints the stack already interpolated, and `docker stack deploy -c -`
    interpolates it again: a literal `$` that the stack file wrote as `$$` (a health probe's shell
    variable, Grafana's entrypoint) would be taken for a variable the second time, emptied or refused.
    """
    if isinstance(value, str):
        return value.replace("$", "$$")
    if isinstance(value, dict):
        return {k: escape_interpolation(v) for k, v in value.items()}
    if isinstance(value, list):
        return [escape_interpolation(v) for v in value]
    return value


def stack_deploy(stack: dict[str, Any], name: str, *, docker_host: str, resolve: str) -> None:
    args = ["docker", "stack", "deploy", "--resolve-image", resolve, "-c", "-", name]
    done = subprocess.run(
        args, input=yaml.safe_dump(escape_interpolation(stack), sort_keys=False), env=_docker_env(docker_host),
        capture_output=True, text=True, check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"deploy: `{' '.join(args)}` failed: {done.stderr.strip()}")


def running_tasks(client: Any, service: str) -> list[dict[str, Any]]:
    """Tasks of `service` that should run and do (with a healthcheck: running means healthy)."""
    with translate(f"tasks of {service}"):
        tasks = client.tasks(filters={"service": service, "desired-state": "running"})
    return [t for t in tasks if t["Status"]["State"] == "running"]


UP_TO_DATE = "_up-to-date"  # the task filter the docker CLI's own convergence progress uses
IN_PROGRESS = ("updating", "rollback_started")
STUCK = ("paused", "rollback_paused")  # Swarm waits for an operator (failure_action: pause)


class RolloutFailed(EngineError):
    """Swarm itself says the rollout did not go through (paused, or rolled back); the message says why."""


@dataclasses.dataclass(frozen=True)
class Rollout:
    """One look at a service's rollout, as Swarm reports it.

    `state` is the service's UpdateStatus.State (None: no update ever ran, or none since the last
    spec change that needed no task replaced). `current` counts running tasks that Swarm calls up to
    date with the service's spec (the `_up-to-date` task filter: swarmkit's own IsTaskDirty, which
    keeps a task whose node still satisfies relaxed placement constraints, e.g. after a node
    exclusion was lifted). `meant` counts every task Swarm wants running (old ones of a start-first
    update included), `desired` what the service should run (ServiceStatus.DesiredTasks when the
    API has it, else the replicated mode's replicas).
    """

    service: str
    state: str | None
    message: str
    started_at: str | None
    desired: int
    running: int
    current: int
    meant: int

    @property
    def converged(self) -> bool:
        return (self.state not in IN_PROGRESS and self.current >= self.desired
                and self.running == self.desired and self.meant == self.desired)

    def describe(self) -> str:
        state = self.state or "no update status"
        return (f"{self.service}: {self.current}/{self.desired} running tasks up to date, {self.running} running, "
                f"{self.meant} meant to run; update {state}" + (f" ({self.message})" if self.message else ""))


def _service_doc(client: Any, service: str) -> dict[str, Any]:
    """The service with ServiceStatus (API >= 1.41 lists it with status=true) when the engine gives it."""
    doc: dict[str, Any] = client.inspect_service(service)
    version = tuple(int(p) for p in str(getattr(client, "api_version", "0")).split(".") if p.isdigit())
    if version < (1, 41):  # ServiceStatus came with API 1.41
        return doc
    listed = client.services(filters={"id": doc["ID"]}, status=True)
    same = [s for s in listed if s.get("ID") == doc["ID"]]
    return same[0] if same else doc


def rollout(client: Any, service: str, *, want: int | None = None) -> Rollout:
    """How far `service` has rolled out, from UpdateStatus, ServiceStatus and Swarm's up-to-date tasks.

    Nothing here compares specs: Swarm decides which task is current. `want` overrides the desired
    count when the caller knows it and the API does not report it.
    """
    with translate(f"rollout of {service}"):
        doc = _service_doc(client, service)
        meant = [t for t in client.tasks(filters={"service": doc["ID"], "desired-state": "running"})]
        current = client.tasks(filters={"service": doc["ID"], "desired-state": "running", UP_TO_DATE: "true"})
    update = doc.get("UpdateStatus") or {}
    status = doc.get("ServiceStatus") or {}
    mode = (doc.get("Spec") or {}).get("Mode") or {}
    desired = status.get("DesiredTasks")
    if desired is None:
        desired = want if want is not None else int((mode.get("Replicated") or {}).get("Replicas", len(meant)))
    running = [t for t in meant if t["Status"]["State"] == "running"]
    return Rollout(service=service, state=update.get("State"), message=update.get("Message") or "",
                   started_at=update.get("StartedAt"), desired=int(desired), running=len(running),
                   current=sum(1 for t in current if t["Status"]["State"] == "running"), meant=len(meant))


def update_started_at(client: Any, service: str) -> str | None:
    """StartedAt of the service's last update, None when it has none or does not exist (before a deploy)."""
    try:
        with translate(f"service {service}"):
            return (client.inspect_service(service).get("UpdateStatus") or {}).get("StartedAt")
    except NotFound:
        return None


def wait_running(
    client: Any, service: str, want: int | None = None, *, timeout: float, since_update: str | None = None,
    clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep,
) -> float:
    """Seconds until Swarm reports `service` rolled out: no update in progress, the desired tasks
    running and up to date, nothing else meant to run. RolloutFailed at once when Swarm paused the
    update or rolled back one that started after `since_update` (the StartedAt seen before the
    deploy); SystemExit after `timeout` with the last state."""
    start = clock()
    while True:
        seen = rollout(client, service, want=want)
        if seen.state in STUCK:
            raise RolloutFailed(f"Swarm paused the update of {seen.describe()}")
        if seen.state == "rollback_completed" and seen.started_at != since_update:
            raise RolloutFailed(f"Swarm rolled the update back: {seen.describe()}")
        if seen.converged and (want is None or seen.desired == want):
            return clock() - start
        if clock() - start > timeout:
            raise SystemExit(f"deploy: not rolled out after {timeout:.0f} s: {seen.describe()}")
        sleep(0.2)


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="deploy_web_stress",
        description="Deploy SwarmGuard's stack (web-stress) to the lab, or to any swarm with --docker-host.",
    )
    add_version_argument(parser)
    parser.add_argument("--docker-host", help="a manager's engine, e.g. its socket forwarded by ssh: "
                        "unix:///tmp/manager.sock (docs/lab.md); default: the lab")
    parser.add_argument("--lab", action="store_true", help="the lab (the default without --docker-host)")
    parser.add_argument("-c", "--compose-file", action="append", dest="files",
                        help="compose files (default swarm/stack.yml, plus swarm/stack.lab.yml in the lab)")
    parser.add_argument("--stack", default=labinfo.STACK, help="stack name (default %(default)s)")
    parser.add_argument("--replicas", type=int, help="web-stress replicas (default: the stack file's)")
    parser.add_argument("--port", type=int, help="published port of web-stress (not in the lab)")
    parser.add_argument("--network", default=labinfo.NETWORK,
                        help="the attachable overlay the stack's swarmguard-net stands for (default %(default)s)")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait for each service to roll out (0: no wait)")
    args = parser.parse_args(argv)
    if args.docker_host and args.lab:
        parser.error("--lab and --docker-host exclude each other")
    if args.replicas is not None and args.replicas < 0:
        parser.error("--replicas must be >= 0")
    if args.port is not None and not 1 <= args.port <= 65535:
        parser.error("--port must be 1..65535")
    args.lab = not args.docker_host
    if args.lab and args.port is not None:
        parser.error("--port: the lab publishes no port (dnsrr); reach web-stress inside swarmguard-net")
    if not args.files:
        stack_dir = labinfo.REPO / "swarm"
        args.files = [str(stack_dir / "stack.yml")] + ([str(stack_dir / "stack.lab.yml")] if args.lab else [])
    return args


@labinfo.lab_tool("deploy")
def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    docker_host = labinfo.check_lab().host_socket if args.lab else args.docker_host
    client = connect(docker_host, timeout=30)
    print(f"==> deploy stack {args.stack} to {docker_host} from {' + '.join(args.files)}", flush=True)
    stack, notes = shape_stack(
        merged_config(args.files, docker_host=docker_host),
        lab=args.lab, replicas=args.replicas, port=args.port, network=args.network,
    )
    notes += use_start_interval(stack, api_version=client.api_version)
    notes += name_configs_by_content(stack)
    if args.lab:
        notes += ensure_lab_secrets(client, stack)
    for note in notes:
        print(f"    {note}")
    if ensure_network(client, args.network):
        print(f"    created the attachable overlay network {args.network}")
    services = [f"{args.stack}_{name}" for name in stack.get("services", {})]
    before = {name: update_started_at(client, name) for name in services}
    started = time.monotonic()
    # Pinning each image's digest makes a rebuilt `:latest` roll out on the next deploy.
    stack_deploy(stack, args.stack, docker_host=docker_host, resolve="always")
    if args.wait > 0:
        app = stack["services"].get(APP, {})
        for name in services:
            want = app.get("deploy", {}).get("replicas", 1) if name == f"{args.stack}_{APP}" else None
            waited = wait_running(client, name, want, timeout=args.wait, since_update=before[name])
            print(f"==> {name}: rolled out, {time.monotonic() - started:.1f} s after deploy "
                  f"({waited:.1f} s waiting)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
