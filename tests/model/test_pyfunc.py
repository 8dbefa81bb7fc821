from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys_core.data.vocab import Vocabulary
from recsys_core.fusion.weighted import FusionConfig, WeightedFusion
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.pyfunc import (
    MAX_K,
    OUTPUT_COLUMNS,
    HybridPyfunc,
    RequestError,
    recommend_frame,
    signature,
)
from recsys_core.model.serving import ServedModel
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
    with pytest.raises(RequestError, match="none of the fields 'user_id', 'recent_items'"):
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
    assert all(item in model.items for item in example["recent_items"].iloc[1])
    assert sig.inputs.input_names() == ["user_id", "recent_items", "query", "k"]
    assert not any(spec.required for spec in sig.inputs.inputs)  # a row needs one of them
    assert sig.outputs.input_names() == OUTPUT_COLUMNS
    out = recommend_frame(model, example)
    assert out["request"].tolist() == [0] * 10 + [1] * 10


def test_output_has_request_position_and_contributions(model: HybridRecommender) -> None:
    out = recommend_frame(model, pd.DataFrame({"user_id": ["u2"], "k": [2]}))
    assert out["request"].tolist() == [0, 0]
    recs = model.recommend("u2", 2)
    assert out["contributions"].tolist() == [r.contributions for r in recs]
    assert set(out["contributions"].iloc[0]) == {"a"}


def test_recent_items_and_query_rows(model: HybridRecommender) -> None:
    requests = pd.DataFrame({
        "user_id": pd.Series([None, "u1", None], dtype=object),
        "recent_items": pd.Series([["i1", "i2"], None, np.array(["i3"])], dtype=object),
        "k": [2, 3, 1]})
    out = recommend_frame(model, requests)
    assert out["request"].tolist() == [0, 0, 1, 1, 1, 2]
    assert out["user_id"].tolist() == ["", "", "u1", "u1", "u1", ""]
    # FixedScorer cannot fold in: the recent-items rows get popular items, flagged
    assert out[out.request != 1]["fallback"].all()
    assert "i1" not in out[out.request == 0]["item_id"].tolist()


def test_query_row_goes_to_the_text_path(model: HybridRecommender) -> None:
    with pytest.raises(RequestError, match=r"row 0: this model has no item embeddings"):
        recommend_frame(model, pd.DataFrame({"query": ["camping"], "k": [3]}))


@pytest.mark.parametrize(("row", "message"), [
    ({"user_id": ["u1"]}, r"row 0: field 'user_id' must be a string"),
    ({"user_id": {"a": 1}}, r"row 0: field 'user_id' must be a string"),
    ({"user_id": 1.5}, r"row 0: field 'user_id' must be a string"),
    ({"recent_items": "i1,i2"}, r"row 0: field 'recent_items' must be a list"),
    ({"recent_items": ["i1", 2.5]}, r"row 0: field 'recent_items' must hold"),
    ({"recent_items": ["i1", ""]}, r"row 0: field 'recent_items' must hold"),
    ({"recent_items": ["i1"] * 1001}, r"row 0: field 'recent_items' holds 1001"),
    ({"query": 3}, r"row 0: field 'query' must be a string"),
    ({"query": "  "}, r"row 0: field 'query' is empty"),
    ({"query": "x" * 3000}, r"row 0: field 'query' is longer"),
    ({"query": "camping", "user_id": "u1"}, r"row 0: give either 'query' or"),
    ({"query": "camping", "recent_items": ["i1"]}, r"row 0: give either 'query' or"),
])
def test_bad_fields_name_row_and_field(model: HybridRecommender, row: dict, message: str
                                       ) -> None:
    requests = pd.DataFrame({name: pd.Series([value], dtype=object)
                             for name, value in row.items()})
    with pytest.raises(RequestError, match=message):
        recommend_frame(model, requests)


def test_a_frame_with_only_k_asks_for_nothing(model: HybridRecommender) -> None:
    with pytest.raises(RequestError, match="none of the fields 'user_id'"):
        recommend_frame(model, pd.DataFrame({"k": [3]}))


def test_empty_request_frame_answers_nothing(model: HybridRecommender) -> None:
    out = recommend_frame(model, pd.DataFrame({"user_id": pd.Series([], dtype=object)}))
    assert out.empty and list(out.columns) == OUTPUT_COLUMNS


def test_pyfunc_turns_request_errors_into_invalid_parameter(model: HybridRecommender) -> None:
    from mlflow.exceptions import MlflowException

    wrapper = HybridPyfunc()
    wrapper.served = ServedModel(".", model=model)  # no precomputed lists: scored online
    with pytest.raises(MlflowException, match=r"row 0: field 'k'") as caught:
        wrapper.predict(None, pd.DataFrame({"user_id": ["u1"], "k": [0]}))
    assert caught.value.get_http_status_code() == 400
    assert len(wrapper.predict(None, pd.DataFrame({"user_id": ["u1"], "k": [2]}))) == 2
