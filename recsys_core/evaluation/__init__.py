"""Evaluation: splits, ranking metrics, the full-ranking evaluator, significance, report.

Import from the submodules: the package itself imports nothing, so a light helper
(``metrics.cutoffs``, the splits' protocol names) does not pull in torch and SciPy's stats
with the evaluator (2.4 s of the CLI's pre-flight checks).
"""
