"""Small models trained in process through the pipeline stages, for registry/serving tests.

``TrainedRun`` holds one run (synthetic data in a temporary warehouse, split, embedded by
the tiny random BERT) and trains HybridRecommenders on it: a strong CF + text fusion and a
weak popularity-only one, both evaluated on the same test part.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from recsys_core import pipeline
from recsys_core.config import Settings
from recsys_core.data.loaders import read_dataset
from recsys_core.evaluation.report import build_report
from recsys_core.fusion.weighted import FusionConfig
from recsys_core.lifecycle import registry
from recsys_core.lifecycle.batch import precompute
from recsys_core.runstore import RunStore
from recsys_core.scoring import TrainOptions
from recsys_core.warehouse.store import Warehouse
from tests.tiny_bert import build_tiny_model

K = 5
TOP_K = 20
STRONG = {"als": {"factors": 16, "iterations": 10}, "itemknn": {}, "ease": {}, "text": {}}
WEAK = {"mostpop": {}}
TAGS = {"snapshot_id": "snap", "validation": "passed", "git_commit": "test"}


@dataclass
class TrainedRun:
    """One run folder with embeddings, and the encoder that made them.

    Args:
        store: the run.
        embeddings: the stored item embeddings.
        encoder: path of the tiny BERT.
        settings: settings whose home holds the run's warehouse.
    """

    store: RunStore
    embeddings: Path
    encoder: str
    settings: Settings

    def train(self, sources: dict[str, dict], seed: int = 42) -> pipeline.FinalModel:
        """Train ``sources`` on the run's train part and fuse them with equal weights."""
        options = TrainOptions(seed=seed)
        paths = {name: pipeline.train_source(self.store, name, params, "train", options,
                                             self.embeddings)
                 for name, params in sources.items()}
        return pipeline.evaluate_run(self.store, paths, {}, FusionConfig(
            weights=dict.fromkeys(sources, 1.0)), K, {"dataset": "synthetic"})

    def register(self, final: pipeline.FinalModel, settings: Settings
                 ) -> registry.RegisteredVersion:
        """Register ``final`` under ``settings.model_name`` with this run as its eval data and
        every user's top-``TOP_K`` precomputed."""
        report = build_report("synthetic", "stratified", K, final.evaluation,
                              final.model.fusion.config.weights, {}, None)
        return registry.register(final.model, final.model_dir, report.to_json(),
                                 {"fusion": final.model.fusion.config.model_dump()},
                                 TAGS | {"encoder": self.encoder}, settings,
                                 eval_run=self.store.folder,
                                 top_k=precompute(final.model, TOP_K))


def build_run(root: Path, n_interactions: int = 3000, seed: int = 42) -> TrainedRun:
    """Ingest synthetic data into a warehouse under ``root``, split it and embed the items."""
    settings = Settings(home=root / "state")
    settings.ensure_dirs()
    snapshot = Warehouse(settings.warehouse_path).load(
        read_dataset(f"synthetic:{n_interactions}"))
    store = pipeline.prepare_run(settings, snapshot, "stratified", seed)
    encoder = str(build_tiny_model(root / "tiny-bert"))
    _, embeddings = pipeline.embed_items(store, settings, encoder)
    return TrainedRun(store, embeddings, encoder, settings)


def unique_settings() -> Settings:
    """Settings (the session's store) with a fresh registered-model name."""
    return Settings(model_name=f"test-{uuid.uuid4().hex[:10]}")

