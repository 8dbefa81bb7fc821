"""Deep sources over text embeddings: text similarity, content projector, graph, user encoder."""

from recsys_core.deep.projector import ContentProjector, ContentProjectorConfig
from recsys_core.deep.text_similarity import TextSimilarity, TextSimilarityConfig
from recsys_core.deep.user_encoder import UserEncoder, UserEncoderConfig
from recsys_core.deep.user_history import UserHistory, UserHistoryConfig

__all__ = [
    "ContentProjector",
    "ContentProjectorConfig",
    "TextSimilarity",
    "TextSimilarityConfig",
    "UserEncoder",
    "UserEncoderConfig",
    "UserHistory",
    "UserHistoryConfig",
]
