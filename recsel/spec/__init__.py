"""What a selection is about: candidates, the configuration, the result, and width arithmetic.

The bottom layer: it imports nothing else of recsel except ``atomic``.
"""

from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.result import RoundRecord, SelectionResult
from recsel.spec.widths import check_widths, embedding_bytes, target_width

__all__ = [
    "FeatureSet",
    "FeatureSpec",
    "RoundRecord",
    "SelectionConfig",
    "SelectionResult",
    "check_widths",
    "embedding_bytes",
    "target_width",
]
