"""The gated embedding layer, its fused tables, towers, the ranker and SavedModel export."""

from recsel.model.layer import SequentialAttentionEmbedding
from recsel.model.ranker import Ranker, is_pruned, prune_ranker
from recsel.model.serving import export_saved_model, load_serving_fn
from recsel.model.tables import PrunedEmbedding
from recsel.model.tower import build_tower, resolve_tower

__all__ = [
    "PrunedEmbedding",
    "Ranker",
    "SequentialAttentionEmbedding",
    "build_tower",
    "export_saved_model",
    "is_pruned",
    "load_serving_fn",
    "prune_ranker",
    "resolve_tower",
]
