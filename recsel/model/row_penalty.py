"""The L2 penalty on looked-up embedding rows, applied in the gradient only.

``l2 * mean_over_batch(sum_j x_bj ** 2)`` keeps attention identifiable: a gate cannot be
absorbed into rows that grow without bound. Added with ``add_loss``, its value cost a
square, two sums, a broadcast and one more gradient sum over the ``[batch, width]``
embeddings every step, for a number only the progress bar showed: at 40 features x 16
columns and batch 256, TensorFlow's profiler put those ops at ~1.5 ms of the gated step's
~13 ms of op time, and side by side the step's CPU time fell 2-5% without them (its wall
time moved within noise; ``benchmarks/results/cost_probes/README.md``, c16).
``penalise_rows`` adds the penalty's gradient on the way back instead, built op for op as
autodiff built it, so trained weights are unchanged to the bit; the loss Keras reports is
then the data loss alone.
"""

from __future__ import annotations

import tensorflow as tf


def penalise_rows(embedded: tf.Tensor, l2: float) -> tf.Tensor:
    """``embedded`` unchanged; its gradient gains that of ``l2 * mean_b(sum_j x_bj ** 2)``.

    The added gradient is ``((scale * l2) / batch) * (2 * x)``: the chain autodiff forms
    for the loss term, with ``scale`` the ``1 / replicas`` factor tf_keras applies to
    every loss under a ``tf.distribute`` strategy (1 without one; then it is skipped, as
    tf_keras skips it). The ops are autodiff's, in its order, so the result is the same
    float at any batch size (``tests/test_row_penalty.py``: batches 256, 100 and 1).

    Args:
        embedded: Looked-up rows, ``[batch, width]``.
        l2: The penalty's weight; 0 or less returns ``embedded`` as it is.

    Returns:
        ``embedded`` (a new tensor with the same values).

    Example:
        >>> rows = penalise_rows(tf.gather(table, ids), l2=1e-4)
        >>> # gradient of sum(rows * v): v + (1e-4 / batch) * 2 * rows
    """
    if l2 <= 0:
        return embedded

    @tf.custom_gradient
    def penalised(x: tf.Tensor):
        def gradient(upstream: tf.Tensor) -> tf.Tensor:
            weight = tf.constant(l2, x.dtype)
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
            if replicas > 1:  # tf_keras' scale_loss_for_distribution
                weight = tf.constant(1.0 / replicas, x.dtype) * weight
            per_row = weight / tf.cast(tf.shape(x)[0], x.dtype)
            return upstream + per_row * (x * tf.constant(2.0, x.dtype))

        return tf.identity(x), gradient

    return penalised(embedded)
