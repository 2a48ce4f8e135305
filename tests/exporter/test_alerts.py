"""Alerts reach a (tiny, local) controller at once, compact, authenticated, retried once."""
from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
import requests

from exporter.alerts import AlertSender, Thresholds
from sgcommon.alert import decode_alert
from tests.exporter.peers import Controller
from tests.exporter.samples import CID, sample
from tests.support import free_port


@pytest.fixture
def controller() -> Iterator[Controller]:
    c = Controller()
    yield c
    c.close()


@pytest.fixture
def sender(controller: Controller) -> Iterator[AlertSender]:
    s = AlertSender(controller.url, token="s3cret", thresholds=Thresholds(), min_gap=0.5, retry_delay=0.01, clock=lambda: 1_700_000_000.5)
    yield s
    s.close()


def test_a_breaching_sample_is_posted_compact_with_token_t0_and_t1(controller: Controller, sender: AlertSender) -> None:
    assert sender.offer(sample(cpu=90.0))
    ((headers, body),) = controller.wait_for(1)
    assert headers["path"] == "/alert" and headers["authorization"] == "Bearer s3cret"
    assert len(body) < 500
    alert = decode_alert(body)
    assert (alert.t0, alert.t1) == (1_700_000_000.25, 1_700_000_000.5)
    assert (alert.container_id, alert.service, alert.task_id, alert.node) == (CID, "web", "task-1", "worker-1")
    assert alert.metrics == {"cpu": 90.0, "mem": 25.0, "mem_mb": 256.0, "net": 3.0, "net_rx": 1.5, "net_tx": 1.5}


@pytest.mark.parametrize(("figures", "alerts"), [
    ({"cpu": 75.0, "mem_pct": 80.0, "net_pct": 65.0}, False),
    ({"cpu": 75.1}, True),
    ({"mem_pct": 80.5}, True),
    ({"net_pct": 66.0}, True),
])
def test_any_figure_above_its_threshold_alerts_and_none_at_it(figures: dict[str, float], alerts: bool) -> None:
    assert Thresholds().breached(sample(**figures)) is alerts


def test_at_most_one_alert_per_container_per_interval(controller: Controller, sender: AlertSender) -> None:
    assert sender.offer(sample(cpu=90.0, ts=100.0))
    assert not sender.offer(sample(cpu=91.0, ts=100.2))
    assert sender.offer(sample(cpu=90.0, cid="e" * 64, ts=100.2))
    assert sender.offer(sample(cpu=92.0, ts=101.0))
    assert len(controller.wait_for(3)) == 3
    assert sender.stats.offered == 4


def test_a_server_error_is_retried_once(controller: Controller, sender: AlertSender) -> None:
    controller.statuses = [503]
    sender.offer(sample(cpu=99.0))
    assert len(controller.wait_for(2)) == 2
    sender.close()
    assert (sender.stats.sent, sender.stats.failed) == (1, 0)


def test_a_refused_token_is_not_retried_and_is_counted(controller: Controller, sender: AlertSender) -> None:
    controller.statuses = [401]
    sender.offer(sample(cpu=99.0))
    controller.wait_for(1)
    sender.close()
    assert len(controller.received) == 1 and sender.stats.failed == 1


def test_an_unreachable_controller_costs_two_attempts_and_collection_goes_on() -> None:
    s = AlertSender(f"http://127.0.0.1:{free_port()}", token=None, thresholds=Thresholds(), min_gap=0.5, retry_delay=0.01)
    assert s.offer(sample(cpu=99.0))
    s.close()
    assert (s.stats.sent, s.stats.failed) == (0, 1)


def test_a_full_queue_drops_new_alerts_and_counts_them() -> None:
    gate = threading.Event()

    class BlockedSession:
        headers: dict[str, str] = {}

        def post(self, *args: object, **kwargs: object) -> None:
            gate.wait(5)
            raise requests.ConnectionError("stopped")

        def close(self) -> None:
            return

    s = AlertSender("http://127.0.0.1:9", token=None, thresholds=Thresholds(), min_gap=0.5, queue_size=1,
                    session=BlockedSession())  # type: ignore[arg-type]
    results = [s.offer(sample(cpu=99.0, cid=str(i) * 64)) for i in range(1, 6)]
    assert results.count(False) >= 3 and s.stats.dropped == results.count(False)
    gate.set()
    s.close()
