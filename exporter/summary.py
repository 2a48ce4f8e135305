"""GET /v1/samples: the latest sweep as the compact summary the controller scrapes (sgcommon/summary.py).

/metrics stays what Prometheus reads; this endpoint carries only the metric set's figures per
container, a few KB per node instead of about 160 KB, because parsing the exposition of every
node every second was what stopped one controller from scraping 100 nodes (docs/scale.md).
Each value is the one /metrics exposes (exporter/metrics.py's series table) times its Figure.scale,
so both endpoints give the controller the same numbers. Like the exposition, a sweep is rendered
at most once whatever the scrape rate.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

from exporter.metrics import CONTAINER_SERIES, NODE_SERIES
from exporter.sample import Sweep
from sgcommon.metricset import CONTAINER_FIGURES, NODE_FIGURES, Figure
from sgcommon.summary import CONTENT_TYPE, SUMMARY_PATH, encode_summary

__all__ = ["CONTENT_TYPE", "SUMMARY_PATH", "SweepSummary"]


T = TypeVar("T")


def _in_key_units(series: tuple[tuple[str, str, str, Callable[[T], float]], ...], figures: tuple[Figure, ...]
                  ) -> tuple[tuple[str, Callable[[T], float]], ...]:
    """(key, value in the key's unit) per figure, from the exporter's series table (exposed value x scale)."""
    exposed = {name: value for name, _, _, value in series}

    def scaled(figure: Figure, value: Callable[[T], float]) -> Callable[[T], float]:
        return lambda sample: figure.from_exposed(value(sample))

    return tuple((f.key, scaled(f, exposed[f.exposition])) for f in figures)


_CONTAINER_VALUES = tuple(value for _, value in _in_key_units(CONTAINER_SERIES, CONTAINER_FIGURES))
_NODE_VALUES = _in_key_units(NODE_SERIES, NODE_FIGURES)


class SweepSummary:
    """Renders a sweep as the summary; thread-safe, each sweep rendered once."""

    def __init__(self) -> None:
        self._last: tuple[Sweep | None, bytes] | None = None
        self._lock = threading.Lock()

    def render(self, sweep: Sweep | None, node: str) -> bytes:
        """`node`: the exporter's node name (every container sample of a sweep carries the same)."""
        last = self._last
        if last is not None and last[0] is sweep:
            return last[1]
        with self._lock:
            body = self._render(sweep, node)
            self._last = (sweep, body)
        return body

    @staticmethod
    def _render(sweep: Sweep | None, node: str) -> bytes:
        if sweep is None:
            return encode_summary(node=node, ts=0.0, node_figures=None, rows=())
        rows = [(s.meta.id, s.meta.service, s.meta.task_id, s.ts, *(value(s) for value in _CONTAINER_VALUES))
                for s in sweep.containers]
        figures = None if sweep.node is None else {key: value(sweep.node) for key, value in _NODE_VALUES}
        return encode_summary(node=node, ts=sweep.ts, node_figures=figures, rows=rows)
