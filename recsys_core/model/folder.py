"""A saved model folder's files (``HybridRecommender.save``), readable without loading it.

Servers and the CLI read a version's metadata and precomputed lists before (or instead of)
unpickling the model, whose sources import torch; so the names live here, in a light module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MODEL_FILE = "model.pkl"
META_FILE = "meta.json"


def read_meta(path: str | Path) -> dict[str, Any]:
    """The metadata ``HybridRecommender.save`` wrote beside the model ({} when absent).

    Args:
        path: the model folder.
    """
    meta = Path(path) / META_FILE
    return json.loads(meta.read_text()) if meta.exists() else {}
