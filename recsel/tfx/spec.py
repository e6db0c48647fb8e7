"""Keys of the ``SequentialAttentionSelector`` component: inputs, outputs, parameters.

One module holds every key, so the component, its executor, the trainer helper and
pipelines name them the same way (the TFX ``standard_component_specs`` pattern).

Example:
    >>> selector.outputs[spec.PRUNED_SCHEMA_KEY]
"""

from __future__ import annotations

from recsel import params

COMPONENT_NAME = "SequentialAttentionSelector"

# Inputs.
EXAMPLES_KEY = "examples"
SCHEMA_KEY = "schema"
STATISTICS_KEY = "statistics"
TRANSFORM_GRAPH_KEY = "transform_graph"

# Outputs.
PRUNED_SCHEMA_KEY = "pruned_schema"
FEATURE_SELECTION_KEY = "feature_selection"

# Execution parameters of the shell (everything that is not a SelectionConfig field).
LABEL_KEY = "label_key"
TRAIN_SPLIT_KEY = "train_split"
EVAL_SPLIT_KEY = "eval_split"
EMBEDDING_DIM_KEY = "embedding_dim"
# Vocabulary frequency threshold: values the statistics count fewer times map to OOV.
VOCABULARY_MIN_COUNT_KEY = "vocabulary_min_count"
NAN_POLICY_KEY = "nan_policy"
# A custom selection tower, TFX-style: a module file (packaged into a wheel by TFX, which
# then sets module_path) or a module path, and the factory's name in it.
MODULE_FILE_KEY = "module_file"
MODULE_PATH_KEY = "module_path"
TOWER_FN_KEY = "tower_fn"

DEFAULT_TRAIN_SPLIT = "train"
DEFAULT_EVAL_SPLIT = "eval"
DEFAULT_TOWER_FN = "build_tower"
# The defaults every shell shares come from recsel.params (one declaration).
DEFAULT_EMBEDDING_DIM = params.default(EMBEDDING_DIM_KEY)
DEFAULT_VOCABULARY_MIN_COUNT = params.default(VOCABULARY_MIN_COUNT_KEY)
DEFAULT_NAN_POLICY = params.default(NAN_POLICY_KEY)

# Execution parameters passed straight to ``recsel.SelectionConfig`` (key == field name),
# with their TFX parameter types; generated from recsel.params.
CONFIG_PARAMETERS: dict[str, type] = {p.name: p.kind for p in params.on(params.TFX, params.CONFIG)}

# The other recsel.params parameters TFX exposes (key == parameter name): how the
# candidates are built and how NaNs are handled.
INPUT_PARAMETERS: dict[str, type] = {
    p.name: p.kind for p in params.on(params.TFX) if p.group != params.CONFIG
}

# Files: the pruned schema artifact holds only SCHEMA_FILE (TFX readers expect one file);
# the feature selection artifact holds the recsel output contract (recsel.outputs.write).
SCHEMA_FILE = "schema.pbtxt"

# Custom properties set on the published FeatureSelection artifact.
SELECTED_FEATURES_PROPERTY = "selected_features"
NUM_SELECTED_PROPERTY = "num_selected"
AUC_PROPERTY = "auc"
LATENCY_P50_PROPERTY = "latency_ms_p50"
TRANSFORM_GRAPH_URI_PROPERTY = "transform_graph_uri"

# Trainer side: the key under which SelectionAwareTrainer hands the FeatureSelection
# artifact's URI to run_fn (``fn_args.custom_config[FEATURE_SELECTION_URI]``).
FEATURE_SELECTION_URI = "feature_selection_uri"
