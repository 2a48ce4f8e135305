"""PNG charts of the test report: MTTR and downtime, proactive vs reactive, one migration's T0-T6, and
the leak runs' timelines (scenario 3 and the fast leak: crossing, predicted crossing, T3, T5, T6, OOM).

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
from labkit.report import LEAK_SCENARIOS, ProactiveRun, Report, ScenarioSummary, Spread  # noqa: E402

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
    for i, (sp, top) in enumerate(zip(spreads, (m + h for m, h in zip(medians, high, strict=True)), strict=True)):
        ax.annotate("n/a" if sp.median is None else f"{sp.median:.2f} s", (i, top), ha="center", va="bottom",
                    xytext=(0, 3), textcoords="offset points", fontsize=9)
    ax.set_xticks(list(x), [s.label.replace(": ", ":\n") for s in scenarios], fontsize=9)
    ax.set_title(title)
    ax.set_ylabel("seconds (median, min-max)")
    ax.set_ylim(0, max([m + h for m, h in zip(medians, high, strict=True)] + [1.0]) * 1.2)
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
    for (start, end, what), color in zip(STAGES, STAGE_COLORS, strict=True):
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


SHORT = {"scenario3-threshold": "slow leak, threshold rule", "scenario3-predictive": "slow leak, predictive rules",
         "fastleak": "fast leak"}
LEAK_MARKS = (  # (timeline field, label, marker, colour)
    ("predicted_crossing", "predicted crossing (rule's line at T3)", "^", "#f79646"),
    ("t3", "T3 decision", "|", "#7f7f7f"),
    ("t5", "T5 replacement serving", "o", "#9bbb59"),
    ("t6", "T6 old task gone", "s", "#4f81bd"),
    ("t_cross", "T_cross (threshold / limit reached)", "X", "#c0504d"),
    ("oom_at", "OOM kill", "*", "#000000"),
)


def leak_chart(runs: list[ProactiveRun], path: Path) -> Path:
    """One row per leak run, its times in seconds after the climb's start; a hollow T_cross was
    extrapolated (the old container was stopped before it got there)."""
    fig, ax = plt.subplots(figsize=(11, 1.2 + 0.42 * len(runs)), layout="constrained")
    labels = []
    for row, run in enumerate(runs):
        t = run.leak
        assert t is not None
        labels.append(f"{SHORT.get(run.scenario, run.scenario)} #{row + 1}")
        for field, label, marker, color in LEAK_MARKS:
            x = t.after_start(getattr(t, field))
            if x is None:
                continue
            if marker == "|":  # a line marker has no face: colour it directly
                ax.scatter([x], [row], marker=marker, s=120, label=label, zorder=3, color=color)
                continue
            hollow = field == "t_cross" and not t.t_cross_observed
            ax.scatter([x], [row], marker=marker, s=70, label=label, zorder=3,
                       facecolors="none" if hollow else color, edgecolors=color)
        if t.t5 is not None and t.t_cross is not None:
            ax.plot([t.t5 - t.started, t.t_cross - t.started], [row, row], color="#9bbb59" if (t.lead_time or 0) >= 0
                    else "#c0504d", lw=2, alpha=0.5, zorder=2)
    handles, names = ax.get_legend_handles_labels()
    unique = dict(zip(names, handles, strict=True))
    ax.legend(unique.values(), unique.keys(), loc="upper center", bbox_to_anchor=(0.5, -0.25), ncol=3, fontsize=8,
              frameon=False)
    ax.set_yticks(range(len(runs)), labels, fontsize=8)
    ax.invert_yaxis()
    ax.set_xlabel("seconds after the climb's start (line: T5 -> T_cross, green when the replacement served first)")
    ax.grid(axis="x", alpha=0.3)
    ax.set_title("Leak runs: predicted and actual crossing, and when the replacement served")
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def draw_charts(report: Report, out: Path) -> list[Path]:
    """The comparison chart, the timeline of the median migration when there is one, and the leak runs."""
    paths = [comparison_chart(report, out / "mttr_downtime.png")] if report.scenarios else []
    action = typical_migration(report)
    if action is not None:
        paths.append(timeline_chart(action, out / "migration_timeline.png"))
    leaks = [r for r in report.runs if isinstance(r, ProactiveRun) and r.scenario in LEAK_SCENARIOS and r.leak]
    if leaks:
        paths.append(leak_chart(leaks, out / "leak_timeline.png"))
    return paths
