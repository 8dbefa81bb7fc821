"""The training report (DESIGN.md "Report"): one typed model, its assembly and renderings.

``RunReport`` serialises (``to_json``) to the report's JSON keys, in their order. A run's
evaluation gives the first part (``build_report``: models, segments, fusion); ``run_report``
adds what the rest of the run knows (stage timings, the registered version, validation, data
counts, links), in one place.
"""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field
from rich import box
from rich.console import Console
from rich.table import Table

from recsys_core.data.dataset import Dataset
from recsys_core.evaluation.evaluator import Evaluation
from recsys_core.evaluation.metrics import metric_keys

REPORT_KEYS: tuple[str, ...] = (
    "dataset", "protocol", "k", "models", "segments", "fusion", "timings_s", "registered",
)
"""The keys every report has (a training run's adds ``validation``, ``data`` and ``links``)."""

Metrics = dict[str, float | None]
"""Metric key (``ndcg@10``) -> value; None (JSON null) where a segment has no users."""


def _absent(value: object) -> bool:
    return value is None


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class BestSingle(_Section):
    """Paired test of ``fused`` against the best single source on per-user NDCG.

    Args:
        source: the best single source.
        mean_diff: mean per-user difference, fused minus the source.
        ci_low: lower bound of its 95% bootstrap interval.
        ci_high: upper bound.
        p_bootstrap: paired-bootstrap p-value.
        p_wilcoxon: Wilcoxon signed-rank p-value.
    """

    source: str
    mean_diff: float
    ci_low: float
    ci_high: float
    p_bootstrap: float
    p_wilcoxon: float


class FusionSection(_Section):
    """The fusion: its weights and, from a run, its normaliser, missing-score rule and test.

    Args:
        weights: source name -> fused weight.
        normaliser: per-user score normaliser.
        missing: what a missing source score becomes.
        readouts: source name -> the readout chosen on the carves (``FusionConfig``).
        vs_best_single: fused against the best single source.
    """

    weights: dict[str, float]
    normaliser: str | None = Field(None, exclude_if=_absent)
    missing: str | None = Field(None, exclude_if=_absent)
    readouts: dict[str, float] | None = Field(None, exclude_if=_absent)
    vs_best_single: BestSingle | None = Field(None, exclude_if=_absent)


class Registered(_Section):
    """The registered model version; both null when nothing was registered.

    Args:
        name: registered model name.
        version: its version.
    """

    name: str | None = None
    version: str | None = None


class RegisteredRun(Registered):
    """A registered version and the MLflow run that logged it.

    Args:
        run_id: the MLflow run.
    """

    run_id: str


class PromotionOutcome(_Section):
    """What the promotion gate decided for a challenger.

    Args:
        promoted: whether it is champion now.
        challenger_ndcg: its NDCG@k on the evaluation data.
        champion_ndcg: the champion's on the same data (None without a champion).
        champion_version: the champion before the check (None without one).
        reason: one line for people.
    """

    promoted: bool
    challenger_ndcg: float
    champion_ndcg: float | None
    champion_version: str | None
    reason: str


class GatedVersion(PromotionOutcome, RegisteredRun):
    """A registered version after the promotion gate (a training run's ``registered``)."""


class DataSection(_Section):
    """The snapshot a run trained on.

    Args:
        snapshot_id: the warehouse snapshot.
        users: users in the vocabulary.
        items: items in the vocabulary.
        rows: interactions per part (train, test, fit, valid), and ``rejected`` where the
            protocol placed rows in no part (``given``).
    """

    snapshot_id: str
    users: int
    items: int
    rows: dict[str, int]


class Links(_Section):
    """Where to look further.

    Args:
        data_docs: Great Expectations Data Docs index (None when not rendered).
        mlflow_run: the MLflow run (UI address or ``runs:/`` URI; None when not registered).
        tracking_uri: the MLflow tracking URI.
    """

    data_docs: str | None
    mlflow_run: str | None
    tracking_uri: str


class RunReport(_Section):
    """The report: ``to_json`` gives the DESIGN.md keys in their order.

    Args:
        dataset: dataset name.
        protocol: split protocol.
        k: the main metric cut-off (tuning and promotion use it); a report of several
            cut-offs holds each metric at each (``cutoffs``), ``k``'s first.
        models: model name (``fused``, each source, the baselines) -> metrics over all users.
        segments: segment -> model name -> metrics.
        fusion: the fusion section.
        timings_s: stage -> seconds.
        registered: the registered version (after the gate, from a training run).
        validation: the validation summary (a training run's; left out otherwise).
        data: the snapshot's counts (a training run's).
        links: Data Docs and MLflow links (a training run's).
    """

    dataset: str
    protocol: str
    k: int
    models: dict[str, Metrics]
    segments: dict[str, dict[str, Metrics]]
    fusion: FusionSection
    timings_s: dict[str, float]
    registered: Annotated[GatedVersion | Registered, Field(union_mode="left_to_right")]
    validation: dict[str, Any] | None = Field(None, exclude_if=_absent)
    data: DataSection | None = Field(None, exclude_if=_absent)
    links: Links | None = Field(None, exclude_if=_absent)

    def to_json(self) -> dict[str, Any]:
        """The report as JSON-ready dicts (``json.dumps`` it; NaN stays NaN, as ever)."""
        return self.model_dump()

    @property
    def cutoffs(self) -> tuple[int, ...]:
        """Every cut-off the metrics are at, ``k`` first (read from the metric keys)."""
        keys = next(iter(self.models.values()), {})
        found = [int(key.rpartition("@")[2]) for key in keys if key.startswith("ndcg@")]
        return tuple(dict.fromkeys([self.k, *found]))

    def score(self, model: str, metric: str = "ndcg") -> float:
        """One model's ``metric@k`` over all users.

        Args:
            model: model name (``fused``, a source or a baseline).
            metric: metric name without the cut-off.

        Raises:
            ValueError: the metric is null (no test user).
        """
        value = self.models[model][f"{metric}@{self.k}"]
        if value is None:
            raise ValueError(f"{model} has no {metric}@{self.k}: no test user")
        return value


def build_report(
    dataset: str | Dataset,
    protocol: str,
    k: int,
    evaluation: Evaluation,
    fusion: Mapping[str, float] | FusionSection | None,
    timings: Mapping[str, float],
    registered: Mapping[str, Any] | None,
) -> RunReport:
    """Assemble an evaluation's report, with exactly ``REPORT_KEYS``.

    NaN metrics (a segment without users) become ``None`` (JSON null).

    Args:
        dataset: the dataset name, or the ``Dataset`` (its ``name`` is used).
        protocol: the split protocol.
        k: the cut-off; must equal ``evaluation.k``.
        evaluation: the test-set evaluation (``fused``, each source, ``most_pop``, ...).
        fusion: the fusion section, or source name -> fused weight (plus the bias, if any);
            ``None`` = no weights.
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
    if not isinstance(fusion, FusionSection):
        fusion = FusionSection(weights={str(n): float(w) for n, w in (fusion or {}).items()})
    return RunReport(
        dataset=dataset.name if isinstance(dataset, Dataset) else str(dataset),
        protocol=protocol,
        k=int(k),
        models={name: _clean(values) for name, values in evaluation.metrics.items()},
        segments={
            segment: {name: _clean(values) for name, values in table.items()}
            for segment, table in evaluation.segments.items()
        },
        fusion=fusion,
        timings_s={str(stage): round(float(s), 3) for stage, s in timings.items()},
        registered=Registered(name=reg.get("name"),
                              version=None if version is None else str(version)),
    )


def run_report(evaluated: RunReport, timings: Mapping[str, float], validation: Mapping[str, Any],
               data: DataSection, registered: GatedVersion | None, data_docs: str | None,
               mlflow_run: str | None, tracking_uri: str) -> RunReport:
    """A training run's whole report: its evaluation's, plus what the rest of the run knows.

    Args:
        evaluated: the evaluation's report (``build_report``).
        timings: stage -> seconds.
        validation: the validation summary of the ingested data.
        data: the snapshot's counts.
        registered: the registered version after the gate; None keeps the evaluation's
            (nothing registered).
        data_docs: the Data Docs index, when rendered.
        mlflow_run: the MLflow run that logged the version, when registered.
        tracking_uri: the MLflow tracking URI.
    """
    return RunReport.model_validate({
        **dict(evaluated), "timings_s": dict(timings),
        "registered": evaluated.registered if registered is None else registered,
        "validation": dict(validation), "data": data,
        "links": Links(data_docs=data_docs, mlflow_run=mlflow_run, tracking_uri=tracking_uri)})


def metrics_table(report: RunReport, segment: str | None = None, k: int | None = None) -> Table:
    """Tabulate one row per model, one column per metric at one cut-off; the best in bold.

    Args:
        report: the report.
        segment: a segment name, or ``None`` for ``report.models`` (all users).
        k: one of ``report.cutoffs``; ``None`` for the main one, ``report.k``.
    """
    k = report.k if k is None else k
    rows = report.models if segment is None else report.segments[segment]
    title = f"{report.dataset} / {report.protocol} @ {k}"
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


def render_text(report: RunReport, width: int = 140) -> str:
    """Render plain text (no colour, ASCII borders) of the whole report, for the CLI and logs.

    Args:
        report: the report.
        width: line width.
    """
    buffer = io.StringIO()
    console = Console(file=buffer, width=width, color_system=None, force_terminal=False,
                      no_color=True, highlight=False)
    for segment in [None, *[s for s in report.segments if s != "all"]]:
        for k in report.cutoffs:
            table = metrics_table(report, segment, k)
            table.box = box.ASCII
            console.print(table)
    weights = report.fusion.weights
    if weights:
        console.print("fusion weights: " + ", ".join(f"{n}={w:.4g}" for n, w in weights.items()))
    if report.fusion.readouts:
        console.print("readouts: " + ", ".join(
            f"{n}={r:g}" for n, r in report.fusion.readouts.items()))
    if report.timings_s:
        console.print("timings (s): " + ", ".join(
            f"{stage}={s:.1f}" for stage, s in report.timings_s.items()))
    reg = report.registered
    console.print("registered: " + (f"{reg.name} v{reg.version}" if reg.name else "no"))
    return buffer.getvalue()


def render_markdown(report: RunReport) -> str:
    """A training run's report as markdown: data, validation, metrics, fusion, promotion, links.

    Args:
        report: from ``run_report``.

    Raises:
        ValueError: the report lacks the run's sections (an evaluation's alone).
    """
    data, validation, links = report.data, report.validation, report.links
    if data is None or validation is None or links is None:
        raise ValueError("render_markdown needs a training run's report (run_report)")
    ks = ", ".join(map(str, report.cutoffs))
    lines = [f"# Training report: {report.dataset} ({report.protocol}, k={ks})", "",
             "## Data", "", f"Snapshot `{data.snapshot_id}`: {data.users} users, "
             f"{data.items} items; interactions per part "
             + ", ".join(f"{part} {rows}" for part, rows in data.rows.items()) + ".", "",
             "| table | read | valid | quarantined |", "|---|---|---|---|"]
    lines += [f"| {table} | {c['rows_read']} | {c['rows_valid']} | {c['rows_quarantined']} |"
              for table, c in validation["tables"].items()]
    docs = links.data_docs
    lines += ["", f"Validation: **{'passed' if validation['success'] else 'failed'}**; "
              + (f"[Data Docs]({Path(docs).as_uri()})" if docs else "Data Docs not rendered "
                 "(flow parameter `data_docs`)."), "", f"## Test metrics (k={ks})", "",
              "| model | " + " | ".join(report.models["fused"]) + " |",
              "|---|" + "---|" * len(report.models["fused"])]
    for name, values in report.models.items():
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in values.values())
        lines.append(f"| {name} | {cells} |")
    best = report.fusion.vs_best_single
    lines += ["", "## Fusion", "", "| source | weight |", "|---|---|"]
    lines += [f"| {name} | {weight:.4f} |" for name, weight in report.fusion.weights.items()]
    if report.fusion.readouts:
        lines += ["", "Readouts chosen on the validation carves: " + ", ".join(
            f"{name} {value:g}" for name, value in report.fusion.readouts.items()) + "."]
    if best:
        lines += ["", f"Fused vs best single source ({best.source}): mean per-user NDCG "
                  f"difference {best.mean_diff:+.4f}, 95% CI [{best.ci_low:+.4f}, "
                  f"{best.ci_high:+.4f}], bootstrap p={best.p_bootstrap:.3g}."]
    lines += ["", "## Registry", ""]
    registered = report.registered
    if isinstance(registered, GatedVersion) and registered.version:
        run = links.mlflow_run or ""
        lines += [f"Version **{registered.version}** of `{registered.name}`: "
                  + ("promoted to champion. " if registered.promoted else "not promoted. ")
                  + registered.reason, "",
                  f"MLflow run: [{registered.run_id}]({run})" if run.startswith("http")
                  else f"MLflow run: `{run}` (tracking URI `{links.tracking_uri}`)"]
    else:
        lines.append("Not registered (flow parameter `register_model`).")
    lines += ["", "## Stage seconds", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.2f} |" for stage, seconds in report.timings_s.items()]
    return "\n".join(lines)


def _best(rows: Mapping[str, Mapping[str, float | None]], key: str) -> float | None:
    values = [value for v in rows.values() if (value := v.get(key)) is not None]
    return max(values) if len(values) > 1 else None


def _clean(values: Mapping[str, float]) -> dict[str, float | None]:
    return {key: None if math.isnan(v) else float(v) for key, v in values.items()}
