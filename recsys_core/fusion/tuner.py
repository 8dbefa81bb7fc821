"""Fusion tuner: Optuna over the fusion weights and missing-value rule of z-scored sources.

Tuning uses validation splits carved from the training data only, never test data: one or
more carves, each with sources trained on its own fit part, so the chosen weights must hold
on every carve rather than on one sample of users. Every source's scores for the validation
users are computed once per carve (and normalised once per normaliser), so a trial costs one
weighted sum and one top-k per carve. After the Optuna study, a few sweeps of coordinate
ascent refine the best weights one source at a time (TPE samples many weights at once and
gets coarse with six or more sources).

Sources are z-scored per user; the tuner does not search percentiles (``rank``;
``FusionConfig`` still accepts it). The weights found on a carve must hold after the refit
on the whole training part, where the CF sources, with more interactions, rank with more
confidence while the text sources barely change. A z-score keeps a source's confidence (a
sharper score distribution puts its top items further above the rest), a percentile
discards it. In the one run where the tuner picked ``rank`` (bench/quality.py,
amazon-scientific stratified) that pick kept less of its validation gain on test than the
z-scored pick on the same carves, both with the carve's sources (+6.4% against +22.9% over
the best single source) and after the refit (-3.6% against +7.5%). One normaliser also
halves the scores held per validation user, so the memory cap holds twice the users.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

import numpy as np
import optuna

from recsys_core.data.interactions import InteractionData
from recsys_core.evaluation.metrics import per_user
from recsys_core.evaluation.ranking import exclude_seen, top_k
from recsys_core.fusion.normalise import Normaliser, normalise
from recsys_core.fusion.weighted import FilledBlocks, FusionConfig, WeightedFusion

log = logging.getLogger(__name__)

NORMALISERS: tuple[Normaliser, ...] = ("zscore",)  # searched; see the module docstring
MISSING = ("mean", "min")
MAX_CELLS = 120_000_000  # validation users x items x sources held in memory while tuning
# (float32 each, plus a one-byte mask for the sources that cannot score every item)
SCALES = (0.0, 0.25, 0.5, 0.75, 1.5, 2.0, 4.0)  # coordinate ascent: a weight times these
SWEEPS = 2
MIN_GAIN_SE = 2.0  # a kept gain must clear this many standard errors (see ``clears``)


@dataclass(frozen=True)
class Carve:
    """One validation carve: sources trained on its fit part, scored on its validation.

    Args:
        fusion: fusion whose sources were trained on ``fit``.
        fit: the training part the sources saw (its items are excluded as seen).
        validation: held-out interactions over the same vocabularies.
    """

    fusion: WeightedFusion
    fit: InteractionData
    validation: InteractionData


@dataclass(frozen=True)
class TuningResult:
    """The chosen fusion config and what it scored on validation.

    Args:
        config: best fusion config.
        ndcg: its validation NDCG@k over every carve's users.
        single: each source alone (z-scored), validation NDCG@k over every carve's users.
        trials: number of trials run.
        per_carve: the chosen config's validation NDCG@k on each carve.
    """

    config: FusionConfig
    ndcg: float
    single: dict[str, float]
    trials: int
    per_carve: tuple[float, ...] = ()


PerUser = list[np.ndarray]
"""Per-user values, one array per carve."""


class _Objective:
    """Per-user NDCG@k of fusion configs on every carve; scores computed once per carve."""

    def __init__(self, carves: Sequence[Carve], k: int, seed: int) -> None:
        self.k, self.parts = k, []
        names = list(carves[0].fusion.sources)
        for carve in carves:
            if list(carve.fusion.sources) != names:
                raise ValueError("every carve must fuse the same sources")
            fit, validation = carve.fit, carve.validation
            rows = np.flatnonzero(np.diff(validation.matrix.indptr) > 0)
            cap = max(1, MAX_CELLS // max(1, fit.n_items * len(names) * len(NORMALISERS)
                                          * len(carves)))
            if len(rows) > cap:
                rows = np.sort(np.random.default_rng(seed).choice(rows, cap, replace=False))
            if len(rows) == 0:
                raise ValueError("validation split has no users with interactions")
            users = fit.users.id(rows)
            raw = {name: carve.fusion.sources[name].score(users).values for name in names}
            normed = {method: FilledBlocks({name: normalise(values, method)
                                            for name, values in raw.items()})
                      for method in NORMALISERS}
            self.parts.append((fit, rows, normed, validation.matrix[rows]))
        self.names = names

    @property
    def users(self) -> int:
        """Validation users over all carves."""
        return sum(len(rows) for _, rows, _, _ in self.parts)

    @property
    def rows(self) -> list[np.ndarray]:
        """Each carve's validation users (indices), in the order of the per-user values."""
        return [rows for _, rows, _, _ in self.parts]

    def __call__(self, config: FusionConfig) -> PerUser:
        out = []
        for fit, rows, normed, relevant in self.parts:
            fused = normed[config.normaliser].combine(config)
            exclude_seen(fused, fit.matrix, rows)
            out.append(per_user(top_k(fused, self.k), relevant, self.k)["ndcg"])
        return out


def tune(carves: Sequence[Carve], k: int = 10, trials: int = 30, seed: int = 42,
         min_gain_se: float = MIN_GAIN_SE) -> TuningResult:
    """Choose fusion weights that maximise NDCG@k on every carve's validation part.

    Each carve's sources were trained on its own fit part, so a weight that wins only
    because of one carve's sample of users does not survive: the objective is the NDCG over
    the users of all carves, and a gain is only kept when it clears the noise on all of them
    together and holds on each one (``clears``). The study starts from every source alone
    and from equal weights; the Optuna winner replaces the best single source, and each
    coordinate-ascent step replaces the current weights, only when it clears. The result is
    never worse on validation than the best single source.

    Args:
        carves: the validation carves (at least one).
        k: cut-off of the tuned metric.
        trials: Optuna trials (beyond the seeded ones).
        seed: sampler seed.
        min_gain_se: standard errors a gain must clear to be kept (0: any strict gain).
    """
    if not carves:
        raise ValueError("tune needs at least one carve")
    readouts = choose_readouts(carves, k, seed, min_gain_se)
    if readouts:
        carves = [Carve(carve.fusion.with_config(FusionConfig(readouts=readouts)), carve.fit,
                        carve.validation) for carve in carves]
    per_user_ndcg = _Objective(carves, k, seed)
    names = per_user_ndcg.names

    def ndcg(config: FusionConfig) -> float:
        return _mean(per_user_ndcg(config))

    singles = {name: FusionConfig(weights={name: 1.0}) for name in names}
    single = {name: ndcg(config) for name, config in singles.items()}
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
    top = max(single, key=single.__getitem__)
    anchor = FusionConfig(weights={n: float(n == top) for n in names})
    values = per_user_ndcg(config)
    anchor_values = per_user_ndcg(anchor)
    users = per_user_ndcg.rows
    if not clears(values, anchor_values, min_gain_se, users):
        config, values = anchor, anchor_values  # the study's gain is within noise
    config, values = refine(config, values, per_user_ndcg, min_gain_se=min_gain_se,
                            users=users)
    config = config.model_copy(update={"readouts": readouts})
    log.info("fusion tuned on %d validation users over %d carves: ndcg@%d %.4f (optuna %.4f, "
             "best single %s %.4f)", per_user_ndcg.users, len(carves), k, _mean(values),
             study.best_value, top, single[top])
    return TuningResult(config, _mean(values), single, len(study.trials),
                        tuple(float(np.mean(v)) for v in values))


def choose_readouts(carves: Sequence[Carve], k: int, seed: int, min_gain_se: float
                    ) -> dict[str, float]:
    """For each source with several readouts (``Scorer.readouts``), the best one alone.

    A readout replaces the one ``train`` left only when its gain ``clears`` on all carves.
    The user encoder's readouts are how far back its user vector reads: the question a
    split asks (the next item, or any item of the history) decides which is right, so it is
    chosen on the carves, which are drawn the way the run's test part is.

    Args:
        carves: the validation carves.
        k: cut-off of the metric.
        seed: seed of the user sample (``_Objective``).
        min_gain_se: see ``clears``.
    """
    chosen: dict[str, float] = {}
    for name, scorer in carves[0].fusion.sources.items():
        options = scorer.readouts()
        if len(options) < 2:
            continue
        alone = FusionConfig(weights={name: 1.0})

        def ndcg(readout: float, name: str = name, alone: FusionConfig = alone
                 ) -> tuple[PerUser, list[np.ndarray]]:
            read = [Carve(WeightedFusion(FusionConfig(readouts={name: readout}),
                                         {name: carve.fusion.sources[name]}).train(carve.fit),
                          carve.fit, carve.validation) for carve in carves]
            objective = _Objective(read, k, seed)
            return objective(alone), objective.rows

        best, (best_values, users) = options[0], ndcg(options[0])
        for readout in options[1:]:
            values, _ = ndcg(readout)  # the same users: same carves and seed
            if (_mean(values) > _mean(best_values)
                    and clears(values, best_values, min_gain_se, users)):
                best, best_values = readout, values
        log.info("%s reads its users with %r on the carves (ndcg@%d %.4f)", name, best, k,
                 _mean(best_values))
        if best != options[0]:
            chosen[name] = best
    return chosen


def _mean(values: PerUser) -> float:
    return float(np.concatenate(values).mean())


def clears(values: PerUser | np.ndarray | float, current: PerUser | np.ndarray | float,
           min_gain_se: float, users: Sequence[np.ndarray] | None = None) -> bool:
    """Whether ``values`` beat ``current`` by more than ``min_gain_se`` paired standard errors.

    With several carves the paired differences of all their users count together, and the
    mean gain must also be positive on every carve. The carves hold the same users, so one
    user's differences on two carves are not independent samples: given ``users``, the
    standard error is clustered by user (each user's summed deviations from the mean gain,
    squared), which is the plain paired standard error when every user appears once.
    Treating the carves' copies of a user as independent understates it by up to
    ``sqrt(carves)``: on amazon-scientific stratified that let a weight step through that
    gained 3% on the carves and nothing on test (bench/retune.py, stop 34).

    Args:
        values: per-user metric of the candidate, one array per carve (or one array, or one
            number).
        current: per-user metric of the incumbent, same users (same shapes).
        min_gain_se: required gain in standard errors of the mean paired difference; with
            one number (no spread) any strict gain clears.
        users: per carve, the user (an index) behind each value; ``None``: all distinct.
    """
    new = values if isinstance(values, list) else [values]
    old = current if isinstance(current, list) else [current]
    parts = [np.atleast_1d(np.asarray(a, dtype=np.float64) - np.asarray(b))
             for a, b in zip(new, old, strict=True)]
    diff = np.concatenate(parts)
    gain = float(diff.mean())
    n = len(diff)
    keys = np.arange(n) if users is None else np.concatenate(
        [np.asarray(u) for u in users])
    if len(keys) != n:
        raise ValueError(f"clears: {len(keys)} users for {n} values")
    _, cluster = np.unique(keys, return_inverse=True)
    sums = np.bincount(cluster, weights=diff - gain)
    clusters = len(sums)
    # CR1 sandwich estimate of the mean's variance; with one value per user it equals
    # var(diff, ddof=1) / n.
    se = (float(np.sqrt((sums ** 2).sum() * clusters / (clusters - 1)) / n)
          if clusters > 1 else 0.0)
    return gain > 0 and gain > min_gain_se * se and all(p.mean() > 0 for p in parts)


Value = TypeVar("Value", PerUser, np.ndarray, float)


def refine(config: FusionConfig, value: Value, objective: Callable[[FusionConfig], Value],
           sweeps: int = SWEEPS, min_gain_se: float = 0.0,
           users: Sequence[np.ndarray] | None = None) -> tuple[FusionConfig, Value]:
    """Coordinate ascent on the weights: scale one weight at a time, keep clear gains.

    A zero weight is tried at a small share of the largest weight instead of scaled. Among a
    weight's candidates the best is kept if it ``clears`` the current value.

    Args:
        config: the starting config.
        value: its objective value (per-user values per carve, per-user values, or their
            mean).
        objective: config -> values of the same shape, to maximise on average.
        sweeps: passes over the sources.
        min_gain_se: see ``clears``.
        users: see ``clears``.
    """
    for _ in range(sweeps):
        improved = False
        for name in config.weights:
            top = max(config.weights.values())
            current = config.weights[name]
            candidates = ({current * s for s in SCALES} if current > 0
                          else {top * s for s in (0.05, 0.1, 0.25)})
            best_trial: FusionConfig | None = None
            best_score: Value | None = None
            for weight in sorted(candidates - {current}):
                trial = config.model_copy(update={"weights": config.weights | {name: weight}})
                if not any(trial.weights.values()):
                    continue
                score = objective(trial)
                if best_score is None or _pooled(score) > _pooled(best_score):
                    best_trial, best_score = trial, score
            if (best_trial is not None and best_score is not None
                    and clears(best_score, value, min_gain_se, users)):
                config, value, improved = best_trial, best_score, True
        if not improved:
            break
    return config, value


def _pooled(values: PerUser | np.ndarray | float) -> float:
    return _mean(values) if isinstance(values, list) else float(np.mean(values))
