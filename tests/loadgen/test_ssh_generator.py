"""The load generator's ssh path without a host: a stand-in `ssh` runs the remote command locally
(`sh -c` of its last argument, as sshd does), so the bootstrap, the program on stdin, the stop by
end of stdin, stderr and exit codes are all exercised. The real sshd: test_ssh_hosts_lab.py."""
from __future__ import annotations

import ast
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sgcommon.engine import EngineError
from labkit import loadgen, scenario2

REPO = Path(__file__).resolve().parents[2]


def stand_in_ssh(tmp_path: Path, *, before: str = "", name: str = "ssh") -> str:
    """An `ssh` that runs its last argument with sh, after the shell lines `before`."""
    fake = tmp_path / name
    fake.write_text(f'#!/bin/sh\nfor last; do :; done\n{before}\nexec sh -c "$last"\n')
    fake.chmod(0o755)
    return str(fake)


def args_for(target: str, *, hold: float, rps: float = 5.0) -> list[str]:
    return scenario2.loadgen_args(target=target, rps=rps, ramp=0, hold=hold, ramp_down=0, timeout=0.5)


class _Counting(http.server.BaseHTTPRequestHandler):
    served = 0
    lock = threading.Lock()

    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        with _Counting.lock:
            _Counting.served += 1
        body = b'{"items": []}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def counting_server() -> Iterator[tuple[str, type[_Counting]]]:
    _Counting.served = 0
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Counting)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/api/data", _Counting
    httpd.shutdown()
    httpd.server_close()


def test_the_ssh_generator_sends_the_program_on_stdin_and_reads_its_json(tmp_path: Path) -> None:
    gen = scenario2.SshGenerator("somewhere", args=args_for("http://127.0.0.1:9/api/data", hold=1),
                                 ssh=stand_in_ssh(tmp_path)).start()
    gen.finish(timeout=30)
    assert gen.errors == []
    assert gen.summary is not None and gen.summary["failed"] == 5
    assert gen.lines[0]["errors"] == {"ConnectionRefusedError": 5}


def test_closing_its_stdin_stops_a_remote_generator_early_with_its_summary(tmp_path: Path) -> None:
    gen = scenario2.SshGenerator("somewhere", args=args_for("http://127.0.0.1:9/api/data", hold=60),
                                 ssh=stand_in_ssh(tmp_path)).start()
    time.sleep(2.5)
    started = time.monotonic()
    gen.finish(timeout=5, stop=True)
    assert time.monotonic() - started < 5
    assert gen.errors == []
    assert gen.summary is not None and 1 <= len(gen.lines) <= 4
    assert gen.summary["sent"] == sum(line["sent"] for line in gen.lines) < 60 * 5


def test_a_generator_still_running_at_the_timeout_is_stopped_and_still_reports(tmp_path: Path) -> None:
    gen = scenario2.SshGenerator("slow", args=args_for("http://127.0.0.1:9/api/data", hold=60),
                                 ssh=stand_in_ssh(tmp_path)).start()
    gen.finish(timeout=1.5)
    assert gen.summary is not None and gen.errors == []


def test_a_remote_without_python3_fails_with_ssh_s_exit_code_and_the_remote_message(tmp_path: Path) -> None:
    fake = stand_in_ssh(tmp_path, before='echo "sh: 1: python3: not found" >&2; exit 127')
    gen = scenario2.SshGenerator("alpine-9", args=args_for("http://127.0.0.1:9/api/data", hold=1), ssh=fake).start()
    gen.finish(timeout=10)
    assert gen.errors == ["ssh alpine-9: exit 127: sh: 1: python3: not found"]
    with pytest.raises(EngineError, match="alpine-9.*python3: not found"):
        scenario2.load_outcome([gen])


def test_a_program_cut_short_on_the_way_is_refused_not_run(tmp_path: Path) -> None:
    fake = stand_in_ssh(tmp_path, before='head -c 100 | sh -c "$last"; exit $?')
    gen = scenario2.SshGenerator("h", args=args_for("http://127.0.0.1:9/api/data", hold=1), ssh=fake).start()
    gen.finish(timeout=10)
    assert len(gen.errors) == 1 and "exit 1: loadgen: the program arrived truncated on stdin" in gen.errors[0]


def test_a_flood_on_stderr_does_not_stall_the_generator(tmp_path: Path) -> None:
    # 2 MB on stderr before the program starts: far more than a pipe holds unread
    fake = stand_in_ssh(tmp_path, before="head -c 2000000 /dev/zero | tr '\\0' x >&2; echo >&2; echo >&2 last words")
    gen = scenario2.SshGenerator("chatty", args=args_for("http://127.0.0.1:9/api/data", hold=1), ssh=fake).start()
    gen.finish(timeout=20)
    assert gen.summary is not None and gen.errors == []
    assert gen.stderr[-1] == "last words" and len(gen.stderr) <= 40 and max(map(len, gen.stderr)) <= 1000


def test_ssh_that_cannot_start_is_a_clear_error_not_a_hang(tmp_path: Path) -> None:
    gen = scenario2.SshGenerator("h", args=[], ssh=str(tmp_path / "no-such-ssh"))
    with pytest.raises(OSError):
        gen.start()
    gen.finish(timeout=1, stop=True)  # nothing was started: nothing to do


class Recording(scenario2.GeneratorRun):
    """A generator that records what the orchestrator asked of it."""

    def __init__(self, name: str, log: list[str], *, fail_start: bool = False, interrupt: bool = False) -> None:
        super().__init__(name)
        self.log, self.fail_start, self.interrupt = log, fail_start, interrupt
        self.finished = False

    def start(self) -> Recording:
        self.log.append(f"start {self.name}")
        if self.fail_start:
            raise OSError(f"{self.name} cannot start")
        return self

    def finish(self, *, timeout: float, stop: bool = False) -> None:
        if self.finished:
            return
        if self.interrupt and not stop:
            raise KeyboardInterrupt
        self.log.append(f"{'stop' if stop else 'wait'} {self.name}")
        self.finished = True


def test_a_generator_that_fails_to_start_leaves_none_of_the_others_running() -> None:
    log: list[str] = []
    gens = [Recording("a", log), Recording("b", log), Recording("c", log, fail_start=True), Recording("d", log)]
    with pytest.raises(OSError, match="c cannot start"):
        scenario2.run_generators(gens, seconds=1)
    assert log == ["start a", "start b", "start c", "stop a", "stop b", "stop c"]


def test_an_interrupt_stops_every_generator_early_and_says_so() -> None:
    log: list[str] = []
    gens = [Recording("a", log), Recording("b", log, interrupt=True), Recording("c", log)]
    assert scenario2.run_generators(gens, seconds=1) is True
    assert log == ["start a", "start b", "start c", "wait a", "stop b", "stop c"]
    assert scenario2.run_generators([Recording("x", [])], seconds=1) is False


@pytest.mark.slow
def test_the_orchestrator_over_ssh_delivers_what_its_hosts_report(tmp_path: Path, counting_server, monkeypatch,
                                                                   capsys) -> None:
    """The whole command line, with two stand-in hosts: the server counts what the hosts report."""
    target, handler = counting_server
    stand_in_ssh(tmp_path)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    code = scenario2.main_orchestrator(["--ssh-hosts", "h1,h2", "--target", target, "--rps", "40",
                                        "--ramp-time", "1", "--hold-time", "2", "--ramp-down-time", "1"])
    summary = json.loads(capsys.readouterr().out.splitlines()[-1])["summary"]
    assert code == 0
    assert set(summary["per_generator"]) == {"h1", "h2"}
    assert [g["sent"] for g in summary["per_generator"].values()] == [60, 60]
    assert summary["ok"] == 120 == handler.served


@pytest.mark.slow
def test_sigterm_stops_the_orchestrator_and_its_ssh_generators_with_their_summaries(tmp_path: Path) -> None:
    stand_in_ssh(tmp_path)
    env = {**os.environ, "PATH": f"{tmp_path}{os.pathsep}{os.environ['PATH']}"}
    marker = f"run-{uuid.uuid4().hex}"
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from labkit.scenario2 import main_orchestrator; "
                             "sys.exit(main_orchestrator(sys.argv[1:]))", "--ssh-hosts", "h1,h2",
                             "--target", f"http://127.0.0.1:9/api/data?{marker}", "--rps", "10", "--ramp-time", "0",
                             "--hold-time", "60", "--ramp-down-time", "0"],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    seen = [proc.stdout.readline() for _ in range(4)]  # two seconds of both hosts
    assert all(line.startswith(("h1 s", "h2 s")) for line in seen), seen
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    summary = json.loads(out.splitlines()[-1])["summary"]
    assert set(summary["per_generator"]) == {"h1", "h2"} and summary["sent"] < 60 * 10
    assert "stopped early" in err
    # no generator outlived the run: none of the stand-in's python3 processes is left
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout
    assert left.strip() == ""


def _runtime_expressions(tree: ast.AST) -> Iterator[ast.AST]:
    """Every node evaluated when the module runs: annotations are left out (never evaluated under
    `from __future__ import annotations`)."""
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.arg) and node.annotation is not None:
            skip.add(id(node.annotation))
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.returns is not None:
            skip.add(id(node.returns))
        elif isinstance(node, ast.AnnAssign):
            skip.add(id(node.annotation))
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in skip:
            continue
        yield node
        stack.extend(ast.iter_child_nodes(node))


def test_the_generator_runs_on_python_3_8_hosts() -> None:
    """What a remote python3 older than ours would trip on: newer syntax, and builtin generics or
    `X | None` evaluated at run time (3.9 and 3.10 features)."""
    source = Path(loadgen.__file__).read_text()
    tree = ast.parse(source, feature_version=(3, 8))
    assert "from __future__ import annotations" in source
    builtins_generic = {"tuple", "list", "dict", "set", "frozenset", "type"}
    for node in _runtime_expressions(tree):
        if isinstance(node, ast.Subscript) and isinstance(node.value, ast.Name):
            assert node.value.id not in builtins_generic, f"line {node.lineno}: {node.value.id}[...] at run time"
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
            sides = (node.left, node.right)
            assert not any(isinstance(s, ast.Constant) and s.value is None for s in sides), f"line {node.lineno}: X | None"
    compile(scenario2.BOOTSTRAP, "bootstrap", "exec")


def test_stop_at_eof_calls_stop_once_the_other_end_closes() -> None:
    read_end, write_end = os.pipe()
    stopped = threading.Event()
    thread = loadgen.stop_at_eof(read_end, stopped.set)
    os.write(write_end, b"anything")
    time.sleep(0.1)
    assert not stopped.is_set()
    os.close(write_end)
    thread.join(timeout=5)
    assert stopped.is_set()
    os.close(read_end)
