"""select() under MirroredStrategy on 2 logical CPUs; prints each replica's selection state.

Run as a subprocess: logical devices must be configured before TensorFlow initialises.
"""

import json
import sys

import tensorflow as tf

import recsel  # noqa: F401  (pins Keras 2 first)

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from recsel.data.synthetic import make_synthetic  # noqa: E402
from recsel.inputs.inference import infer_feature_set  # noqa: E402
from recsel.inputs.splits import split_frame  # noqa: E402
from recsel.inputs.tabular import validate_frame  # noqa: E402
from recsel.selection import driver as selection  # noqa: E402
from recsel.spec.config import SelectionConfig  # noqa: E402

trainers = []


class RecordingTrainer(selection.SelectionTrainer):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        trainers.append(self)


selection.SelectionTrainer = RecordingTrainer
data = make_synthetic(n_rows=6000, n_informative=4, n_duplicates=2, n_noise=6, n_traps=0, seed=0)
train, valid = split_frame(data.frame, 0.2, seed=0)
features = infer_feature_set(train, data.label, embedding_dim=16)
train = validate_frame(train, features, data.label)
valid = validate_frame(valid, features, data.label)
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = SelectionConfig(num_features=4, batch_size=128, seed=0)
result = selection.select(train, valid, features, config, progress=False, strategy=strategy)
attention = trainers[0].layer.feature_attention
chunks = trainers[0].layer.chunk_attention


def per_replica(variable):
    return [v.numpy().tolist() for v in variable.values]


json.dump(
    {
        "num_replicas": strategy.num_replicas_in_sync,
        "selected": result.selected,
        "dims": result.dims,
        "feature_selected": per_replica(attention.selected),
        "feature_order": per_replica(attention.order),
        "feature_logits": per_replica(attention.logits),
        "chunk_selected": per_replica(chunks.selected),
    },
    sys.stdout,
)
