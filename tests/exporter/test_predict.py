"""Predictive alerts: a container whose trend will reach the limit soon is sent to the controller at once."""
from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from exporter.alerts import AlertSender, Thresholds
from exporter.predict import TrendAlerts, TrendSettings, trend_prediction
from exporter.settings import ExporterSettings
from sgcommon.alert import Prediction, decode_alert
from sgcommon.settings import SettingsError
from tests.exporter.peers import Controller
from tests.exporter.samples import CID, sample, sweep

DEFAULTS = TrendSettings(horizon=8.0, window=5.0, limit=100.0, confidence=2.0)


class FakeSender:
    """Stands in for AlertSender: records what is offered, with its prediction."""

    def __init__(self) -> None:
        self.offered: list[tuple[float, float, Prediction | None]] = []

    def offer(self, s, *, predicted=None):  # type: ignore[no-untyped-def]
        self.offered.append((s.ts, s.memory_percent, predicted))
        return True


def feed(trends: TrendAlerts, mems: list[float], *, t0: float = 1000.0, cid: str = CID, cpu: float = 10.0) -> None:
    for i, mem in enumerate(mems):
        trends.on_sweep(sweep(sample(cid=cid, ts=t0 + i, mem_pct=mem, cpu=cpu)))


def trends(settings: TrendSettings = DEFAULTS) -> tuple[TrendAlerts, FakeSender]:
    sender = FakeSender()
    return TrendAlerts(sender, settings), sender  # type: ignore[arg-type]


def test_a_fast_leak_is_sent_with_the_time_its_line_reaches_the_limit() -> None:
    watch, sender = trends()
    feed(watch, [10.0, 10.0, 10.0, 22.0, 34.0, 46.0, 58.0, 70.0, 82.0])  # +12 %/s from t = 1002
    ((ts, mem, predicted),) = sender.offered[:1]
    assert predicted is not None and predicted.metric == "mem"
    # the line through the 5 s window's samples reaches 100 % some seconds after the newest one
    assert ts < predicted.at < ts + DEFAULTS.horizon and mem <= 58.0
    assert watch.stats.sent == len(sender.offered)


def test_a_flat_or_noisy_load_sends_nothing() -> None:
    watch, sender = trends()
    feed(watch, [60.0, 75.0, 45.0, 70.0, 50.0, 74.0, 46.0, 60.0] * 5)
    feed(watch, [90.0] * 20, t0=2000.0, cid="f" * 64)  # high but flat: the threshold alerts' job
    assert sender.offered == []


def test_the_window_must_be_half_covered_before_a_line_is_drawn() -> None:
    watch, sender = trends(dataclasses.replace(DEFAULTS, window=10.0))
    feed(watch, [10.0, 40.0, 70.0, 95.0])  # steep, but only 3 s of a 10 s window
    assert sender.offered == []


def test_cpu_is_watched_only_when_asked_for() -> None:
    times = [1000.0 + i for i in range(6)]
    figures = {"mem": [20.0] * 6, "cpu": [20.0, 35.0, 50.0, 65.0, 80.0, 95.0]}
    assert trend_prediction(times, figures, DEFAULTS) is None
    found = trend_prediction(times, figures, dataclasses.replace(DEFAULTS, metrics=("mem", "cpu")))
    assert found is not None and found.metric == "cpu" and found.at == pytest.approx(1005.333, abs=0.01)


def test_containers_that_left_are_forgotten_and_a_clock_going_back_starts_afresh() -> None:
    watch, sender = trends()
    feed(watch, [10.0, 10.0, 10.0])
    watch.on_sweep(sweep())  # the container is gone
    assert watch._samples == {}
    feed(watch, [10.0, 30.0, 50.0], t0=5000.0)
    feed(watch, [70.0, 90.0], t0=4000.0)  # earlier timestamps: the old ones are dropped, too few to fit
    assert sender.offered == [] or all(ts >= 5000.0 for ts, _, _ in sender.offered)


def test_the_exporter_settings_check_the_predictive_alert() -> None:
    assert ExporterSettings().predict_horizon > 0 and ExporterSettings().predict_metrics == ["mem"]
    with pytest.raises(SettingsError) as caught:
        ExporterSettings(predict_horizon=-1, predict_window=1, predict_limit=0, predict_confidence=-1,
                         predict_metrics=["mem", "disk"])
    text = str(caught.value)
    for name in ("predict_horizon", "predict_window", "predict_limit", "predict_confidence", "predict_metrics"):
        assert name in text


# ---------------------------------------------------------------- on the wire

@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


def test_a_prediction_goes_out_below_every_threshold_with_its_field(controller: Controller) -> None:
    sender = AlertSender(controller.url, token=None, thresholds=Thresholds(), min_gap=0.5, clock=lambda: 1_700_000_001.0)
    try:
        assert not sender.offer(sample(mem_pct=40.0))  # no breach, no prediction: nothing
        assert sender.offer(sample(mem_pct=40.0), predicted=Prediction("mem", 1_700_000_004.5))
        ((_, body),) = controller.wait_for(1)
    finally:
        sender.close()
    alert = decode_alert(body)
    assert alert.predicted == Prediction("mem", 1_700_000_004.5) and alert.metrics["mem"] == 40.0
    assert sender.stats.predicted == 1 and sender.stats.sent == 1


class OldController:
    """A controller from before the "p" field: its strict decoder refuses the unknown field with 400."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                return

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.bodies.append(body)
                refused = "p" in json.loads(body)
                answer = json.dumps({"error": "body: unknown field(s) p"} if refused else {"decisions": []}).encode()
                self.send_response(400 if refused else 200)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"


def test_an_older_controller_gets_the_same_alert_without_the_field_from_then_on() -> None:
    old = OldController()
    sender = AlertSender(old.url, token=None, thresholds=Thresholds(), min_gap=0.5, retry_delay=0.01)
    try:
        assert sender.offer(sample(ts=100.0, mem_pct=40.0), predicted=Prediction("mem", 104.0))
        assert sender.offer(sample(ts=101.0, mem_pct=52.0), predicted=Prediction("mem", 104.0))
        sender.close()
    finally:
        old.server.shutdown()
        old.server.server_close()
    fields = [sorted(json.loads(b)) for b in old.bodies]
    assert fields == [["c", "k", "m", "n", "p", "s", "t0", "t1"], ["c", "k", "m", "n", "s", "t0", "t1"],
                      ["c", "k", "m", "n", "s", "t0", "t1"]]
    assert (sender.stats.sent, sender.stats.failed) == (2, 0)
