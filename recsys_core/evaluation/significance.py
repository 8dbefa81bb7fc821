"""Paired significance of the difference between two models on the same users."""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
from scipy import stats

from recsys_core.evaluation.evaluator import Evaluation

log = logging.getLogger(__name__)

_MAX_CHUNK_CELLS = 4_000_000


@dataclass(frozen=True)
class PairedTest:
    """Difference ``a - b`` in one per-user metric over the same users.

    Args:
        a: first model name.
        b: second model name.
        metric: full metric key (``ndcg@10``).
        segment: segment name.
        n_users: number of paired users.
        mean_a: mean of ``a``.
        mean_b: mean of ``b``.
        mean_diff: mean of the per-user differences ``a - b``.
        ci_low: lower bound of the bootstrap percentile interval of ``mean_diff``.
        ci_high: upper bound of that interval.
        p_bootstrap: two-sided paired-bootstrap p-value (null: mean difference 0).
        p_wilcoxon: two-sided Wilcoxon signed-rank p-value (zero differences dropped);
            1.0 when every difference is zero.
    """

    a: str
    b: str
    metric: str
    segment: str
    n_users: int
    mean_a: float
    mean_b: float
    mean_diff: float
    ci_low: float
    ci_high: float
    p_bootstrap: float
    p_wilcoxon: float

    def significant(self, alpha: float = 0.05) -> bool:
        """Whether both tests reject equality at level ``alpha``.

        Args:
            alpha: significance level.
        """
        return self.p_bootstrap < alpha and self.p_wilcoxon < alpha


def paired_test(
    evaluation: Evaluation,
    a: str,
    b: str,
    metric: str = "ndcg",
    segment: str = "all",
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> PairedTest:
    """Compare models ``a`` and ``b`` user by user (e.g. ``"fused"`` vs the best source).

    Resamples users with replacement ``n_boot`` times for a percentile interval of the mean
    difference and a null-centred two-sided p-value, and runs scipy's Wilcoxon signed-rank
    test on the same differences.

    Args:
        evaluation: the result of ``evaluate`` holding both models.
        a: first model name.
        b: second model name.
        metric: per-user metric, short name or full key.
        segment: segment name.
        n_boot: bootstrap resamples.
        confidence: interval coverage, in (0, 1).
        seed: bootstrap seed.
    """
    key = evaluation.metric_key(metric)
    values_a = evaluation.user_values(a, key, segment)
    values_b = evaluation.user_values(b, key, segment)
    diff = values_a - values_b
    n = diff.size
    if n == 0:
        nan = float("nan")
        return PairedTest(a, b, key, segment, 0, nan, nan, nan, nan, nan, nan, nan)
    mean = float(diff.mean())
    boot = _bootstrap_means(diff, n_boot, seed)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(boot, [tail, 1.0 - tail])
    extreme = np.abs(boot - mean) >= abs(mean) - 1e-15
    p_boot = float((1 + extreme.sum()) / (n_boot + 1))
    result = PairedTest(a, b, key, segment, n, float(values_a.mean()), float(values_b.mean()),
                        mean, float(low), float(high), min(p_boot, 1.0), _wilcoxon(diff))
    log.info("%s - %s on %s (%s): %+.4f [%.4f, %.4f], p=%.3g / %.3g", a, b, key, segment, mean,
             result.ci_low, result.ci_high, result.p_bootstrap, result.p_wilcoxon)
    return result


def _bootstrap_means(diff: np.ndarray, n_boot: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    n = diff.size
    chunk = max(1, _MAX_CHUNK_CELLS // n)
    means = np.empty(n_boot)
    for start in range(0, n_boot, chunk):
        size = min(chunk, n_boot - start)
        means[start:start + size] = diff[rng.integers(0, n, size=(size, n))].mean(axis=1)
    return means


def _wilcoxon(diff: np.ndarray) -> float:
    if not np.any(diff != 0):
        return 1.0
    return float(stats.wilcoxon(diff, zero_method="wilcox").pvalue)
