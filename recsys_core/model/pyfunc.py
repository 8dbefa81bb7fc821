"""MLflow pyfunc wrapper: request rows (user, recent items or text query, k) -> top-k rows.

It answers as ``ServedModel`` does: known users from the version's precomputed lists, fresh
events (``RECSYS_HOME/events``) folded in. Under ``mlflow models serve`` a bad request row
becomes an ``MlflowException`` with ``INVALID_PARAMETER_VALUE``, which MLflow's scoring server
answers with HTTP 400 and the message (naming the row and field).
"""

from __future__ import annotations

import warnings

import pandas as pd
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature
from mlflow.models.signature import ModelSignature
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE
from mlflow.pyfunc import PythonModel, PythonModelContext
from mlflow.types.schema import Array, ColSpec, Schema

from recsys_core.config import get_settings
from recsys_core.model.hybrid import HybridRecommender
from recsys_core.model.requests import (
    MAX_K,
    OUTPUT_COLUMNS,
    RequestError,
    recommend_frame,
)
from recsys_core.model.serving import ServedModel

ARTIFACT_KEY = "model_dir"

__all__ = ["ARTIFACT_KEY", "MAX_K", "OUTPUT_COLUMNS", "HybridPyfunc", "RequestError",
           "input_schema", "recommend_frame", "signature"]


class HybridPyfunc(PythonModel):
    """Serves a saved ``HybridRecommender`` through MLflow."""

    def load_context(self, context: PythonModelContext) -> None:
        """Load the recommender from the logged model folder; follow the fresh events."""
        settings = get_settings()
        self.served = ServedModel.open(context.artifacts[ARTIFACT_KEY], settings.events_dir,
                                       settings.events_poll_s)
        self.model: HybridRecommender = self.served.model

    def predict(self, context: PythonModelContext, model_input: pd.DataFrame,
                params: dict | None = None) -> pd.DataFrame:
        """One output row per recommended item, for every request row.

        Args:
            context: MLflow context (unused after loading).
            model_input: columns among ``user_id``, ``recent_items``, ``query`` and ``k``
                (see ``recsys_core.model.requests``).
            params: unused.

        Raises:
            MlflowException: ``INVALID_PARAMETER_VALUE`` (HTTP 400) for a bad request row.
        """
        try:
            return recommend_frame(self.served, model_input)
        except RequestError as error:
            raise MlflowException(str(error), error_code=INVALID_PARAMETER_VALUE) from error


def input_schema() -> Schema:
    """The request schema: every field optional; a row needs a user, items or a query.

    ``k`` is a long: in-process callers pass integers, and MLflow refuses to cast int64 to a
    declared double. Over HTTP MLflow's parser casts JSON numbers to the declared type
    before the model sees them, so a null ``k`` is refused there (give none, or a number)
    and a fractional one is truncated.
    """
    return Schema([
        ColSpec("string", "user_id", required=False),
        ColSpec(Array("string"), "recent_items", required=False),
        ColSpec("string", "query", required=False),
        ColSpec("long", "k", required=False),
    ])


def signature(model: HybridRecommender) -> tuple[ModelSignature, pd.DataFrame]:
    """Return the pyfunc signature and an input example built from real IDs of ``model``.

    The example asks for a known user's top 10 and for a fold-in over two items.

    Args:
        model: the recommender to describe.
    """
    users, items = model.users.ids, model.items.ids
    example = pd.DataFrame({"user_id": [str(users[0]), None],
                            "recent_items": [None, [str(i) for i in items[:2]]],
                            "k": [10, 10]})
    with warnings.catch_warnings():  # outputs are documented, not enforced: ints are fine
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        outputs = infer_signature(example, recommend_frame(model, example)).outputs
    return ModelSignature(inputs=input_schema(), outputs=outputs), example
