"""Evaluation tasks: plan and rank test-user shards; fuse, evaluate on test, save the model."""

from __future__ import annotations

from pathlib import Path

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.runstore import RunStore
from tasks.common import CACHED


@task
def plan_ranking(run: str) -> list[tuple[int, int]]:
    """``(start, stop)`` ranges of at most ``RECSYS_SHARD_USERS`` test users."""
    n_users, size = pipeline.evaluation_users(RunStore(run)), get_settings().shard_users
    shards = [(start, min(start + size, n_users)) for start in range(0, n_users, size)]
    get_run_logger().info("%d test users in %d shards", n_users, len(shards))
    return shards


@task(cache_policy=NO_CACHE)
def rank_shard(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict,
               k: int, shard: tuple[int, int], embeddings: str | None = None) -> str:
    """Rank one range of test users with every model; returns the lists' file."""
    return str(pipeline.rank_test_users(RunStore(run), sources, baselines,
                                        FusionConfig.model_validate(fusion), k, shard[0],
                                        shard[1], embeddings))


@task(cache_policy=CACHED)
def evaluate(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: dict, k: int,
             dataset: str, encoder: str | None = None, embeddings: str | None = None,
             ranked: list[str] | None = None) -> dict:
    """Evaluate on the test part (``ranked``: shard files); returns the report and model."""
    store = RunStore(run)
    config = FusionConfig.model_validate(fusion)
    final = pipeline.evaluate_run(store, sources, baselines, config, k, {"dataset": dataset},
                                  encoder, embeddings, ranked)
    report = pipeline.report_run(final, dataset, store.meta["protocol"], k, config)
    fused, best = report["models"]["fused"], report["fusion"]["vs_best_single"]
    get_run_logger().info("test ndcg@%d: fused %.4f, %+.4f vs best single %s (p=%.3g); %d models",
                          k, fused[f"ndcg@{k}"], best["mean_diff"], best["source"],
                          best["p_bootstrap"], len(report["models"]))
    return {"report": report, "model_dir": str(final.model_dir)}


def publish(report: dict) -> None:
    """Attach the run's artifacts: test metrics per source and fused, and the markdown report.

    Called by the flow on every run, so a run whose stages came from the cache has them too.
    """
    k = report["k"]
    rows = [{"model": name, **values} for name, values in report["models"].items()]
    create_table_artifact(rows, key="test-metrics", description=f"{report['dataset']}, k={k}")
    create_markdown_artifact(markdown(report), key="training-report",
                             description=f"{report['dataset']}, {report['protocol']}")


def markdown(report: dict) -> str:
    """The training report as markdown: data, validation, metrics, fusion, promotion, links."""
    k, data, validation = report["k"], report["data"], report["validation"]
    links, registered = report["links"], report["registered"]
    lines = [f"# Training report: {report['dataset']} ({report['protocol']}, k={k})", "",
             "## Data", "", f"Snapshot `{data['snapshot_id']}`: {data['users']} users, "
             f"{data['items']} items; interactions per part "
             + ", ".join(f"{part} {rows}" for part, rows in data["rows"].items()) + ".", "",
             "| table | read | valid | quarantined |", "|---|---|---|---|"]
    lines += [f"| {table} | {c['rows_read']} | {c['rows_valid']} | {c['rows_quarantined']} |"
              for table, c in validation["tables"].items()]
    docs = links.get("data_docs")
    lines += ["", f"Validation: **{'passed' if validation['success'] else 'failed'}**; "
              + (f"[Data Docs]({Path(docs).as_uri()})" if docs else "Data Docs not rendered "
                 "(flow parameter `data_docs`)."), "", f"## Test metrics (k={k})", "",
              "| model | " + " | ".join(report["models"]["fused"]) + " |",
              "|---|" + "---|" * len(report["models"]["fused"])]
    for name, values in report["models"].items():
        cells = " | ".join("-" if v is None else f"{v:.4f}" for v in values.values())
        lines.append(f"| {name} | {cells} |")
    fusion = report["fusion"]
    best = fusion.get("vs_best_single", {})
    lines += ["", "## Fusion", "", "| source | weight |", "|---|---|"]
    lines += [f"| {name} | {weight:.4f} |" for name, weight in fusion["weights"].items()]
    if best:
        lines += ["", f"Fused vs best single source ({best['source']}): mean per-user NDCG "
                  f"difference {best['mean_diff']:+.4f}, 95% CI [{best['ci_low']:+.4f}, "
                  f"{best['ci_high']:+.4f}], bootstrap p={best['p_bootstrap']:.3g}."]
    lines += ["", "## Registry", ""]
    if registered.get("version"):
        run = links["mlflow_run"]
        lines += [f"Version **{registered['version']}** of `{registered['name']}`: "
                  + ("promoted to champion. " if registered["promoted"] else "not promoted. ")
                  + registered["reason"], "",
                  f"MLflow run: [{registered['run_id']}]({run})" if run.startswith("http")
                  else f"MLflow run: `{run}` (tracking URI `{links['tracking_uri']}`)"]
    else:
        lines.append("Not registered (flow parameter `register_model`).")
    lines += ["", "## Stage seconds", "", "| stage | seconds |", "|---|---|"]
    lines += [f"| {stage} | {seconds:.2f} |" for stage, seconds in report["timings_s"].items()]
    return "\n".join(lines)

