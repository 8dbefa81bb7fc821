"""Evaluation subflow: rank test users shard by shard on the configured task runner.

Each shard task loads the sources, ranks its range of test users with every model and writes
the top-k lists to the run; the evaluation task then measures all of them at once, so the
metrics equal those of an evaluation that ranks in one process.
"""

from __future__ import annotations

from prefect import flow, unmapped

from flows.runner import sharded
from recsys_core.evaluation.report import RunReport
from recsys_core.fusion.weighted import FusionConfig
from tasks.evaluate import evaluate as evaluate_task
from tasks.evaluate import plan_ranking, rank_shard


@flow(name="evaluate")
def evaluate_flow(run: str, sources: dict[str, str], baselines: dict[str, str],
                  fusion: FusionConfig, k: int | list[int], dataset: str,
                  encoder: str | None = None,
                  embeddings: str | None = None) -> RunReport:
    """Rank test users in shards, then evaluate (the model is saved in the run); the report."""
    shards = plan_ranking(run)
    ranked = rank_shard.map(run, unmapped(sources), unmapped(baselines), unmapped(fusion),
                            unmapped(k), shards, embeddings)
    return evaluate_task(run, sources, baselines, fusion, k, dataset, encoder, embeddings,
                         ranked.result())


def evaluate(run: str, sources: dict[str, str], baselines: dict[str, str], fusion: FusionConfig,
             k: int | list[int], dataset: str, encoder: str | None = None,
             embeddings: str | None = None) -> RunReport:
    """Run ``evaluate_flow`` on the configured task runner (one thread when local)."""
    return sharded(evaluate_flow, local_threads=1)(run, sources, baselines, fusion, k, dataset,
                                                   encoder, embeddings)
