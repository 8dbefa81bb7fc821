"""The training report (DESIGN.md "Report") and its table renderings."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from recsys_core.data.dataset import Dataset
from recsys_core.evaluation.evaluator import Evaluation
from recsys_core.evaluation.metrics import metric_keys

REPORT_KEYS: tuple[str, ...] = (
    "dataset", "protocol", "k", "models", "segments", "fusion", "timings_s", "registered",
)


def build_report(
    dataset: str | Dataset,
    protocol: str,
    k: int,
    evaluation: Evaluation,
    fusion_weights: Mapping[str, float] | None,
    timings: Mapping[str, float],
    registered: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """Assemble the JSON-ready report with exactly ``REPORT_KEYS``.

    NaN metrics (a segment without users) become ``None`` (JSON null).

    Args:
        dataset: the dataset name, or the ``Dataset`` (its ``name`` is used).
        protocol: the split protocol.
        k: the cut-off; must equal ``evaluation.k``.
        evaluation: the test-set evaluation (``fused``, each source, ``most_pop``, ...).
        fusion_weights: source name -> fused weight (plus the bias, if any); ``None`` = {}.
        timings: stage -> seconds.
        registered: ``{"name", "version"}`` of the registered model version; ``None`` when
            nothing was registered (both values null).

    Raises:
        ValueError: if ``k`` differs from the evaluation's.
    """
    if k != evaluation.k:
        raise ValueError(f"report k={k} but the evaluation used k={evaluation.k}")
    reg = dict(registered or {})
    version = reg.get("version")
    return {
        "dataset": dataset.name if isinstance(dataset, Dataset) else str(dataset),
        "protocol": protocol,
        "k": int(k),
        "models": {name: _clean(values) for name, values in evaluation.metrics.items()},
        "segments": {
            segment: {name: _clean(values) for name, values in table.items()}
            for segment, table in evaluation.segments.items()
        },
        "fusion": {"weights": {str(n): float(w) for n, w in (fusion_weights or {}).items()}},
        "timings_s": {str(stage): round(float(s), 3) for stage, s in timings.items()},
        "registered": {
            "name": reg.get("name"),
            "version": None if version is None else str(version),
        },
    }


def metrics_table(report: Mapping[str, Any], segment: str | None = None) -> Table:
    """Tabulate one row per model, one column per metric; the best value in bold.

    Args:
        report: a ``build_report`` dict.
        segment: a segment name, or ``None`` for ``report["models"]`` (all users).
    """
    k = report["k"]
    rows = report["models"] if segment is None else report["segments"][segment]
    title = f"{report['dataset']} / {report['protocol']} @ {k}"
    if segment is not None:
        title += f" - segment {segment}"
    table = Table(title=title, box=box.SIMPLE_HEAD)
    table.add_column("model")
    keys = metric_keys(k)
    for key in keys:
        table.add_column(key, justify="right")
    best = {key: _best(rows, key) for key in keys}
    for name, values in rows.items():
        cells = []
        for key in keys:
            value = values.get(key)
            text = "-" if value is None else f"{value:.4f}"
            cells.append(f"[bold]{text}[/bold]" if value is not None and value == best[key]
                         else text)
        table.add_row(name, *cells)
    return table


def render_text(report: Mapping[str, Any], width: int = 140) -> str:
    """Render plain text (no colour, ASCII borders) of the whole report, for the CLI and logs.

    Args:
        report: a ``build_report`` dict.
        width: line width.
    """
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                      no_color=True, highlight=False)
    for segment in [None, *[s for s in report["segments"] if s != "all"]]:
        table = metrics_table(report, segment)
        table.box = box.ASCII
        console.print(table)
    weights = report["fusion"]["weights"]
    if weights:
        console.print("fusion weights: " + ", ".join(f"{n}={w:.4g}" for n, w in weights.items()))
    if report["timings_s"]:
        console.print("timings (s): " + ", ".join(
            f"{stage}={s:.1f}" for stage, s in report["timings_s"].items()))
    reg = report["registered"]
    console.print("registered: " + (f"{reg['name']} v{reg['version']}" if reg.get("name")
                                    else "no"))
    return buffer.getvalue()


def _best(rows: Mapping[str, Mapping[str, float | None]], key: str) -> float | None:
    values = [v[key] for v in rows.values() if v.get(key) is not None]
    return max(values) if len(values) > 1 else None


def _clean(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: None if math.isnan(v) else float(v) for key, v in values.items()}
