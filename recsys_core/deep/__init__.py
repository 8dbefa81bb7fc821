"""Deep sources over text embeddings: text similarity, content projector, user encoder."""

from recsys_core.deep.projector import ContentProjector, ContentProjectorConfig
from recsys_core.deep.text_similarity import TextSimilarity, TextSimilarityConfig
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig

__all__ = [
    "ContentProjector",
    "ContentProjectorConfig",
    "TextSimilarity",
    "TextSimilarityConfig",
    "UserEncoder",
    "UserEncoderConfig",
]
