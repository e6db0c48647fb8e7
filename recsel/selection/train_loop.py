"""The compiled training loop: many Keras train steps in one ``tf.function`` call.

Python round trips per step cost more than a small ranker's step, so the selection
trainer (``recsel.selection.trainer``) runs its steps in calls of up to
``MAX_STEPS_PER_CALL``; the selection events stay at their exact steps because they
are in-graph (``recsel.sequential_attention``). Benchmarks time their plain fits with
the same loop, so both sides pay the same per-call cost.
"""

from __future__ import annotations

from collections.abc import Callable

import tensorflow as tf
import tf_keras

# Most training steps in one compiled call (fewer Python round trips per step).
MAX_STEPS_PER_CALL = 100


def multi_step_train_function(
    model: tf_keras.Model, after_step: Callable[[], tf.Tensor] | None = None
) -> Callable:
    """``train(iterator, steps)``: ``steps`` Keras train steps in one ``tf.function`` call.

    The steps are those of ``model.make_train_function()`` (``train_step`` on the next
    batch, then the train counter), in a ``tf.while_loop``, so ``train_step`` is traced
    once. Keras' own multi-step function loops with autograph over
    ``tf.range(steps_per_execution)``, which traces the step twice (once to find the loop
    variables, once for the loop); for the gated ranker that was about 3 s of each run.

    Args:
        model: A compiled model.
        after_step: Builds in-graph work to run after each step (e.g.
            ``TrajectoryBuffer.after_step``); it returns a tensor to order the next step by.

    Returns:
        The function; it returns the model's metric results (the running mean loss)
        after the last step.

    Example:
        >>> train = multi_step_train_function(model)
        >>> logs = train(iterator, tf.constant(100))
    """

    def run_step(data):
        outputs = model.train_step(data)
        with tf.control_dependencies(tf.nest.flatten(outputs)[:1]):  # only after a good step
            return model._train_counter.assign_add(1)

    @tf.function(reduce_retracing=True)
    def train(iterator, steps: tf.Tensor):
        def body(i: tf.Tensor) -> tf.Tensor:
            done = [model.distribute_strategy.run(run_step, args=(next(iterator),))]
            if after_step is not None:
                with tf.control_dependencies(done):
                    done = [after_step()]
            with tf.control_dependencies(done):  # the next step starts after this one
                return i + 1

        tf.while_loop(lambda i: i < steps, body, [tf.constant(0)])
        return model.get_metrics_result()

    return train
