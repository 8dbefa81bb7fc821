"""Evaluation tasks: rank test-user shards, evaluate on test and save the model, publish."""

from __future__ import annotations

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.logging import get_run_logger

from recsys_core import pipeline
from recsys_core.config import get_settings
from recsys_core.evaluation.report import RunReport, render_markdown
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
def rank_shard(run: str, sources: dict[str, str], baselines: dict[str, str],
               fusion: FusionConfig, k: int | list[int], shard: tuple[int, int],
               embeddings: str | None = None) -> str:
    """Rank one range of test users with every model; returns the lists' file."""
    return str(pipeline.rank_test_users(RunStore(run), sources, baselines, fusion, k, shard[0],
                                        shard[1], embeddings))


@task(cache_policy=CACHED)
def evaluate(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: FusionConfig,
             k: int | list[int], dataset: str, encoder: str | None = None,
             embeddings: str | None = None, ranked: list[str] | None = None) -> RunReport:
    """Evaluate on the test part (``ranked``: shard files), save the model; returns the report."""
    store = RunStore(run)
    final = pipeline.evaluate_run(store, sources, baselines, fusion, k, {"dataset": dataset},
                                  encoder, embeddings, ranked)
    report = pipeline.report_run(final, dataset, store.meta["protocol"], final.evaluation.k,
                                 fusion)
    best = report.fusion.vs_best_single
    assert best is not None  # report_run tests fused against the best single source
    get_run_logger().info("test ndcg@%d: fused %.4f, %+.4f vs best single %s (p=%.3g); %d models",
                          report.k, report.score("fused"), best.mean_diff, best.source,
                          best.p_bootstrap, len(report.models))
    return report


@task(cache_policy=NO_CACHE)
def publish(report: RunReport) -> None:
    """Attach the run's artifacts: test metrics per source and fused, and the markdown report."""
    rows = [{"model": name, **values} for name, values in report.models.items()]
    create_table_artifact(rows, key="test-metrics", description=f"{report.dataset}, k={report.k}")
    create_markdown_artifact(render_markdown(report), key="training-report",
                             description=f"{report.dataset}, {report.protocol}")
