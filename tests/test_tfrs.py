"""The gated layer inside a tensorflow-recommenders ranking model."""

import numpy as np
import tensorflow as tf
import tensorflow_recommenders as tfrs
import tf_keras

from recsel.data.synthetic import make_synthetic
from recsel.inputs.frame_dataset import to_dataset
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import SequentialAttentionEmbedding


class GatedRankingModel(tfrs.models.Model):
    """A custom TFRS ranker: recsel's gated embeddings feeding a DNN and a Ranking task."""

    def __init__(self, features):
        super().__init__()
        self.embedding = SequentialAttentionEmbedding(features, chunk_size=8)
        self.tower = tf_keras.Sequential(
            [tf_keras.layers.Dense(32, activation="relu"), tf_keras.layers.Dense(1)]
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


def test_tfrs_ranking_model_trains_and_selects():
    assert tf.keras.layers.Dense is tf_keras.layers.Dense, (
        "tf.keras must be Keras 2 (tf_keras) for TFRS"
    )
    data = make_synthetic(
        n_rows=6000, n_informative=3, n_duplicates=1, n_noise=4, n_traps=0, seed=0
    )
    features = infer_feature_set(data.frame, data.label, embedding_dim=16)
    frame = validate_frame(data.frame, features, data.label)
    tf_keras.utils.set_random_seed(0)
    model = GatedRankingModel(features)
    model.embedding.schedule_selection(num_features=3, num_chunks=2, num_steps=6000 // 64)
    model.compile(optimizer=tf_keras.optimizers.Adam(1e-2))
    history = model.fit(
        to_dataset(frame, features, data.label, 64, shuffle=True), epochs=1, verbose=0
    )
    assert np.isfinite(history.history["loss"][-1])
    assert history.history["auc"][-1] > 0.6
    selected = model.embedding.selected_features()
    assert len(selected) == 3 and len(set(selected)) == 3
    group_of = {c: g for g, members in data.groups().items() for c in members}
    assert len({group_of.get(s, s) for s in selected if s in group_of}) >= 2
