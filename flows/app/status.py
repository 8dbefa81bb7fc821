"""``recsys status``: one screen of what RECSYS_HOME holds, and where its UIs are.

It reads the warehouse and the MLflow store and starts nothing: no Prefect server, no flow; a
store that does not exist yet is reported as empty, not created.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from rich import box
from rich.console import Console
from rich.table import Table

from recsys_core.config import Settings
from recsys_core.lifecycle import history

RUNS, VERSIONS, SNAPSHOTS = 5, 5, 5
"""How many of each the screen lists (the newest)."""


def show(settings: Settings, console: Console) -> None:
    """Print the status screen.

    Args:
        settings: project settings (home, model name, tracking store).
        console: where to print.
    """
    console.print(f"[bold]RECSYS_HOME[/bold] {settings.home}", highlight=False)
    _section(console, "Snapshots", ("snapshot", "dataset", "interactions", "items", "created"),
             _snapshots(settings), "none yet: `recsys ingest --data DIR` or `recsys train`")
    versions = history.versions(settings, VERSIONS)
    version_of = {v.run_id: v.version for v in versions}
    _section(console, "Training runs", ("started", "dataset", "protocol", "fused ndcg",
                                        "version"),
             [(f"{r.started:%Y-%m-%d %H:%M}", r.dataset, r.protocol,
               "-" if r.fused_ndcg is None else f"{r.fused_ndcg:.4f} @{r.k}",
               version_of.get(r.run_id, "-")) for r in history.training_runs(settings, RUNS)],
             "none registered yet: `recsys train`")
    _section(console, f"Versions of {settings.model_name}",
             ("version", "aliases", "registered", "promotion"),
             [(v.version, ", ".join(v.aliases) or "-", f"{v.created:%Y-%m-%d %H:%M}",
               _decision(v)) for v in versions],
             "none yet: `recsys train` registers one")
    console.print("\n[bold]UIs[/bold]")
    for name, where in (("MLflow", _mlflow_ui(settings)), ("Prefect", _prefect_ui(settings))):
        console.print(f"{name:<8} {where}", highlight=False, soft_wrap=True, markup=False)


def _snapshots(settings: Settings) -> list[tuple[str, ...]]:
    if not settings.warehouse_path.is_file():
        return []
    from recsys_core.warehouse.store import Warehouse

    frame = Warehouse(settings.warehouse_path).snapshots().tail(SNAPSHOTS).reverse()
    return [(row["snapshot_id"], row["dataset"], f"{row['n_interactions']:,}",
             f"{row['n_items']:,}", f"{row['created_at']:%Y-%m-%d %H:%M}")
            for row in frame.iter_rows(named=True)]


def _decision(version: history.Version) -> str:
    if version.decision is None:
        return "not checked yet (`recsys promote`)"
    if version.challenger_score is None:
        return version.decision
    against = ("none" if version.champion_score is None else
               f"{version.champion_score:.4f} (v{version.champion_version})")
    return f"{version.decision} {version.challenger_score:.4f} vs {against}"


def _mlflow_ui(settings: Settings) -> str:
    uri = settings.tracking_uri
    if uri.startswith(("http://", "https://")):
        return uri
    return f"mlflow ui --backend-store-uri {uri}"


def _prefect_ui(settings: Settings) -> str:
    url = os.environ.get("PREFECT_API_URL")
    if url:
        return f"{url.removesuffix('/api')} (PREFECT_API_URL)"
    home = os.environ.get("PREFECT_HOME", str(settings.prefect_home))
    return (f"PREFECT_HOME={home} prefect server start  (PREFECT_API_URL is unset: the CLI's "
            "runs used a temporary server; this one shows their history)")


def _section(console: Console, title: str, columns: Sequence[str],
             rows: Sequence[Sequence[str]], empty: str) -> None:
    console.print(f"\n[bold]{title}[/bold]" + ("" if rows else f"  {empty}"), highlight=False)
    if not rows:
        return
    table = Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1), collapse_padding=True)
    for row in rows:
        table.add_row(*row)
    console.print(table, highlight=False)
