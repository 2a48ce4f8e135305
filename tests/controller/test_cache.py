"""The metrics cache: bounds, de-duplication, staleness, forgetting, and what a snapshot holds."""
from __future__ import annotations

import gc
import threading

from controller.cache import CHUNK, MetricsCache
from controller.model import ContainerMetrics, NodeMetrics, ServiceInfo


def sample(cid: str = "c1", ts: float = 100.0, *, node: str = "worker-1", service: str = "web",
           cpu: float = 10.0) -> ContainerMetrics:
    return ContainerMetrics(node=node, service=service, container_id=cid, task_id=f"t-{cid}", ts=ts, cpu=cpu,
                            mem=20.0, mem_mb=64.0, net=1.0, net_rx=0.5, net_tx=0.5)


def test_a_snapshot_holds_the_latest_sample_and_the_history_oldest_first() -> None:
    cache = MetricsCache()
    for ts in (100.0, 101.0, 102.0):
        cache.add_container(sample(ts=ts, cpu=ts - 90))
    snap = cache.snapshot(102.5)
    assert snap.containers["c1"].ts == 102.0
    assert [s.cpu for s in snap.history["c1"]] == [10.0, 11.0, 12.0]
    assert not snap.containers["c1"].stale


def test_a_sample_no_newer_than_the_last_one_is_ignored_so_alert_and_scrape_count_once() -> None:
    cache = MetricsCache()
    assert cache.add_container(sample(ts=100.0))
    assert not cache.add_container(sample(ts=100.0, cpu=99.0))
    assert not cache.add_container(sample(ts=99.0))
    snap = cache.snapshot(100.0)
    assert len(snap.history["c1"]) == 1 and snap.containers["c1"].cpu == 10.0


def test_an_alerts_rounded_t0_and_the_scraped_timestamp_of_the_same_sample_count_once() -> None:
    cache = MetricsCache()
    assert cache.add_container(sample(ts=1700000000.1234))  # alert: t0 rounded to 0.1 ms
    assert not cache.add_container(sample(ts=1700000000.12344))  # scrape: the exporter's full timestamp
    assert cache.add_container(sample(ts=1700000000.6234))  # the next sample, half a second later
    assert len(cache.snapshot(1700000001.0).history["c1"]) == 2


def test_history_per_container_is_bounded_and_drops_the_oldest() -> None:
    cache = MetricsCache(max_samples=3)
    for ts in range(10):
        cache.add_container(sample(ts=float(ts)))
    assert [s.ts for s in cache.snapshot(9.0).history["c1"]] == [7.0, 8.0, 9.0]


def test_the_number_of_containers_is_bounded_and_the_least_recently_seen_goes_first() -> None:
    cache = MetricsCache(max_containers=2)
    cache.add_container(sample("old", ts=1.0))
    cache.add_container(sample("mid", ts=2.0))
    cache.add_container(sample("new", ts=3.0))
    assert set(cache.snapshot(3.0).containers) == {"mid", "new"}


def test_prune_drops_samples_outside_the_window_and_forgets_silent_containers() -> None:
    cache = MetricsCache(window=10.0, forget_after=30.0)
    for ts in (0.0, 5.0, 15.0):
        cache.add_container(sample("live", ts=ts))
    cache.add_container(sample("gone", ts=1.0))
    forgotten = cache.prune(now=35.0)
    snap = cache.snapshot(35.0)
    assert forgotten == 1
    assert set(snap.containers) == {"live"}
    assert [s.ts for s in snap.history["live"]] == [15.0]


def test_prune_keeps_the_newest_sample_even_when_it_is_older_than_the_window() -> None:
    cache = MetricsCache(window=10.0, forget_after=100.0)
    cache.add_container(sample(ts=0.0))
    cache.prune(now=50.0)
    assert [s.ts for s in cache.snapshot(50.0).history["c1"]] == [0.0]


def test_containers_of_a_node_whose_exporter_is_down_are_stale_until_it_is_back() -> None:
    cache = MetricsCache()
    cache.add_container(sample("a", node="worker-1"))
    cache.add_container(sample("b", node="worker-2"))
    cache.add_nodes([NodeMetrics(node="worker-1", ts=100.0, cpu=1, mem=2, net=3)])
    cache.set_node_down("worker-1", True, since=100.0)
    snap = cache.snapshot(100.0)
    assert snap.containers["a"].stale and not snap.containers["b"].stale
    assert snap.nodes["worker-1"].stale
    assert cache.node_load() == {}
    cache.set_node_down("worker-1", False)
    assert not cache.snapshot(100.0).containers["a"].stale
    assert cache.node_load() == {"worker-1": 2}


def test_an_alert_that_arrives_after_the_exporter_stopped_answering_scrapes_is_fresh() -> None:
    cache = MetricsCache()
    cache.add_container(sample("a", ts=100.0))
    cache.set_node_down("worker-1", True, since=101.0)
    cache.set_node_down("worker-1", True, since=103.0)  # still down: the first time counts
    assert cache.snapshot(102.0).containers["a"].stale
    cache.add_container(sample("a", ts=102.5))  # an alert: the exporter can still reach the controller
    assert not cache.snapshot(103.0).containers["a"].stale


def test_a_container_whose_newest_sample_is_too_old_is_stale() -> None:
    cache = MetricsCache(stale_after=5.0)
    cache.add_container(sample(ts=100.0))
    assert not cache.snapshot(104.0).containers["c1"].stale
    assert cache.snapshot(106.0).containers["c1"].stale


def test_a_snapshot_does_not_change_when_the_cache_does() -> None:
    cache = MetricsCache()
    cache.add_container(sample(ts=1.0))
    cache.set_services({"web": ServiceInfo(name="web", replicas=2)})
    snap = cache.snapshot(1.0)
    cache.add_container(sample(ts=2.0))
    cache.add_container(sample("other", ts=2.0))
    cache.set_services({})
    assert [s.ts for s in snap.history["c1"]] == [1.0]
    assert set(snap.containers) == {"c1"}
    assert set(snap.services) == {"web"}


def test_writers_on_many_threads_lose_no_sample() -> None:
    cache = MetricsCache(max_samples=10_000)

    def write(cid: str) -> None:
        for ts in range(500):
            cache.add_container(sample(cid, ts=float(ts)))

    threads = [threading.Thread(target=write, args=(f"c{i}",)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.stats()["samples"] == 2000


def test_history_rows_are_left_alone_by_the_cycle_collector_and_read_back_as_samples() -> None:
    cache = MetricsCache()
    for ts in (1.0, 2.0, 3.0):
        cache.add_container(sample(ts=ts, cpu=ts * 10))
    gc.collect()
    tracked = len(gc.get_objects())
    more = MetricsCache()
    for ts in range(1, 501):
        more.add_container(sample(ts=float(ts)))
    gc.collect()
    assert len(gc.get_objects()) - tracked < 50  # 500 samples, no object per sample for the collector to walk
    history = cache.snapshot(3.0).history["c1"]
    assert history[-2:] == (sample(ts=2.0, cpu=20.0), sample(ts=3.0, cpu=30.0))
    assert history[0] == sample(ts=1.0, cpu=10.0) and len(history) == 3


def test_prune_cuts_every_history_exactly_at_the_window_edge() -> None:
    cache = MetricsCache(window=10.0, max_samples=1000, forget_after=1000.0)
    times = {"dense": [t * 0.5 for t in range(100)], "sparse": [0.0, 7.0, 30.0, 39.5, 40.0, 49.0],
             "edge": [10.0, 20.0, 39.0, 40.0]}
    for cid, stamps in times.items():
        for ts in stamps:
            cache.add_container(sample(cid, ts=ts))
    cache.prune(now=50.0)  # keeps ts >= 40.0, the sample exactly at the edge included
    history = cache.snapshot(50.0).history
    assert {cid: [s.ts for s in history[cid]] for cid in times} == {
        cid: [ts for ts in stamps if ts >= 40.0] for cid, stamps in times.items()}


def test_a_snapshot_keeps_its_history_while_the_cache_prunes_and_compacts_behind_it() -> None:
    cache = MetricsCache(window=50.0, forget_after=1000.0)
    for ts in range(100):
        cache.add_container(sample(ts=float(ts)))
    cache.prune(now=100.0)  # window: 50.0 on
    before = cache.snapshot(100.0)
    assert [s.ts for s in before.history["c1"]] == [float(t) for t in range(50, 100)]
    for ts in range(100, 400):  # the window moves on and the arrays are rebuilt many times meanwhile
        cache.add_container(sample(ts=float(ts)))
        cache.prune(now=float(ts))
    assert [s.ts for s in before.history["c1"]] == [float(t) for t in range(50, 100)]
    assert [s.ts for s in cache.snapshot(400.0).history["c1"]] == [float(t) for t in range(349, 400)]


def test_the_chunks_hold_little_more_than_the_window_however_long_the_cache_runs() -> None:
    cache = MetricsCache(window=100.0, max_samples=600)
    for ts in range(5000):
        cache.add_container(sample(ts=float(ts)))
        cache.prune(now=float(ts))
    chunks, _ = cache._series["c1"]
    assert len(cache.snapshot(5000.0).history["c1"]) == 101
    assert len(chunks) <= 101 // CHUNK + 2 and not any(gc.is_tracked(c) for c in chunks)


def test_a_container_snapshot_holds_that_container_its_history_and_node_and_nothing_else() -> None:
    cache = MetricsCache(stale_after=5.0)
    for ts in (100.0, 101.0):
        cache.add_container(sample("a", ts=ts, node="worker-1"))
    cache.add_container(sample("b", ts=101.0, node="worker-2"))
    cache.add_nodes([NodeMetrics(node="worker-1", ts=101.0, cpu=1, mem=2, net=3),
                     NodeMetrics(node="worker-2", ts=101.0, cpu=1, mem=2, net=3)])
    cache.set_services({"web": ServiceInfo(name="web", replicas=2)})
    snap = cache.container_snapshot("a", 101.5)
    assert set(snap.containers) == {"a"} and set(snap.history) == {"a"} and set(snap.nodes) == {"worker-1"}
    assert [s.ts for s in snap.history["a"]] == [100.0, 101.0] and set(snap.services) == {"web"}
    assert not snap.containers["a"].stale and not snap.nodes["worker-1"].stale
    assert cache.container_snapshot("a", 110.0).containers["a"].stale  # as old as in a full snapshot
    cache.set_node_down("worker-1", True, since=101.0)
    down = cache.container_snapshot("a", 101.5)
    assert down.containers["a"].stale and down.nodes["worker-1"].stale
    unknown = cache.container_snapshot("nope", 101.5)
    assert (dict(unknown.containers), dict(unknown.history), dict(unknown.nodes)) == ({}, {}, {})


def test_a_full_cache_drops_the_least_recently_seen_in_a_batch_and_counts_them() -> None:
    cache = MetricsCache(max_containers=200)
    for i in range(200):
        cache.add_container(sample(f"c{i}", ts=float(i)))
    cache.add_container(sample("new", ts=1000.0))
    held = set(cache.snapshot(1000.0).containers)
    assert "new" in held and "c0" not in held and "c1" not in held and "c2" in held  # 1 % (2) at once
    assert cache.stats()["evicted"] == 2 and cache.stats()["containers"] == 199


def test_every_snapshot_holds_exactly_the_samples_added_before_it_across_chunks_and_the_size_bound() -> None:
    cache = MetricsCache(window=1e9, max_samples=70)
    added: list[float] = []
    snapshots = []
    for i in range(5 * CHUNK + 3):  # across chunk starts, and past max_samples (the first row moves)
        ts = 1000.0 + i
        assert cache.add_containers([sample(ts=ts, cpu=float(i % 97))]) == 1
        added.append(ts)
        snapshots.append((cache.snapshot(ts), added[-70:]))
    for snap, expected in snapshots:
        assert [s.ts for s in snap.history["c1"]] == expected
        assert snap.containers["c1"].ts == expected[-1]
    assert cache.stats()["samples"] == 70
