"""Load hosts in the lab: real sshd + python3 machines for the load generator's ssh path.

Scenario 2's load generators run on hosts of their own that the orchestrator drives over ssh
(`alpine_load_orchestrator --ssh-hosts`). In the lab such a host is a container of the `loadhost`
image (swarm/loadhost.Dockerfile: Debian's openssh-server and python3) on the manager's engine,
attached to swarmguard-net, where it reaches web-stress as any client there does (DNS round robin,
no routing mesh in the lab), and to the engine's default bridge, where this machine reaches its
sshd at an address of its own.

`LoadHosts` (a context manager) makes a client key pair and one host key per host in a directory
it is given, starts the containers with those keys, writes `ssh_config` and `known_hosts` there
(strict host key checking against the keys it made: nothing is trusted on first use, and ~/.ssh
is neither read nor written), waits until each host answers over ssh as itself, and removes the
containers at the end, whatever happened. Containers that a killed run left behind carry LABEL
(its value: the hosts' name prefix) and go at the next start with that prefix (and with
`swarm/lab down`, which removes the engine's data).
"""
from __future__ import annotations

import argparse
import contextlib
import io
import signal
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sgcommon.engine import EngineError, connect, translate
from labkit import labinfo

IMAGE = f"{labinfo.REGISTRY}/loadhost:latest"
LABEL = "org.swarmguard.loadhost"
USER = "loadgen"  # the image's login user (key only)
HOST_KEY = "etc/ssh/ssh_host_ed25519_key"  # the one host key the image's sshd uses
BRIDGE = "bridge"  # the engine's default bridge: reachable from this machine, no port published


@dataclass(frozen=True)
class LoadHost:
    name: str  # its name in ssh_config, and its host name
    container_id: str
    address: str  # on the bridge: where ssh connects
    overlay_address: str  # on swarmguard-net: where its requests to the app come from
    host_key: str  # its public key ("ssh-ed25519 AAAA... comment")


class LoadHostError(EngineError):
    """The load hosts could not be made or did not answer; the message says what and where."""


def keygen(path: Path, *, comment: str) -> str:
    """A new ed25519 key pair at `path` (no passphrase); its public key."""
    try:
        done = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(path)],
                              capture_output=True, text=True, check=False)
    except OSError as exc:
        raise LoadHostError(f"ssh-keygen: {exc} (Debian package openssh-client, scripts/install.sh)") from exc
    if done.returncode != 0:
        raise LoadHostError(f"ssh-keygen {path} failed: {done.stderr.strip()}")
    return path.with_name(path.name + ".pub").read_text().strip()


def host_key_tar(private: bytes, public: bytes) -> bytes:
    """A tar of the host key pair as sshd wants it (root's, the private part 0600), for put_archive at /."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data, mode in ((HOST_KEY, private, 0o600), (HOST_KEY + ".pub", public, 0o644)):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uid, info.gid, info.mtime = len(data), mode, 0, 0, int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _quoted(path: Path) -> str:
    return '"' + str(path).replace('"', '\\"') + '"'


def ssh_config_text(hosts: Sequence[LoadHost], *, identity: Path, known_hosts: Path) -> str:
    """ssh_config for `ssh -F`: each host by name at its address, its key checked against known_hosts."""
    lines = ["# The lab's load hosts (labkit/loadhosts.py): ssh -F <this file> <name>", ""]
    for host in hosts:
        lines += [f"Host {host.name}", f"    HostName {host.address}", f"    HostKeyAlias {host.name}", ""]
    lines += ["Host *", f"    User {USER}", f"    IdentityFile {_quoted(identity)}", "    IdentitiesOnly yes",
              f"    UserKnownHostsFile {_quoted(known_hosts)}", "    GlobalKnownHostsFile /dev/null",
              "    StrictHostKeyChecking yes", "    UpdateHostKeys no", "    PasswordAuthentication no",
              "    KbdInteractiveAuthentication no", "    LogLevel ERROR", ""]
    return "\n".join(lines)


def known_hosts_text(hosts: Sequence[LoadHost]) -> str:
    return "".join(f"{host.name} {host.host_key}\n" for host in hosts)


def remove_labelled(client: Any, prefix: str | None = None) -> int:
    """Removes the load-host containers on `client`'s engine (a killed run's leftovers): all of
    them, or those of one `prefix` (the value of their LABEL)."""
    with translate("load-host containers"):
        found = client.containers(all=True, filters={"label": LABEL if prefix is None else f"{LABEL}={prefix}"})
        for container in found:
            client.remove_container(container["Id"], force=True)
    return len(found)


class LoadHosts:
    """`count` load hosts on the manager's engine (`client`), their keys and ssh files in `directory`."""

    def __init__(self, client: Any, directory: Path, *, count: int = 2, image: str = IMAGE,
                 network: str = labinfo.NETWORK, prefix: str = "loadhost", ready_timeout: float = 30.0,
                 say: Callable[[str], None] = print) -> None:
        if count < 1:
            raise ValueError(f"load hosts: expected >= 1, got {count}")
        self._client, self.directory, self.count = client, directory, count
        self._image, self._network, self._prefix = image, network, prefix
        self._ready_timeout, self._say = ready_timeout, say
        self.identity = directory / "id_ed25519"
        self.ssh_config = directory / "ssh_config"
        self.known_hosts = directory / "known_hosts"
        self.hosts: list[LoadHost] = []
        self._containers: list[str] = []

    @property
    def names(self) -> list[str]:
        return [host.name for host in self.hosts]

    def __enter__(self) -> LoadHosts:
        try:
            self.start()
        except BaseException:
            self.remove()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.remove()

    def start(self) -> None:
        stale = remove_labelled(self._client, self._prefix)
        if stale:
            self._say(f"    removed {stale} load-host containers left by an earlier run")
        with translate(f"image {self._image}"):
            if not self._client.images(name=self._image):
                raise LoadHostError(f"no image {self._image} on the manager: run swarm/lab build")
        self.directory.mkdir(parents=True, exist_ok=True)
        client_key = keygen(self.identity, comment="swarmguard-load-test")
        token = uuid.uuid4().hex[:6]
        for i in range(1, self.count + 1):
            name = f"{self._prefix}-{i}"
            host_key_path = self.directory / f"{name}_host_ed25519_key"
            host_key = keygen(host_key_path, comment=name)
            self.hosts.append(self._start_one(name, f"sg{name}-{token}", client_key=client_key,
                                              keys=host_key_tar(host_key_path.read_bytes(), host_key.encode() + b"\n"),
                                              host_key=host_key))
        self.known_hosts.write_text(known_hosts_text(self.hosts))
        self.ssh_config.write_text(ssh_config_text(self.hosts, identity=self.identity, known_hosts=self.known_hosts))
        self.ssh_config.chmod(0o600)
        for host in self.hosts:
            self._wait_ready(host)
        self._say("    load hosts ready: " + ", ".join(f"{h.name} ssh {h.address}, overlay {h.overlay_address}"
                                                      for h in self.hosts))

    def _start_one(self, name: str, container_name: str, *, client_key: str, keys: bytes, host_key: str) -> LoadHost:
        client = self._client
        with translate(f"start load host {name}"):
            host_config = client.create_host_config(network_mode=self._network)
            created = client.create_container(self._image, name=container_name, hostname=name, labels={LABEL: self._prefix},
                                              environment={"LOADHOST_AUTHORIZED_KEYS": client_key},
                                              host_config=host_config)
            container = created["Id"]
            self._containers.append(container)
            if not client.put_archive(container, "/", keys):
                raise LoadHostError(f"load host {name}: the engine refused its host key")
            # Created on the overlay (its resolver is then the engine's, which knows web-stress),
            # then on the bridge, which also gives it the default route.
            client.connect_container_to_network(container, BRIDGE)
            client.start(container)
            networks = client.inspect_container(container)["NetworkSettings"]["Networks"]
        address, overlay = networks[BRIDGE]["IPAddress"], networks[self._network]["IPAddress"]
        if not address or not overlay:
            raise LoadHostError(f"load host {name} has no address on {BRIDGE} and {self._network} "
                                f"(has it exited?): {self._log(container)!r}")
        return LoadHost(name=name, container_id=container, address=address, overlay_address=overlay,
                        host_key=host_key)

    def ssh(self, name: str, command: str, *, timeout: float = 10.0) -> subprocess.CompletedProcess[str]:
        """Runs `command` on load host `name` over ssh, with this run's configuration."""
        return subprocess.run(["ssh", "-F", str(self.ssh_config), "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                               "-T", name, command], capture_output=True, text=True, timeout=timeout, check=False)

    def _wait_ready(self, host: LoadHost) -> None:
        """Until `hostname` over ssh answers the host's own name: sshd up, key login and host key right."""
        deadline = time.monotonic() + self._ready_timeout
        while True:
            try:
                done = self.ssh(host.name, "hostname")
                answer = (done.stdout.strip(), done.stderr.strip())
            except subprocess.TimeoutExpired:
                answer = ("", "timed out")
            if answer[0] == host.name:
                return
            if time.monotonic() > deadline:
                raise LoadHostError(f"load host {host.name} ({host.address}) did not answer over ssh in "
                                    f"{self._ready_timeout:g} s: {answer[1] or answer[0]!r}; its sshd: "
                                    f"{self._log(host.container_id)!r}")
            time.sleep(0.2)

    def _log(self, container: str) -> str:
        """The last lines the container wrote (sshd logs to stderr), for an error message."""
        with contextlib.suppress(EngineError), translate("load host log"):
            return str(self._client.logs(container, tail=10).decode(errors="replace").strip())
        return ""

    def processes(self, name: str) -> list[str]:
        """The command lines running in load host `name` (from the engine, not over ssh)."""
        host = next(h for h in self.hosts if h.name == name)
        with translate(f"processes of {name}"):
            top = self._client.top(host.container_id, ps_args="-eo pid,args")
        return [row[-1] for row in top.get("Processes") or []]

    def remove(self) -> None:
        for container in self._containers:
            with contextlib.suppress(EngineError), translate("remove load host"):
                self._client.remove_container(container, force=True)
        self._containers.clear()


@labinfo.lab_tool("loadhosts")
def main(argv: Sequence[str] | None = None) -> int:
    """`python -m labkit.loadhosts`: load hosts to try the ssh path by hand, until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m labkit.loadhosts",
                                     description="Start load hosts in the lab (ssh + python3, attached to "
                                                 "swarmguard-net), print how to drive them, remove them on Ctrl-C.")
    parser.add_argument("--count", type=int, default=2, help="hosts (default %(default)s)")
    parser.add_argument("--dir", type=Path, required=True, help="where the keys, ssh_config and known_hosts go")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # leave through the context manager's cleanup
    lab = labinfo.check_lab()
    client = connect(lab.host_socket, timeout=60)
    with LoadHosts(client, args.dir, count=args.count) as hosts:
        print(f"tests/scripts/alpine_load_orchestrator --ssh-hosts {','.join(hosts.names)} "
              f"--ssh-config {hosts.ssh_config} --rps 50 --ramp-time 5 --hold-time 20 --ramp-down-time 5\n"
              f"ssh -F {hosts.ssh_config} {hosts.names[0]}\n(Ctrl-C removes the hosts)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            signal.pause()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
