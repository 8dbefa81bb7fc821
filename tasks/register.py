"""Registry tasks: log + register a version, then the gated promotion."""

from __future__ import annotations

from prefect import task
from prefect.logging import get_run_logger

from recsys_core import pipeline, registry
from recsys_core.config import get_settings
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.runstore import RunStore
from tasks.common import retry_on_io


@task(retries=2, retry_delay_seconds=[5, 20], retry_condition_fn=retry_on_io)
def register(model_dir: str, report: dict, params: dict, tags: dict[str, str]) -> dict:
    """Log the run to MLflow and register a new version (alias ``challenger``)."""
    version = registry.register(HybridRecommender.load(model_dir), model_dir, report, params,
                                tags, get_settings())
    get_run_logger().info("registered %s version %s", version.name, version.version)
    return {"name": version.name, "version": version.version, "run_id": version.run_id}


@task
def promote(run: str, version: str, challenger_ndcg: float, k: int, margin: float = 0.0
            ) -> dict:
    """Score the champion on this run's test data; promote the challenger if it is better."""
    settings = get_settings()
    champion = registry.load_recommender(settings, registry.CHAMPION)
    champion_ndcg = None if champion is None else pipeline.score_model(RunStore(run), champion, k)
    promoted = registry.promote(registry.client(settings), settings.model_name, version,
                                challenger_ndcg, champion_ndcg, margin)
    get_run_logger().info("version %s %s (ndcg %.4f vs champion %s)", version,
                          "promoted" if promoted else "not promoted", challenger_ndcg,
                          champion_ndcg)
    return {"promoted": promoted, "challenger_ndcg": challenger_ndcg,
            "champion_ndcg": champion_ndcg}
