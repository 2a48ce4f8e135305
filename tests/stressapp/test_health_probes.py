"""The images' and the stack's health probes pass on 200 only: a closed port, a 503 or a 404 fails
them, as curl -f failed. swarm/health-probe (the stress app's) also waits for an app that is still
starting, within one run, and once the app has answered it sleeps before each check. The commands
are read from the files the lab builds and deploys and run with the same bash and sh, so what is
tested is what the engine will exec."""
from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.stressapp.helpers import REPO, AppProcess

pytestmark = pytest.mark.slow
SWARM = REPO / "swarm"


def dockerfile_healthcheck(name: str) -> str:
    """The HEALTHCHECK CMD of swarm/<name>.Dockerfile (line continuations joined)."""
    text = (SWARM / f"{name}.Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK [^\n]*? CMD +(.*)$", text, re.MULTILINE)
    assert found, f"no HEALTHCHECK in {name}.Dockerfile"
    return found.group(1).strip()


def as_exec(cmd: str) -> list[str]:
    """What the engine runs for a HEALTHCHECK CMD: the exec form as is, the shell form under sh -c."""
    return list(json.loads(cmd)) if cmd.startswith("[") else ["/bin/sh", "-c", cmd]


def stack_probe() -> list[str]:
    """web-stress's healthcheck test in swarm/stack.yml, as compose passes it."""
    stack = yaml.safe_load((SWARM / "stack.yml").read_text())
    test = stack["services"]["web-stress"]["healthcheck"]["test"]
    assert test[0] == "CMD"
    return [part.replace("$$", "$") for part in test[1:]]


def run(probe: list[str], env: dict[str, str], marker: Path) -> tuple[int, float]:
    """(exit code, seconds) of one probe run, with health-probe on the PATH as in the image."""
    started = time.monotonic()
    done = subprocess.run(probe, env={"PATH": f"{SWARM}:/usr/bin:/bin", "HEALTH_PROBE_MARKER": str(marker), **env},
                          capture_output=True, timeout=15)
    return done.returncode, time.monotonic() - started


class Answer(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        time.sleep(self.server.owner.delay)  # type: ignore[attr-defined]
        status = self.server.owner.status  # type: ignore[attr-defined]
        self.send_response(status if self.path in ("/healthz", "/health") else 404)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


class Server:
    """A small HTTP server answering `status` on /healthz and /health, 404 elsewhere; it may start
    listening a while after the port is taken (an app still booting)."""

    def __init__(self, *, after: float = 0.0) -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = int(sock.getsockname()[1])
        self.status = 200
        self.delay = 0.0  # seconds before each answer: a busy app
        self._httpd: http.server.ThreadingHTTPServer | None = None
        self._ready = threading.Event()
        threading.Thread(target=self._serve, args=(after,), daemon=True).start()

    def _serve(self, after: float) -> None:
        time.sleep(after)
        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", self.port), Answer)
        self._httpd.owner = self  # type: ignore[attr-defined]
        self._ready.set()
        self._httpd.serve_forever(poll_interval=0.05)

    def close(self) -> None:
        self._ready.wait(10)
        if self._httpd:
            self._httpd.shutdown()
            self._httpd.server_close()


@pytest.fixture
def server() -> Iterator[Server]:
    made = Server()
    made._ready.wait(5)
    yield made
    made.close()


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    return tmp_path / "health-probe-up"


def test_the_stress_apps_probe_passes_on_the_app_then_sleeps_first_and_fails_once_it_is_gone(marker: Path) -> None:
    app = AppProcess()
    try:
        app.wait_healthy()
        image = as_exec(dockerfile_healthcheck("stressapp"))
        stack = [part.replace("8080", str(app.port)) for part in stack_probe()]
        first, _ = run(image, {"STRESS_PORT": str(app.port)}, marker)
        assert first == 0 and marker.exists()
        again, took = run(stack, {}, marker)
        assert again == 0 and took >= 2.0  # up before: the check comes after the 2 s sleep
    finally:
        app.stop()
    gone, _ = run(image, {"STRESS_PORT": str(app.port)}, marker)
    assert gone == 1


def test_the_probe_waits_within_one_run_for_an_app_that_starts_answering(marker: Path) -> None:
    late = Server(after=0.4)
    try:
        code, _ = run(["health-probe", str(late.port), "/health"], {}, marker)
    finally:
        late.close()
    assert code == 0 and marker.exists()


def test_the_probe_fails_at_once_on_an_answer_other_than_200_and_after_its_wait_on_silence(
        server: Server, marker: Path) -> None:
    assert run(["health-probe", str(server.port), "/elsewhere"], {}, marker)[0] == 1
    server.status = 503
    assert run(["health-probe", str(server.port), "/health"], {}, marker)[0] == 1
    assert not marker.exists()
    server.close()
    code, took = run(["health-probe", str(server.port), "/health"], {}, marker)
    assert code == 1 and 1.5 < took < 3.0  # retried for about 2 s, well inside the 5 s timeout


@pytest.mark.parametrize(("image", "variable"), [("controller", "CONTROLLER_PORT"), ("exporter", "EXPORTER_PORT")])
def test_the_healthz_probes_pass_on_200_only(server: Server, marker: Path, image: str, variable: str) -> None:
    probe = as_exec(dockerfile_healthcheck(image))
    assert probe[:2] == ["bash", "-c"] and "/dev/tcp/" in probe[2]  # no curl, no python
    assert run(probe, {variable: str(server.port)}, marker)[0] == 0
    server.status = 503
    assert run(probe, {variable: str(server.port)}, marker)[0] != 0
    server.close()
    assert run(probe, {variable: str(server.port)}, marker)[0] != 0


def test_a_busy_app_that_answers_within_2_s_passes_and_one_that_does_not_fails(server: Server, marker: Path) -> None:
    server.delay = 1.2
    assert run(["health-probe", str(server.port), "/health"], {}, marker)[0] == 0
    marker.unlink()
    server.delay = 2.6
    code, took = run(["health-probe", str(server.port), "/health"], {}, marker)
    assert code == 1 and took < 2.5  # gave up after its own 2 s, before the engine's 5 s timeout
