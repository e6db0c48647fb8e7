"""Custom selection towers used by the tests (loaded by spec, as a user's would be)."""

import tf_keras


def build_tower():
    """Dense-first: pruning can drop the first kernel's rows."""
    return tf_keras.Sequential(
        [
            tf_keras.layers.Dense(24, activation="relu"),
            tf_keras.layers.Dense(12, activation="tanh"),
            tf_keras.layers.Dense(1),
        ]
    )


def build_normalised_tower(input_width):
    """Not Dense-first (a batch norm reads the embedding), and takes the width."""
    inputs = tf_keras.Input(shape=(input_width,))
    hidden = tf_keras.layers.BatchNormalization()(inputs)
    hidden = tf_keras.layers.Dense(16, activation="relu")(hidden)
    return tf_keras.Model(inputs, tf_keras.layers.Dense(1)(hidden))


def build_two_logits():
    """Wrong: two outputs per example."""
    return tf_keras.Sequential([tf_keras.layers.Dense(2)])


def build_not_a_layer():
    """Wrong: not a Keras layer."""
    return "dense"
