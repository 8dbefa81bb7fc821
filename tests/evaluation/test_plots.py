from __future__ import annotations

import io

from matplotlib.figure import Figure

from recsys_core.evaluation.plots import report_plots

REPORT = {
    "dataset": "synthetic", "protocol": "stratified", "k": 10,
    "models": {"fused": {"ndcg@10": 0.3, "precision@10": 0.1, "coverage@10": 0.5},
               "als": {"ndcg@10": 0.2, "precision@10": 0.08, "coverage@10": 0.4},
               "mostpop": {"ndcg@10": 0.1, "precision@10": None, "coverage@10": 0.05}},
    "segments": {"all": {"fused": {"ndcg@10": 0.3}, "als": {"ndcg@10": 0.2}},
                 "cold_items": {"fused": {"ndcg@10": 0.05}, "als": {"ndcg@10": None}},
                 "cold_users": {"fused": {"ndcg@10": 0.1}, "als": {"ndcg@10": 0.02}}},
    "fusion": {"weights": {"als": 0.7, "text": -0.1}},
}


def test_report_plots_render_every_figure() -> None:
    figures = report_plots(REPORT)
    assert set(figures) == {"per_source_metrics.png", "fusion_weights.png", "cold_vs_warm.png"}
    for figure in figures.values():
        assert isinstance(figure, Figure)
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png")
        assert buffer.getvalue().startswith(b"\x89PNG")


def test_plots_skip_what_the_report_lacks() -> None:
    bare = {"k": 5, "models": {"fused": {"ndcg@5": 0.2}}}
    assert set(report_plots(bare)) == {"per_source_metrics.png"}


def test_an_empty_report_has_no_plots() -> None:
    assert report_plots({"k": 10, "models": {}}) == {}
