"""Trains the gated layer under MirroredStrategy on 2 logical CPUs; prints each replica's selection.

Run as a subprocess: logical devices must be configured before TensorFlow initialises.
"""

import json
import sys

import tensorflow as tf
import tf_keras

import recsel  # noqa: F401  (pins Keras 2 first)

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from recsel.data.synthetic import make_synthetic  # noqa: E402
from recsel.inputs.frame_dataset import to_dataset  # noqa: E402
from recsel.inputs.inference import infer_feature_set  # noqa: E402
from recsel.inputs.tabular import validate_frame  # noqa: E402
from recsel.model.layer import SequentialAttentionEmbedding  # noqa: E402
from recsel.model.ranker import Ranker  # noqa: E402

data = make_synthetic(n_rows=4096, n_informative=4, n_duplicates=2, n_noise=6, n_traps=0, seed=0)
features = infer_feature_set(data.frame, data.label, embedding_dim=16)
frame = validate_frame(data.frame, features, data.label)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
tf_keras.utils.set_random_seed(0)
with strategy.scope():
    layer = SequentialAttentionEmbedding(features, chunk_size=8)
    model = Ranker(layer, (16,))
    model.compile(
        tf_keras.optimizers.Adam(1e-2), tf_keras.losses.BinaryCrossentropy(from_logits=True)
    )
steps = 4096 // 128
layer.schedule_selection(num_features=4, num_chunks=2, num_steps=steps, warmup_fraction=0.1)
model.fit(to_dataset(frame, features, data.label, 128, shuffle=True), epochs=1, verbose=0)


def per_replica(variable):
    return [v.numpy().tolist() for v in variable.values]


out = {
    "num_replicas": strategy.num_replicas_in_sync,
    "feature_selected": per_replica(layer.feature_attention.selected),
    "feature_order": per_replica(layer.feature_attention.order),
    "feature_logits": per_replica(layer.feature_attention.logits),
    "chunk_selected": per_replica(layer.chunk_attention.selected),
    "selected_features": layer.selected_features(),
}
json.dump(out, sys.stdout)
