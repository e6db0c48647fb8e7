"""recsel: choose features and embedding widths for rankers with Sequential Attention."""

# ruff: noqa: E402  (the environment must be pinned before TensorFlow loads)

from recsel import quiet

quiet.install()  # before TensorFlow loads: its C++ log level is read once, at load

from recsel._env import ensure_legacy_keras

ensure_legacy_keras()

from recsel._env import skip_autograph_for_keras2
from recsel.model.layer import PrunedEmbedding, SequentialAttentionEmbedding
from recsel.selection.driver import select
from recsel.sequential_attention import SequentialAttention
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet, FeatureSpec
from recsel.spec.result import SelectionResult
from recsel.version import __version__

skip_autograph_for_keras2()

__all__ = [
    "FeatureSet",
    "FeatureSpec",
    "PrunedEmbedding",
    "SequentialAttention",
    "SequentialAttentionEmbedding",
    "SelectionConfig",
    "SelectionResult",
    "select",
    "__version__",
]
