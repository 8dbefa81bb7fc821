"""MLflow pyfunc wrapper: a request row (user_id, k) -> that user's top-k rows."""

from __future__ import annotations

import numpy as np
import pandas as pd
from mlflow.models import infer_signature
from mlflow.models.signature import ModelSignature
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import ColSpec, Schema

from recsys_core.model.hybrid import HybridRecommender

ARTIFACT_KEY = "model_dir"
OUTPUT_COLUMNS = ["user_id", "rank", "item_id", "title", "score", "fallback"]
MAX_K = 1000


class RequestError(ValueError):
    """A request row that cannot be answered; the message names the row and field."""


class HybridPyfunc(PythonModel):
    """Serves a saved ``HybridRecommender`` through MLflow."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the recommender from the logged model folder."""
        self.model = HybridRecommender.load(context.artifacts[ARTIFACT_KEY])

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        """One output row per recommended item, for every request row.

        Args:
            context: MLflow context (unused after loading).
            model_input: columns ``user_id`` (str) and optional ``k`` (int, default 10).
            params: unused.
        """
        return recommend_frame(self.model, model_input)


def recommend_frame(model: HybridRecommender, requests: pd.DataFrame) -> pd.DataFrame:
    """Answer a frame of requests; raises ``RequestError`` naming the bad row and field.

    Args:
        model: the recommender.
        requests: columns ``user_id`` and optional ``k``.
    """
    if "user_id" not in requests.columns:
        raise RequestError("request is missing the field 'user_id'")
    rows = []
    for position, request in enumerate(requests.to_dict("records")):
        k = request.get("k", 10)
        if k is None or pd.isna(k):
            k = 10
        if not _valid_k(k):
            raise RequestError(f"row {position}: field 'k' must be an integer in 1..{MAX_K}, "
                               f"got {k!r}")
        user = request["user_id"]
        if (user is None or (isinstance(user, float) and pd.isna(user))
                or (isinstance(user, str) and not user.strip())):
            raise RequestError(f"row {position}: field 'user_id' is empty")
        for rank, rec in enumerate(model.recommend(str(user), int(k)), start=1):
            rows.append([str(user), rank, rec.item_id, rec.title, rec.score, rec.fallback])
    return pd.DataFrame(rows, columns=OUTPUT_COLUMNS)


def _valid_k(k: object) -> bool:
    """Whether ``k`` is an integral number (not a bool) in 1..MAX_K."""
    if isinstance(k, bool | np.bool_):
        return False
    try:
        value = float(k)
    except (TypeError, ValueError):
        return False
    return value.is_integer() and 1 <= value <= MAX_K


def signature(model: HybridRecommender) -> tuple[ModelSignature, pd.DataFrame]:
    """Return the pyfunc signature and an input example built from a real user of ``model``.

    Args:
        model: the recommender to describe.
    """
    example = pd.DataFrame({"user_id": [str(model.users.ids[0])], "k": [10]})
    outputs = infer_signature(example, recommend_frame(model, example)).outputs
    # k is optional (default 10): an inferred schema would make it required.
    inputs = Schema([ColSpec("string", "user_id"), ColSpec("long", "k", required=False)])
    return ModelSignature(inputs=inputs, outputs=outputs), example
