from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.vocab import Vocabulary
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.pyfunc import MAX_K, OUTPUT_COLUMNS, RequestError, recommend_frame, signature
from tests.fusion.helpers import FixedScorer, make_data, random_pairs

N_USERS, N_ITEMS = 6, 20


@pytest.fixture(scope="module")
def model() -> HybridRecommender:
    data = make_data(N_USERS, N_ITEMS, random_pairs(N_USERS, N_ITEMS, 3, seed=2), titles=True)
    values = np.random.default_rng(4).normal(size=(N_USERS, N_ITEMS))
    fusion = WeightedFusion(FusionConfig(weights={"a": 1.0}), {"a": FixedScorer(values)})
    return HybridRecommender(fusion.train(data), data)


def test_answers_every_row_like_recommend(model: HybridRecommender) -> None:
    out = recommend_frame(model, pd.DataFrame({"user_id": ["u1", "stranger", "u1"],
                                               "k": [3, 2, 1]}))
    assert list(out.columns) == OUTPUT_COLUMNS
    assert len(out) == 3 + 2 + 1
    first = out.iloc[:3]
    expected = model.recommend("u1", 3)
    assert first["item_id"].tolist() == [r.item_id for r in expected]
    assert first["rank"].tolist() == [1, 2, 3]
    assert first["score"].tolist() == pytest.approx([r.score for r in expected])
    assert first["title"].tolist() == [r.title for r in expected]
    assert not first["fallback"].any()
    assert out.iloc[3:5]["fallback"].all() and (out.iloc[3:5]["user_id"] == "stranger").all()


def test_k_defaults_to_ten_when_absent_or_null(model: HybridRecommender) -> None:
    assert len(recommend_frame(model, pd.DataFrame({"user_id": ["u0"]}))) == 10
    out = recommend_frame(model, pd.DataFrame({"user_id": ["u0", "u2"], "k": [np.nan, 2]}))
    assert (out["user_id"] == "u0").sum() == 10 and (out["user_id"] == "u2").sum() == 2


def test_integral_float_k_accepted(model: HybridRecommender) -> None:
    out = recommend_frame(model, pd.DataFrame({"user_id": ["u0"], "k": [4.0]}))
    assert len(out) == 4


@pytest.mark.parametrize("bad", [0, -5, 10**6, MAX_K + 1, 2.5, True, False, "abc", [3],
                                 float("inf"), np.bool_(True)])
def test_bad_k_names_row_and_field(model: HybridRecommender, bad: object) -> None:
    requests = pd.DataFrame({"user_id": ["u0", "u1"], "k": pd.Series([3, bad], dtype=object)})
    with pytest.raises(RequestError, match=r"row 1: field 'k'"):
        recommend_frame(model, requests)


def test_missing_user_id_column(model: HybridRecommender) -> None:
    with pytest.raises(RequestError, match="'user_id'"):
        recommend_frame(model, pd.DataFrame({"user": ["u0"], "k": [3]}))


@pytest.mark.parametrize("empty", [None, np.nan, "", "   "])
def test_empty_user_names_row_and_field(model: HybridRecommender, empty: object) -> None:
    requests = pd.DataFrame({"user_id": pd.Series(["u0", "u1", empty], dtype=object),
                             "k": [2, 2, 2]})
    with pytest.raises(RequestError, match=r"row 2: field 'user_id' is empty"):
        recommend_frame(model, requests)


def test_request_error_is_a_value_error() -> None:
    assert issubclass(RequestError, ValueError)


def test_non_string_user_ids_are_looked_up_as_strings() -> None:
    data = make_data(3, 5, [(0, 1), (1, 2), (2, 3)])
    data = type(data)(data.matrix, Vocabulary([101, 102, 103]), data.items)
    fusion = WeightedFusion(FusionConfig(weights={"a": 1.0}),
                            {"a": FixedScorer(np.arange(15.0).reshape(3, 5))}).train(data)
    model = HybridRecommender(fusion, data)
    out = recommend_frame(model, pd.DataFrame({"user_id": [102], "k": [2]}))
    assert out["item_id"].tolist() == ["i4", "i3"]  # i2 is seen by user 102
    assert out["user_id"].tolist() == ["102", "102"] and not out["fallback"].any()


def test_signature_describes_request_and_response(model: HybridRecommender) -> None:
    sig, example = signature(model)
    assert example["user_id"].iloc[0] in model.users
    assert sig.inputs.input_names() == ["user_id", "k"]
    required = {spec.name: spec.required for spec in sig.inputs.inputs}
    assert required == {"user_id": True, "k": False}  # k defaults to 10
    assert sig.outputs.input_names() == OUTPUT_COLUMNS
