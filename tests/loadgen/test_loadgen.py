"""The load generator's rate schedule, pacing, per-second JSON and its command line (no lab)."""
from __future__ import annotations

import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator

import pytest
from hypothesis import given
from hypothesis import strategies as st

from labkit import loadgen
from labkit.loadgen import Schedule


class FakeClock:
    """Monotonic time that moves only when the generator sleeps; with `settle`, each sleep first
    lets the worker threads finish what was handed to them (as a real tick would)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.settle: Callable[[], bool] | None = None

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + 5
        while self.settle is not None and not self.settle() and time.monotonic() < deadline:
            time.sleep(0.0005)
        self.now += seconds


def run_generator(schedule: Schedule, *, workers: int = 4, request=None, stop_at: float | None = None,
                  settle: bool = True):
    clock = FakeClock()
    emitted: list[dict] = []
    gen = loadgen.Generator(
        schedule, request or (lambda: (True, "10.0.0.2", 0.001, None)), workers=workers, emit=emitted.append,
        stopped=lambda: stop_at is not None and clock.now >= stop_at,
        clock=clock, wall=lambda: 1000.0, sleep=clock.sleep, tick=0.01,
    )
    clock.settle = gen.quiet if settle else None
    return gen.run(), emitted


def test_the_rate_climbs_linearly_holds_then_falls_to_zero() -> None:
    s = Schedule(rps=100, ramp=10, hold=20, ramp_down=5)
    assert s.duration == 35
    assert [s.rate(t) for t in (0, 2.5, 5, 10, 20, 29.9)] == pytest.approx([0, 25, 50, 100, 100, 100])
    assert [s.rate(t) for t in (30, 31, 32.5, 35, 40, -1)] == pytest.approx([100, 80, 50, 0, 0, 0])


def test_a_schedule_without_ramps_is_a_flat_hold() -> None:
    s = Schedule(rps=40, ramp=0, hold=3, ramp_down=0)
    assert s.rate(0) == 40 and s.rate(2.99) == 40 and s.rate(3) == 0
    assert s.total() == pytest.approx(120)


@given(rps=st.floats(0.5, 500), ramp=st.floats(0, 60), hold=st.floats(0, 60), down=st.floats(0, 60),
       frac=st.floats(0, 1))
def test_requests_due_are_the_integral_of_the_rate(rps: float, ramp: float, hold: float, down: float, frac: float) -> None:
    s = Schedule(rps=rps, ramp=ramp, hold=hold, ramp_down=down)
    t = s.duration * frac
    steps = 4000
    numeric = sum(s.rate((i + 0.5) * t / steps) for i in range(steps)) * t / steps if t > 0 else 0.0
    assert s.due(t) == pytest.approx(numeric, rel=1e-3, abs=0.05 * rps * max(t, 1) / steps + 1e-6)
    assert s.total() == pytest.approx(rps * (ramp / 2 + hold + down / 2))


def test_each_generator_takes_an_equal_share_of_the_rate() -> None:
    assert loadgen.split_rate(300, 4) == [75.0] * 4
    with pytest.raises(ValueError, match="generators"):
        loadgen.split_rate(300, 0)


def test_the_generator_sends_what_is_due_each_second_and_reports_every_second_in_order() -> None:
    s = Schedule(rps=20, ramp=2, hold=2, ramp_down=2)
    lines, emitted = run_generator(s)
    assert emitted == lines
    assert [ln["second"] for ln in lines] == list(range(6))
    # 0-1 s of the ramp: 20 * 1^2 / 4 = 5 requests due; 1-2 s: 15; each hold second 20; the ramp-down mirrors
    assert [ln["sent"] for ln in lines] == pytest.approx([5, 15, 20, 20, 15, 5], abs=1)
    assert sum(ln["sent"] for ln in lines) == round(s.total())
    assert all(ln["ok"] == ln["sent"] and ln["failed"] == 0 and ln["missed"] == 0 for ln in lines)
    assert lines[2]["target_rps"] == 20 and lines[0]["target_rps"] == 5
    assert lines[3]["ts"] == 1003.0
    json.loads(json.dumps(lines))


def test_a_request_that_finds_every_worker_busy_counts_as_missed_not_as_sent() -> None:
    release = threading.Event()

    def stuck() -> loadgen.Result:
        release.wait(5)
        return True, "10.0.0.2", 1.0, None

    s = Schedule(rps=10, ramp=0, hold=1, ramp_down=0)
    clock_stop = threading.Timer(0.5, release.set)
    clock_stop.start()
    lines, _ = run_generator(s, workers=2, request=stuck, settle=False)
    assert lines[0]["sent"] == 2 and lines[0]["missed"] == 8 and lines[0]["ok"] == 2


def test_failures_are_counted_by_kind_and_successes_by_address() -> None:
    answers = iter([(True, "10.0.0.2", 0.01, None), (False, "10.0.0.3", 0.5, "ConnectionRefusedError"),
                    (True, "10.0.0.3", 0.03, None), (False, None, 0.0, "gaierror")] * 5)
    lock = threading.Lock()

    def request() -> loadgen.Result:
        with lock:
            return next(answers)

    lines, _ = run_generator(Schedule(rps=20, ramp=0, hold=1, ramp_down=0), workers=1, request=request)
    line = lines[0]
    assert (line["ok"], line["failed"]) == (10, 10)
    assert line["addresses"] == {"10.0.0.2": 5, "10.0.0.3": 5}
    assert line["errors"] == {"ConnectionRefusedError": 5, "gaierror": 5}
    assert line["latency_p50"] in (0.01, 0.03) and line["latency_max"] == 0.03


def test_stopping_early_reports_the_seconds_run_so_far() -> None:
    lines, _ = run_generator(Schedule(rps=10, ramp=0, hold=60, ramp_down=0), stop_at=2.5)
    assert [ln["second"] for ln in lines] == [0, 1, 2]
    assert sum(ln["sent"] for ln in lines) == 25


def test_the_summary_rate_counts_only_whole_seconds_of_the_hold() -> None:
    s = Schedule(rps=20, ramp=2, hold=3, ramp_down=2)
    lines = [{"second": i, "sent": n, "ok": n - f, "failed": f, "missed": 0, "addresses": {"a": n - f},
              "errors": {"x": f} if f else {}}
             for i, (n, f) in enumerate([(5, 0), (15, 0), (19, 1), (18, 0), (17, 0), (15, 0), (5, 0)])]
    summary = loadgen.summarize(lines, s)
    assert summary["hold_achieved_rps"] == pytest.approx((19 + 18 + 17) / 3)
    assert (summary["sent"], summary["ok"], summary["failed"]) == (94, 93, 1)
    assert summary["planned"] == 100 and summary["peak_rps"] == 19
    assert summary["addresses"] == {"a": 93} and summary["errors"] == {"x": 1}


@pytest.mark.parametrize("argv, message", [
    (["--target", "https://x/api/data"], "http://"),
    (["--rps", "0"], "--rps"),
    (["--rps", "nan"], "--rps"),
    (["--ramp-time", "-1"], "--ramp-time"),
    (["--ramp-time", "0", "--hold-time", "0", "--ramp-down-time", "0"], "empty"),
    (["--workers", "0"], "--workers"),
])
def test_bad_options_are_refused_with_the_option_named(argv: list[str], message: str, capsys) -> None:
    with pytest.raises(SystemExit) as exc:
        loadgen.parse_args(argv)
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_the_target_splits_into_host_port_and_path() -> None:
    assert loadgen.parse_target("http://web-stress:8080/api/data?x=1") == ("web-stress", 8080, "/api/data?x=1")
    assert loadgen.parse_target("http://example") == ("example", 80, "/")


class _Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
        body = b'{"items": []}'
        self.send_response(200 if self.path == "/api/data" else 404)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://localhost:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_one_request_resolves_the_name_and_reports_the_address_it_used(server: str) -> None:
    host, port, _ = loadgen.parse_target(server)
    ok, address, latency, error = loadgen.get_once(host, port, "/api/data", timeout=2)
    assert (ok, address, error) == (True, "127.0.0.1", None) and latency > 0
    assert loadgen.get_once(host, port, "/nope", timeout=2)[3] == "HTTP 404"


def test_a_refused_connection_is_a_failure_with_its_kind(server: str) -> None:
    from tests.support import free_port
    assert loadgen.get_once("127.0.0.1", free_port(), "/", timeout=1)[::3] == (False, "ConnectionRefusedError")


def test_main_prints_one_json_line_a_second_then_the_summary(server: str, capsys) -> None:
    assert loadgen.main(["--target", f"{server}/api/data", "--rps", "20", "--ramp-time", "0",
                         "--hold-time", "1", "--ramp-down-time", "0"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert docs[-1]["summary"]["ok"] == 20 and docs[-1]["summary"]["failed"] == 0
    assert docs[0]["second"] == 0 and docs[0]["addresses"] == {"127.0.0.1": 20}
