"""Attention-trajectory points recorded inside the compiled training loop.

Private to ``recsel.selection.trainer``, as is ``write_summaries`` (TensorBoard's copy
of each point). The trajectory holds the feature gates every ``log_every`` steps. Read
from Python, each point had to end a compiled chunk: ten steps per ``tf.function`` call
instead of a hundred, and a host round trip each time.
``TrajectoryBuffer`` writes the points into variables from inside the loop instead; the
trainer drains them once per chunk. The points are the same (the same steps, the gates
computed from the same variables just after the step), so the trajectory is unchanged.

Example:
    >>> buffer = TrajectoryBuffer(layer.feature_attention, capacity=100)
    >>> train = multi_step_train_function(model, after_step=buffer.after_step)
    >>> buffer.start(every=10); train(iterator, tf.constant(100))
    >>> points = buffer.drain()  # [(step, weights), ...]
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import tensorflow as tf

from recsel.sequential_attention import SequentialAttention

if TYPE_CHECKING:
    from recsel.model.layer import SequentialAttentionEmbedding


class TrajectoryBuffer:
    """Gate values at every ``every``-th step of one compiled call.

    Args:
        attention: The feature-level attention whose ``attention_weights()`` are recorded.
        capacity: Most points one call may record (its most steps).
    """

    def __init__(self, attention: SequentialAttention, capacity: int):
        self.attention = attention
        n = attention.num_candidates
        self.every = tf.Variable(tf.constant(1, tf.int64), trainable=False, name="trace_every")
        self.rows = tf.Variable(tf.zeros([capacity, n]), trainable=False, name="trace_rows")
        self.steps = tf.Variable(
            tf.zeros([capacity], tf.int64), trainable=False, name="trace_steps"
        )
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False, name="trace_count")

    def after_step(self) -> tf.Tensor:
        """In-graph, after a training step: records the gates if the step is due."""
        step = self.attention.step

        def write() -> tf.Tensor:
            at = tf.reshape(self.count, [1])
            writes = [
                self.rows.scatter_update(
                    tf.IndexedSlices(self.attention.attention_weights()[None], at)
                ),
                self.steps.scatter_update(tf.IndexedSlices(tf.reshape(step, [1]), at)),
            ]
            with tf.control_dependencies(writes):
                return self.count.assign_add(1)

        due = tf.equal(step % self.every, 0)
        return tf.cond(due, write, lambda: tf.identity(self.count))

    def start(self, every: int) -> None:
        """Empties the buffer before a call that records every ``every`` steps."""
        self.every.assign(int(every))
        self.count.assign(0)

    def drain(self) -> list[tuple[int, np.ndarray]]:
        """The points of the last call, in step order."""
        count = int(self.count.numpy())
        if not count:
            return []
        return list(zip(self.steps.numpy()[:count].tolist(), self.rows.numpy()[:count]))


def write_summaries(
    writer: tf.summary.SummaryWriter,
    layer: SequentialAttentionEmbedding,
    step: int,
    weights: np.ndarray,
) -> None:
    """Writes one trajectory point to TensorBoard: selection counts and every feature's gate.

    Args:
        writer: A ``tf.summary`` file writer.
        layer: The ``SequentialAttentionEmbedding`` being trained.
        step: The global step of the point.
        weights: The feature gates at that step, in ``layer.features`` order.
    """
    with writer.as_default(step=step):
        tf.summary.scalar("selection/num_selected_features", len(layer.selected_features()))
        tf.summary.scalar(
            "selection/num_selected_chunks", len(layer.chunk_attention.selected_indices())
        )
        tf.summary.histogram("attention/feature_weights", weights)
        for name, value in zip(layer.features.names, weights):
            tf.summary.scalar(f"attention/{name}", float(value))
    writer.flush()
