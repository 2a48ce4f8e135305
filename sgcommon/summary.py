"""The sample summary (an exporter's GET /v1/samples), in one place: what the controller scrapes.

/metrics is for Prometheus: with 30 containers it is about 160 KB of text, and the controller's
parse of it (prometheus_client's parser) took about 25 ms of CPU per exporter and scrape, so
one controller could not scrape even 100 nodes a second (docs/scale.md). The controller needs
only the metric set's figures (sgcommon/metricset.py) of each container, so each sweep is also
rendered once as this compact JSON document, a few KB per node, which `json.loads` reads in C:

    {"v": 1, "node": "worker-1", "ts": 1700000000.25,
     "node_figures": {"cpu": 40.0, "mem": 60.0, "net": 3.0},
     "fields": ["container_id", "service", "task_id", "ts", "cpu", "mem", "mem_mb", "net", "net_rx", "net_tx"],
     "containers": [["<full container id>", "web", "<task id>", 1700000000.25, 12.5, 25.0, 256.0, 3.0, 1.5, 1.5]]}

Figures are in their key's unit, as in alerts (mem_mb in MiB), and are the /metrics values times
their Figure.scale, so the controller reads the same numbers from either endpoint. `fields` names
the columns: a figure added to the metric set later is a new column that an older controller
does not read, and a reader finds every column by name. `node_figures` is null until the exporter
has read its node twice. Version 1 is the only one; a reader refuses any other.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sgcommon.metricset import CONTAINER_KEYS, NODE_FIGURES

SUMMARY_PATH = "/v1/samples"
CONTENT_TYPE = "application/json"
VERSION = 1
LABEL_FIELDS = ("container_id", "service", "task_id")
FIELDS: tuple[str, ...] = (*LABEL_FIELDS, "ts", *CONTAINER_KEYS)
NODE_KEYS: tuple[str, ...] = tuple(f.key for f in NODE_FIGURES)
MAX_SUMMARY_BYTES = 16 * 1024 * 1024  # a reader refuses a bigger body (about 50 000 containers)


class SummaryError(ValueError):
    """The body is not a sample summary this reader understands; the message says why."""


def encode_summary(*, node: str, ts: float, node_figures: Mapping[str, float] | None,
                   rows: Iterable[Sequence[Any]]) -> bytes:
    """One summary; each row holds the values of FIELDS in that order."""
    doc = {"v": VERSION, "node": node, "ts": ts,
           "node_figures": None if node_figures is None else {k: node_figures[k] for k in NODE_KEYS},
           "fields": FIELDS, "containers": [list(row) for row in rows]}
    # allow_nan=False: the figures are finite by construction (exporter.sample); a bug must not write NaN
    return json.dumps(doc, separators=(",", ":"), allow_nan=False).encode()


@dataclass(frozen=True)
class Summary:
    """A decoded summary: `columns` maps each field to its position in the rows (rows are unchecked)."""

    node: str
    ts: float
    node_figures: dict[str, float] | None
    columns: dict[str, int]
    rows: list[list[Any]]


def _refuse_constant(name: str) -> float:
    raise SummaryError(f"{name} is not a number a summary may hold")


def is_number(value: Any) -> bool:
    """A finite JSON number (bool is not one)."""
    return (type(value) is float and value - value == 0.0) or type(value) is int


def decode_summary(body: bytes) -> Summary:
    """The document's structure, checked; each row's values are checked by the reader that uses them.

    Raises SummaryError naming the first problem.
    """
    if len(body) > MAX_SUMMARY_BYTES:
        raise SummaryError(f"body: {len(body)} bytes, at most {MAX_SUMMARY_BYTES} allowed")
    try:
        doc = json.loads(body, parse_constant=_refuse_constant)
    except SummaryError:
        raise
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise SummaryError(f"not JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise SummaryError("not a JSON object")
    if doc.get("v") != VERSION:
        raise SummaryError(f"v: version {doc.get('v')!r}, this reader knows {VERSION}")
    node, ts, fields, rows = doc.get("node"), doc.get("ts"), doc.get("fields"), doc.get("containers")
    if not isinstance(node, str) or not node:
        raise SummaryError("node: a non-empty string is required")
    if not isinstance(ts, (int, float)) or not is_number(ts):
        raise SummaryError("ts: a number is required")
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise SummaryError("fields: a list of names is required")
    columns = {name: i for i, name in enumerate(fields)}
    missing = [name for name in (*LABEL_FIELDS, "ts") if name not in columns]
    if missing or len(columns) != len(fields):
        raise SummaryError(f"fields: {', '.join(missing) or 'a name twice'} {'missing' if missing else ''}".strip())
    if not isinstance(rows, list) or not all(type(row) is list and len(row) == len(fields) for row in rows):
        raise SummaryError(f"containers: a list of rows of {len(fields)} values is required")
    figures = doc.get("node_figures")
    if figures is not None and not (isinstance(figures, dict) and all(is_number(v) for v in figures.values())):
        raise SummaryError("node_figures: an object of numbers or null is required")
    return Summary(node=node, ts=float(ts), node_figures=figures, columns=columns, rows=rows)

