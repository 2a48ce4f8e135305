"""PNG charts of the test report: MTTR and downtime, proactive vs reactive, and one migration's T0-T6.

Split from labkit/report.py so matplotlib (the `report` extra) is loaded only when charts are
drawn. The Agg backend draws to files and needs no display.
"""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after the backend is chosen)
from matplotlib.axes import Axes  # noqa: E402

from controller.events import mttr_seconds  # noqa: E402
from controller.model import ActionRecord  # noqa: E402
from labkit.report import ProactiveRun, Report, ScenarioSummary, Spread  # noqa: E402

COLORS = {"reactive": "#c0504d", "proactive": "#4f81bd"}
STAGES = (  # (from, to, what happens in between)
    ("t0", "t1", "breach -> alert sent"), ("t1", "t2", "alert in transit"), ("t2", "t3", "decision"),
    ("t3", "t4", "to the first API call"), ("t4", "t5", "new task healthy"), ("t5", "t6", "old task gone"),
)
STAGE_COLORS = ("#9bbb59", "#f79646", "#8064a2", "#4bacc6", "#4f81bd", "#c0504d")


def _bars(ax: Axes, scenarios: Sequence[ScenarioSummary], pick: str, title: str) -> None:
    spreads: list[Spread] = [getattr(s, pick) for s in scenarios]
    medians = [sp.median or 0.0 for sp in spreads]
    low = [(sp.median or 0.0) - (sp.min or 0.0) for sp in spreads]
    high = [(sp.max or 0.0) - (sp.median or 0.0) for sp in spreads]
    x = range(len(scenarios))
    ax.bar(x, medians, yerr=[low, high], capsize=6, color=[COLORS[s.kind] for s in scenarios], edgecolor="black")
    for i, (sp, top) in enumerate(zip(spreads, (m + h for m, h in zip(medians, high)))):
        ax.annotate("n/a" if sp.median is None else f"{sp.median:.2f} s", (i, top), ha="center", va="bottom",
                    xytext=(0, 3), textcoords="offset points", fontsize=9)
    ax.set_xticks(list(x), [s.label.replace(": ", ":\n") for s in scenarios], fontsize=9)
    ax.set_title(title)
    ax.set_ylabel("seconds (median, min-max)")
    ax.set_ylim(0, max([m + h for m, h in zip(medians, high)] + [1.0]) * 1.2)
    ax.grid(axis="y", alpha=0.3)


def comparison_chart(report: Report, path: Path) -> Path:
    """MTTR and downtime per scenario: median bars with min-max error bars, proactive vs reactive colours."""
    scenarios = list(report.scenarios)
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4.5), layout="constrained")
    _bars(left, scenarios, "mttr", "MTTR")
    _bars(right, scenarios, "downtime", "Downtime (probe)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in COLORS.values()]
    fig.legend(handles, list(COLORS), loc="outside upper right")
    fig.suptitle("Proactive vs reactive recovery")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def typical_migration(report: Report) -> ActionRecord | None:
    """The scenario 1 migration whose MTTR is the median one (the lower middle for an even count)."""
    actions = [r.primary for r in report.runs if isinstance(r, ProactiveRun) and r.scenario == "scenario1"]
    timed = sorted((mttr_seconds(a), a.id, a) for a in actions if a is not None and mttr_seconds(a) is not None)
    return timed[(len(timed) - 1) // 2][2] if timed else None


def _label_groups(marks: Sequence[tuple[float, str]], *, near: float) -> list[tuple[float, str]]:
    """Stage times closer than `near` to the first of their group share one label (T1-T4 are
    milliseconds apart, T5 seconds later): one line per time, so none is drawn over another."""
    groups: list[list[tuple[float, str]]] = []
    for offset, name in marks:
        if groups and offset - groups[-1][0][0] <= near:
            groups[-1].append((offset, name))
        else:
            groups.append([(offset, name)])
    return [(group[0][0], "\n".join(f"{name.upper()} +{offset:.3f} s" for offset, name in group)) for group in groups]


def timeline_chart(action: ActionRecord, path: Path) -> Path:
    """T0..T6 of one action: coloured stages on one bar, and a labelled marker per stage time."""
    t = action.timeline.as_dict()
    t0 = t["t0"] if t["t0"] is not None else min(v for v in t.values() if v is not None)
    fig, ax = plt.subplots(figsize=(11, 3.6), layout="constrained")
    for (start, end, what), color in zip(STAGES, STAGE_COLORS):
        if t[start] is not None and t[end] is not None:
            ax.barh(0, t[end] - t[start], left=t[start] - t0, height=0.4, color=color, edgecolor="black",
                    label=f"{start.upper()}-{end.upper()}: {what} ({t[end] - t[start]:.3f} s)")
    marks = sorted((value - t0, name) for name, value in t.items() if value is not None)
    for offset, _ in marks:
        ax.axvline(offset, color="grey", lw=0.8, ls=":")
    for offset, text in _label_groups(marks, near=(marks[-1][0] - marks[0][0]) * 0.06):
        ax.annotate(text, (offset, 0.3), ha="left", va="bottom", fontsize=8, xytext=(2, 0), textcoords="offset points")
    ax.set_ylim(-0.5, 1.6)
    ax.set_xlim(min(0.0, marks[0][0]), max(marks[-1][0], 0.1) * 1.1)  # room for the last label
    ax.set_yticks([])
    ax.set_xlabel("seconds after T0")
    node = f"{action.node_from} -> {action.node_to}" if action.node_from or action.node_to else ""
    ax.set_title(f"{action.action} of {action.service} {node}".strip())
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=3, fontsize=8, frameon=False)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_charts(report: Report, out: Path) -> list[Path]:
    """The comparison chart, and the timeline of the median migration when there is one."""
    paths = [comparison_chart(report, out / "mttr_downtime.png")] if report.scenarios else []
    action = typical_migration(report)
    if action is not None:
        paths.append(timeline_chart(action, out / "migration_timeline.png"))
    return paths
