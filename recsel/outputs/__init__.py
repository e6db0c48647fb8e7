"""What a selection leaves behind: the pruned schema, the embedding config, JSON and a report."""

from recsel.outputs.embedding_config import (
    read_embedding_config,
    to_keras_rs_config,
    to_tpu_feature_configs,
    write_embedding_config,
)
from recsel.outputs.report import write_report
from recsel.outputs.write import find_selections, kept_features, write_outputs

__all__ = [
    "find_selections",
    "kept_features",
    "read_embedding_config",
    "to_keras_rs_config",
    "to_tpu_feature_configs",
    "write_embedding_config",
    "write_outputs",
    "write_report",
]
