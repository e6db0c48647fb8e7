"""One worker of a 2-worker MultiWorkerMirroredStrategy selection (TF_CONFIG on loopback).

Usage: multi_worker_select.py SHARD_DIR VALID_FILE FEATURES_JSON. Each worker streams its
own training shards and prints its selection as JSON.
"""

import json
import sys

import tensorflow as tf

import recsel  # noqa: F401  (pins Keras 2 first)

strategy = tf.distribute.MultiWorkerMirroredStrategy()  # before any other TF op

from recsel.inputs import FileStream, StreamOptions  # noqa: E402
from recsel.selection.driver import select  # noqa: E402
from recsel.spec.config import SelectionConfig  # noqa: E402
from recsel.spec.features import FeatureSet  # noqa: E402

shard_dir, valid_file, features_json, train_rows = sys.argv[1:5]
features = FeatureSet.from_json(features_json)
task = strategy.cluster_resolver.task_id
train = FileStream(
    f"{shard_dir}/*.tfrecord",
    features,
    StreamOptions(128, shuffle_buffer=512, seed=1, num_workers=2, worker_index=task),
    features.label,
    num_rows=int(train_rows),
)
valid = FileStream(valid_file, features, StreamOptions(1024, shuffle_buffer=0), features.label)
config = SelectionConfig(num_features=3, batch_size=128, seed=0)
result = select(train, valid, features, config, progress=False, strategy=strategy)
print(json.dumps({"task": task, "selected": result.selected, "dims": result.dims}))
