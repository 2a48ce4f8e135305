"""The images' and the stack's health probes (bash /dev/tcp) pass on 200 only: a closed port, a 503
or a 404 fails them, as curl -f failed. The commands are read from the files the lab builds and
deploys, run with the same bash, so what is tested is what the engine will exec."""
from __future__ import annotations

import http.server
import json
import re
import socket
import subprocess
import threading
from collections.abc import Iterator

import pytest
import yaml

from tests.stressapp.helpers import REPO, AppProcess

pytestmark = pytest.mark.slow


def dockerfile_probe(name: str) -> list[str]:
    """The exec-form HEALTHCHECK CMD of swarm/<name>.Dockerfile (line continuations joined)."""
    text = (REPO / "swarm" / f"{name}.Dockerfile").read_text().replace("\\\n", " ")
    found = re.search(r"^HEALTHCHECK [^\n]*? CMD (\[[^\n]*\])$", text, re.MULTILINE)
    assert found, f"no exec-form HEALTHCHECK in {name}.Dockerfile"
    return list(json.loads(found.group(1)))


def stack_probe() -> list[str]:
    """web-stress's healthcheck test in swarm/stack.yml, as compose passes it ($$ is a literal $)."""
    stack = yaml.safe_load((REPO / "swarm" / "stack.yml").read_text())
    return [part.replace("$$", "$") for part in stack["services"]["web-stress"]["healthcheck"]["test"][1:]]


def run(probe: list[str], env: dict[str, str]) -> int:
    return subprocess.run(probe, env={"PATH": "/usr/bin:/bin", **env}, capture_output=True, timeout=10).returncode


class Answer(http.server.BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
        self.send_response(self.server.status if self.path == "/healthz" else 404)  # type: ignore[attr-defined]
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[http.server.HTTPServer]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Answer)
    httpd.status = 200  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_stress_apps_probes_pass_on_the_running_app_and_fail_on_a_closed_port() -> None:
    app = AppProcess()
    try:
        app.wait_healthy()
        image = dockerfile_probe("stressapp")
        stack = [part.replace("8080", str(app.port)) for part in stack_probe()]
        assert run(image, {"STRESS_PORT": str(app.port)}) == 0
        assert run(stack, {}) == 0
    finally:
        app.stop()
    assert run(image, {"STRESS_PORT": str(app.port)}) != 0
    assert run(stack, {}) != 0


@pytest.mark.parametrize(("image", "variable"), [("controller", "CONTROLLER_PORT"), ("exporter", "EXPORTER_PORT")])
def test_the_healthz_probes_pass_on_200_only(server: http.server.HTTPServer, image: str, variable: str) -> None:
    probe = dockerfile_probe(image)
    port = str(server.server_address[1])
    assert run(probe, {variable: port}) == 0
    server.status = 503  # type: ignore[attr-defined]
    assert run(probe, {variable: port}) != 0
    assert run(probe, {variable: str(closed_port())}) != 0


def test_no_probe_runs_curl_or_python_any_more() -> None:
    probes = [dockerfile_probe(name) for name in ("stressapp", "controller", "exporter")] + [stack_probe()]
    assert all(probe[:2] == ["bash", "-c"] and "/dev/tcp/" in probe[2] for probe in probes)
