"""Fusion tuner: Optuna over the fusion weights, normaliser and missing-value rule.

Tuning uses a validation split carved from the training data only, never test data. Every
source's scores for the validation users are computed once (and normalised once per
normaliser), so a trial costs one weighted sum and one top-k. After the Optuna study, a few
sweeps of coordinate ascent refine the best weights one source at a time (TPE samples many
weights at once and gets coarse with six or more sources).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna

from recsys_core.data.interactions import InteractionData
from recsys_core.evaluation.metrics import per_user
from recsys_core.evaluation.ranking import exclude_seen, top_k
from recsys_core.fusion.normalise import normalise
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion, combine_normalised

log = logging.getLogger(__name__)

NORMALISERS = ("zscore", "rank")
MISSING = ("mean", "min")
MAX_CELLS = 120_000_000  # validation users x items x sources held in memory while tuning
SCALES = (0.0, 0.25, 0.5, 0.75, 1.5, 2.0, 4.0)  # coordinate ascent: a weight times these
SWEEPS = 2


@dataclass(frozen=True)
class TuningResult:
    """The chosen fusion config and what it scored on validation.

    Args:
        config: best fusion config.
        ndcg: its validation NDCG@k.
        single: each source alone (z-scored), validation NDCG@k.
        trials: number of trials run.
    """

    config: FusionConfig
    ndcg: float
    single: dict[str, float]
    trials: int


def tune(fusion: WeightedFusion, fit: InteractionData, validation: InteractionData, k: int = 10,
         trials: int = 30, seed: int = 42) -> TuningResult:
    """Choose fusion weights that maximise NDCG@k on ``validation``.

    The study starts from every source alone and from equal weights, so the result is never
    worse on validation than the best single source.

    Args:
        fusion: fusion whose sources were trained on ``fit``.
        fit: the training part the sources saw (its items are excluded as seen).
        validation: held-out interactions over the same vocabularies.
        k: cut-off of the tuned metric.
        trials: Optuna trials (beyond the seeded ones).
        seed: sampler seed.
    """
    names = list(fusion.sources)
    rows = np.flatnonzero(np.diff(validation.matrix.indptr) > 0)
    cap = max(1, MAX_CELLS // max(1, fit.n_items * len(names) * len(NORMALISERS)))
    if len(rows) > cap:
        rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
    if len(rows) == 0:
        raise ValueError("validation split has no users with interactions")
    users = fit.users.id(rows)
    raw = {name: fusion.sources[name].score(users).values for name in names}
    normed = {method: {name: normalise(values, method) for name, values in raw.items()}
              for method in NORMALISERS}
    relevant = validation.matrix[rows]

    def ndcg(config: FusionConfig) -> float:
        fused = combine_normalised(normed[config.normaliser], config)
        exclude_seen(fused, fit.matrix, rows)
        return float(per_user(top_k(fused, k), relevant, k)["ndcg"].mean())

    single = {name: ndcg(FusionConfig(weights={name: 1.0})) for name in names}
    sampler = optuna.samplers.TPESampler(seed=seed)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for name in names:
        study.enqueue_trial({f"w_{n}": float(n == name) for n in names}
                            | {"normaliser": "zscore", "missing": "mean"})
    study.enqueue_trial({f"w_{n}": 0.5 for n in names} | {"normaliser": "zscore",
                                                           "missing": "mean"})

    def objective(trial: optuna.Trial) -> float:
        weights = {n: trial.suggest_float(f"w_{n}", 0.0, 1.0) for n in names}
        if not any(weights.values()):
            return 0.0
        return ndcg(FusionConfig(weights=weights,
                                 normaliser=trial.suggest_categorical("normaliser", NORMALISERS),
                                 missing=trial.suggest_categorical("missing", MISSING)))

    study.optimize(objective, n_trials=len(names) + 1 + trials)
    best = study.best_params
    config = FusionConfig(weights={n: best[f"w_{n}"] for n in names},
                          normaliser=best["normaliser"], missing=best["missing"])
    config, value = refine(config, study.best_value, ndcg)
    log.info("fusion tuned on %d validation users: ndcg@%d %.4f (optuna %.4f, best single "
             "%.4f)", len(rows), k, value, study.best_value, max(single.values()))
    return TuningResult(config, value, single, len(study.trials))


def refine(config: FusionConfig, value: float, objective: Callable[[FusionConfig], float],
           sweeps: int = SWEEPS) -> tuple[FusionConfig, float]:
    """Coordinate ascent on the weights: scale one weight at a time, keep strict gains.

    A zero weight is tried at a small share of the largest weight instead of scaled.

    Args:
        config: the starting config.
        value: its objective value.
        objective: config -> value to maximise.
        sweeps: passes over the sources.
    """
    for _ in range(sweeps):
        improved = False
        for name in config.weights:
            top = max(config.weights.values())
            current = config.weights[name]
            candidates = ({current * s for s in SCALES} if current > 0
                          else {top * s for s in (0.05, 0.1, 0.25)})
            for weight in sorted(candidates - {current}):
                trial = config.model_copy(update={"weights": config.weights | {name: weight}})
                if not any(trial.weights.values()):
                    continue
                score = objective(trial)
                if score > value:
                    config, value, improved = trial, score, True
        if not improved:
            break
    return config, float(value)


