"""The row penalty's gradient is the loss term's, to the bit, for any batch size."""

import numpy as np
import pytest
import tensorflow as tf

from recsel.model.row_penalty import penalise_rows


def _gradients(rows: tf.Tensor, upstream: tf.Tensor, l2: float) -> tuple[np.ndarray, np.ndarray]:
    with tf.GradientTape() as tape:
        tape.watch(rows)
        as_loss = tf.reduce_sum(rows * upstream)
        as_loss += l2 * tf.reduce_mean(tf.reduce_sum(tf.square(rows), axis=1))
    expected = tape.gradient(as_loss, rows)
    with tf.GradientTape() as tape:
        tape.watch(rows)
        penalised = penalise_rows(rows, l2)
        loss = tf.reduce_sum(penalised * upstream)
    return tape.gradient(loss, rows).numpy(), expected.numpy()


@pytest.mark.parametrize("batch", [256, 100, 1])
@pytest.mark.parametrize("l2", [1e-4, 3e-2])
def test_gradient_matches_the_loss_term_bit_for_bit(batch, l2):
    rows = tf.random.stateless_normal([batch, 40], seed=[batch, 1])
    upstream = tf.random.stateless_normal([batch, 40], seed=[batch, 2]) * 1e-3
    got, expected = _gradients(rows, upstream, l2)
    assert np.any(got != upstream.numpy())  # the penalty did add something
    np.testing.assert_array_equal(got, expected)


def test_values_pass_through_and_no_penalty_is_a_no_op():
    rows = tf.random.stateless_normal([8, 5], seed=[0, 0])
    np.testing.assert_array_equal(penalise_rows(rows, 1e-3).numpy(), rows.numpy())
    assert penalise_rows(rows, 0.0) is rows
