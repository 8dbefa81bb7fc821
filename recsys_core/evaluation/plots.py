"""Plots of a training report, logged with every registered version.

Built on ``matplotlib.figure.Figure`` directly (no pyplot, no global backend state), so they
render headless and thread-safely.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

METRICS = ("ndcg", "precision", "recall", "hit", "mrr", "coverage")
SEGMENT_ORDER = ("all", "cold_users", "cold_items", "long_tail")


def report_plots(report: Mapping[str, Any]) -> dict[str, Figure]:
    """Artifact file name -> figure: per-source metrics, fusion weights, cold vs warm.

    Args:
        report: the training report (DESIGN.md keys; ``segments`` and ``fusion`` optional).
    """
    k = report.get("k", 10)
    figures = {}
    if report.get("models"):
        figures["per_source_metrics.png"] = per_source_metrics(report["models"], k)
    weights = report.get("fusion", {}).get("weights", {})
    if weights:
        figures["fusion_weights.png"] = fusion_weights(weights)
    if report.get("segments"):
        figures["cold_vs_warm.png"] = cold_vs_warm(report["segments"], k)
    return figures


def per_source_metrics(models: Mapping[str, Mapping[str, float | None]], k: int) -> Figure:
    """Grouped bars: each model's metrics at ``k`` (fused, every source, the baselines).

    Args:
        models: model name -> metric key -> value.
        k: the cut-off in the metric keys.
    """
    keys = [f"{m}@{k}" for m in METRICS if any(f"{m}@{k}" in v for v in models.values())]
    return _grouped(list(models), keys, lambda name, key: models[name].get(key),
                    f"Test metrics @ {k}", "value")


def fusion_weights(weights: Mapping[str, float]) -> Figure:
    """Bars of the tuned fusion weight of each source.

    Args:
        weights: source name -> weight.
    """
    fig = Figure(figsize=(6, 3.5), layout="constrained")
    ax = fig.add_subplot()
    names = list(weights)
    ax.bar(names, [float(weights[n]) for n in names], color="tab:blue")
    ax.axhline(0, color="black", linewidth=0.8)
    ax.set_title("Fusion weights")
    ax.set_ylabel("weight")
    ax.tick_params(axis="x", rotation=30)
    return fig


def cold_vs_warm(segments: Mapping[str, Mapping[str, Mapping[str, float | None]]], k: int
                 ) -> Figure:
    """NDCG@k of each model per user segment (all, cold users, cold items, long tail).

    Args:
        segments: segment -> model name -> metric key -> value.
        k: the cut-off.
    """
    names = [s for s in SEGMENT_ORDER if s in segments] + sorted(
        s for s in segments if s not in SEGMENT_ORDER)
    models = list(next(iter(segments.values())))
    return _grouped(models, names, lambda model, seg: segments[seg].get(model, {}).get(
        f"ndcg@{k}"), f"NDCG@{k}: warm vs cold segments", f"ndcg@{k}")


def _grouped(groups: Sequence[str], series: Sequence[str], value, title: str, ylabel: str
             ) -> Figure:
    """Grouped bar chart: one group per ``groups`` entry, one bar per ``series`` entry."""
    fig = Figure(figsize=(max(6.0, 1.1 * len(groups) + 2), 4), layout="constrained")
    ax = fig.add_subplot()
    x = np.arange(len(groups))
    width = 0.8 / max(len(series), 1)
    for i, name in enumerate(series):
        heights = [value(g, name) for g in groups]
        heights = [0.0 if h is None or not np.isfinite(h) else float(h) for h in heights]
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=name)
    ax.set_xticks(x, list(groups), rotation=30)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    if series:
        ax.legend(fontsize="small")
    return fig
