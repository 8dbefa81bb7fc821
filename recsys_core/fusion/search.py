"""Per-source hyperparameter search: Optuna on fit -> validation NDCG, one source at a time.

Only the few hyperparameters that matter are searched (ALS factors, regularisation and
confidence scale; BPR's; EASE's lambda; item-kNN's neighbour count), each source alone and
with a handful of trials, so the search stays affordable on 2 cores. The source's given
parameters are always the first trial (outside the Optuna space, so they may lie beyond it),
so the result never scores below them on validation. Test data never enters: the caller
passes the fit part and the validation part carved from the training split.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import optuna

from recsys_core.data.interactions import InteractionData
from recsys_core.evaluation.metrics import per_user
from recsys_core.evaluation.ranking import exclude_seen, top_k
from recsys_core.scoring import Scorer, TrainOptions

log = logging.getLogger(__name__)

Space = Callable[[optuna.trial.BaseTrial], dict[str, Any]]

SPACES: dict[str, Space] = {
    "als": lambda t: {"factors": t.suggest_categorical("factors", [32, 64, 128]),
                      "regularization": t.suggest_float("regularization", 1e-3, 10.0, log=True),
                      "alpha": t.suggest_float("alpha", 0.5, 50.0, log=True)},
    "bpr": lambda t: {"factors": t.suggest_categorical("factors", [32, 64, 128]),
                      "learning_rate": t.suggest_float("learning_rate", 3e-3, 0.1, log=True),
                      "regularization": t.suggest_float("regularization", 1e-4, 0.1, log=True)},
    "ease": lambda t: {"l2": t.suggest_float("l2", 10.0, 5000.0, log=True)},
    "itemknn": lambda t: {"k": t.suggest_int("k", 10, 500, log=True)},
    "itemknn_bm25": lambda t: {"k": t.suggest_int("k", 10, 500, log=True),
                               "k1": t.suggest_float("k1", 0.3, 3.0),
                               "b": t.suggest_float("b", 0.0, 1.0)},
}
"""Source name -> its search space (a trial -> config fields); other sources are not tuned."""


@dataclass(frozen=True)
class SourceTuning:
    """One source's search result.

    Args:
        params: the best config fields (the given ones overlaid with the searched ones).
        ndcg: their validation NDCG@k.
        trials: trials run (each is one fit).
        seconds: wall time of the search.
    """

    params: dict[str, Any]
    ndcg: float
    trials: int
    seconds: float


def validation_rows(validation: InteractionData, max_users: int, seed: int) -> np.ndarray:
    """Users with validation interactions, at most ``max_users`` of them (a seeded sample).

    Args:
        validation: the held-out part.
        max_users: cap on returned rows.
        seed: sampling seed.
    """
    rows = np.flatnonzero(np.diff(validation.matrix.indptr) > 0)
    if len(rows) > max_users:
        rows = np.sort(np.random.default_rng(seed).choice(rows, max_users, replace=False))
    return rows


def validation_ndcg(scorer: Scorer, fit: InteractionData, validation: InteractionData,
                    rows: np.ndarray, k: int) -> float:
    """Mean NDCG@k over ``rows`` of a scorer trained on ``fit``, fit items excluded.

    Args:
        scorer: trained on ``fit``.
        fit: the training part (its items are excluded as seen).
        validation: the held-out part.
        rows: user rows to evaluate.
        k: cut-off.
    """
    values = scorer.score_indices(rows)
    values = np.where(np.isnan(values), -np.inf, values).astype(np.float32)
    exclude_seen(values, fit.matrix, rows)
    return float(per_user(top_k(values, k), validation.matrix[rows], k)["ndcg"].mean())


def tune_source(make: Callable[[dict[str, Any]], Scorer], name: str, params: Mapping[str, Any],
                fit: InteractionData, validation: InteractionData, options: TrainOptions,
                trials: int, k: int = 10, max_users: int = 3000) -> SourceTuning:
    """Search ``name``'s space with ``trials`` fits on ``fit``, scored on ``validation``.

    Args:
        make: config fields -> an untrained scorer of this source.
        name: source name (a key of ``SPACES``).
        params: the source's given config fields; searched fields override them.
        fit: training part the trial models fit on.
        validation: held-out part carved from training (never test data).
        options: seed and device for the fits (validation is not passed to them).
        trials: total fits, the given parameters included; at least 1.
        k: cut-off of the tuned NDCG.
        max_users: validation users sampled for scoring.
    """
    if name not in SPACES:
        raise ValueError(f"no search space for source {name!r}; searchable: {sorted(SPACES)}")
    if trials < 1:
        raise ValueError("trials must be >= 1")
    rows = validation_rows(validation, max_users, options.seed)
    if len(rows) == 0:
        raise ValueError("validation split has no users with interactions")
    base = dict(params)
    start = time.perf_counter()

    def score(fields: dict[str, Any]) -> float:
        scorer = make(fields).train(fit, TrainOptions(options.seed, options.device))
        return validation_ndcg(scorer, fit, validation, rows, k)

    best, best_ndcg = base, score(base)  # the given params are the first trial
    if trials > 1:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        study = optuna.create_study(direction="maximize",
                                    sampler=optuna.samplers.TPESampler(seed=options.seed))
        study.optimize(lambda trial: score(base | SPACES[name](trial)), n_trials=trials - 1)
        if study.best_value > best_ndcg:
            best = base | SPACES[name](optuna.trial.FixedTrial(study.best_params))
            best_ndcg = study.best_value
    seconds = time.perf_counter() - start
    log.info("%s tuned in %d trials (%.1fs): %s, validation ndcg@%d %.4f", name, trials,
             seconds, best, k, best_ndcg)
    return SourceTuning(best, float(best_ndcg), trials, seconds)

