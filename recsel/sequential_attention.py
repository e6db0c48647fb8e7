"""Sequential Attention for subset selection (Yasuda et al., ICLR 2023, arXiv 2209.14881).

Greedy forward selection inside one training run. Each unselected candidate gets a
softmax attention weight over trainable logits; selected candidates weigh 1. At
scheduled steps the top-scoring unselected candidates join the selected set and the
logits are reset, so the next choice measures *marginal* value given the selected set.
On ℓ2-regularised linear regression this is Orthogonal Matching Pursuit.

This module knows nothing about features, embeddings or Keras models: candidates are
indices. All state lives in variables (trainable logits; non-trainable mask, order,
step and schedule) so a checkpoint captures it, and every state write uses
``ONLY_FIRST_REPLICA`` aggregation so all replicas of a ``tf.distribute`` strategy
hold the same selection.

Example:
    >>> sa = SequentialAttention(num_candidates=50)
    >>> sa.set_schedule(num_selections=10, num_steps=2000, warmup_fraction=0.1)
    >>> gates = sa(training=True)   # inside the model's forward pass
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

_NEVER = np.iinfo(np.int64).max
_REPLICA_SAFE = {
    "synchronization": tf.VariableSynchronization.ON_WRITE,
    "aggregation": tf.VariableAggregation.ONLY_FIRST_REPLICA,
}


def selection_steps(
    num_events: int, num_steps: int, warmup_fraction: float = 0.1, start_step: int = 0
) -> np.ndarray:
    """Spreads selection events evenly over a training segment, after a warm-up.

    Event ``i`` (1-based) happens after step ``start + warmup + i * span / num_events``,
    so every event is preceded by a phase in which the logits were trained.

    Args:
        num_events: Number of selection events.
        num_steps: Number of training steps in the segment.
        warmup_fraction: Leading fraction of the segment with no selection.
        start_step: Global step at which the segment starts.

    Returns:
        int64 array of the global step counts at which each event fires.
    """
    if num_events <= 0:
        return np.zeros([0], np.int64)
    if not 0.0 <= warmup_fraction < 1.0:
        raise ValueError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}.")
    if num_steps < num_events:
        raise ValueError(
            f"{num_events} selection events need at least as many training steps; got "
            f"{num_steps}. Train longer or select more candidates per event."
        )
    warmup = int(round(num_steps * warmup_fraction))
    span = num_steps - warmup
    events = [
        start_step + warmup + int(round(span * (i + 1) / num_events)) for i in range(num_events)
    ]
    return np.maximum.accumulate(np.asarray(events, np.int64))


class SequentialAttention(tf.Module):
    """Sequential Attention state and schedule over ``num_candidates`` candidates.

    Gate values returned by ``__call__``:

    * before ``attention_start`` (warm-up): 1 for every candidate;
    * afterwards: 1 for selected candidates, ``unselected_mass * softmax(logits)`` over
      the *pending* ones (active, unselected), and 1 for inactive ones (candidates the
      caller gates elsewhere, e.g. chunks of a feature that is itself still pending).

    At each scheduled event the ``per_event`` pending, eligible candidates with the
    highest score join the selected set, where score is the softmax weight divided by
    ``cost ** cost_exponent`` (cost = 1 gives the paper's rule). Then logits reset to 0.

    Args:
        num_candidates: Number of candidates.
        unselected_mass: Total gate mass of the pending candidates. The paper uses 1;
            larger values keep the tower fed when there are many candidates.
        logit_scale: Multiplies the logits inside the softmax. With Adam every logit
            moves about one learning rate per step, so short selection phases leave the
            weights near uniform; a scale > 1 speeds attention up without touching the
            model's learning rate. 1 is the paper's parametrisation.
        name: Module name (scopes the variables).
    """

    def __init__(
        self,
        num_candidates: int,
        unselected_mass: float = 1.0,
        logit_scale: float = 1.0,
        name: str | None = None,
    ):
        super().__init__(name=name)
        if num_candidates < 1:
            raise ValueError(f"num_candidates must be positive, got {num_candidates}.")
        self.num_candidates = int(num_candidates)
        self.unselected_mass = float(unselected_mass)
        self.logit_scale = float(logit_scale)
        n = self.num_candidates
        with self.name_scope:
            self.logits = tf.Variable(tf.zeros([n]), name="logits", **_REPLICA_SAFE)
            self.selected = tf.Variable(
                tf.zeros([n]), trainable=False, name="selected", **_REPLICA_SAFE
            )
            self.order = tf.Variable(
                tf.fill([n], tf.constant(-1, tf.int32)),
                trainable=False,
                name="order",
                **_REPLICA_SAFE,
            )
            self.num_selected = tf.Variable(
                0, dtype=tf.int32, trainable=False, name="num_selected", **_REPLICA_SAFE
            )
            self.step = tf.Variable(
                tf.constant(0, tf.int64), trainable=False, name="step", **_REPLICA_SAFE
            )
            self.schedule = tf.Variable(
                tf.fill([n], tf.constant(_NEVER, tf.int64)),
                trainable=False,
                name="schedule",
                **_REPLICA_SAFE,
            )
            self.events_done = tf.Variable(
                0, dtype=tf.int32, trainable=False, name="events_done", **_REPLICA_SAFE
            )
            self.per_event = tf.Variable(
                1, dtype=tf.int32, trainable=False, name="per_event", **_REPLICA_SAFE
            )
            self.attention_start = tf.Variable(
                tf.constant(_NEVER, tf.int64),
                trainable=False,
                name="attention_start",
                **_REPLICA_SAFE,
            )
            self.active = tf.Variable(tf.ones([n]), trainable=False, name="active", **_REPLICA_SAFE)
            self.eligible = tf.Variable(
                tf.ones([n]), trainable=False, name="eligible", **_REPLICA_SAFE
            )
            self.cost = tf.Variable(tf.ones([n]), trainable=False, name="cost", **_REPLICA_SAFE)
            self.cost_exponent = tf.Variable(
                1.0, trainable=False, name="cost_exponent", **_REPLICA_SAFE
            )

    # ----------------------------------------------------------------- schedule (eager)
    def set_schedule(
        self,
        num_selections: int,
        num_steps: int,
        warmup_fraction: float = 0.1,
        per_event: int = 1,
        start_step: int | None = None,
    ) -> None:
        """Schedules ``num_selections`` selections over the next ``num_steps`` steps.

        Args:
            num_selections: Candidates to select in this segment.
            num_steps: Training steps in the segment.
            warmup_fraction: Leading fraction without selection. In the first segment
                gates are 1 during warm-up; later segments keep attention on.
            per_event: Candidates selected per event (the paper's ``k``).
            start_step: Global step at which the segment starts; defaults to now.
        """
        pending = self.num_candidates - int(self.num_selected.numpy())
        if num_selections > pending:
            raise ValueError(
                f"Cannot select {num_selections} candidates: only {pending} of "
                f"{self.num_candidates} are still unselected."
            )
        if per_event < 1:
            raise ValueError(f"per_event must be at least 1, got {per_event}.")
        start = int(self.step.numpy()) if start_step is None else int(start_step)
        num_events = -(-num_selections // per_event)
        events = selection_steps(num_events, num_steps, warmup_fraction, start)
        schedule = np.full([self.num_candidates], _NEVER, np.int64)
        schedule[: len(events)] = events
        self.schedule.assign(schedule)
        self.events_done.assign(0)
        self.per_event.assign(per_event)
        if int(self.attention_start.numpy()) == _NEVER:
            self.attention_start.assign(start + int(round(num_steps * warmup_fraction)))

    def set_costs(self, cost: np.ndarray | None, exponent: float = 1.0) -> None:
        """Sets per-candidate marginal costs for the score ``weight / cost**exponent``."""
        values = (
            np.ones([self.num_candidates], np.float32)
            if cost is None
            else np.asarray(cost, np.float32)
        )
        if values.shape != (self.num_candidates,) or not np.all(values > 0):
            raise ValueError("cost must be a positive vector with one entry per candidate.")
        self.cost.assign(values)
        self.cost_exponent.assign(float(exponent))

    def set_eligible(self, eligible: np.ndarray) -> None:
        """Restricts which pending candidates may be selected (e.g. those that fit a budget)."""
        self.eligible.assign(np.asarray(eligible, np.float32))

    def set_active(self, active: np.ndarray) -> None:
        """Sets which candidates are attended; inactive ones pass through with gate 1."""
        self.active.assign(np.asarray(active, np.float32))

    def force_select(self, indices: list[int]) -> None:
        """Marks candidates as selected outside the schedule (e.g. on resume or by rule)."""
        for index in indices:
            if float(self.selected[index].numpy()) == 0.0:
                self.selected[index].assign(1.0)
                self.order[int(self.num_selected.numpy())].assign(index)
                self.num_selected.assign_add(1)

    def reset_logits(self, indices: list[int]) -> None:
        """Sets the logits of ``indices`` to 0: they compete afresh (e.g. rotated chunks)."""
        logits = self.logits.numpy()
        logits[list(indices)] = 0.0
        self.logits.assign(logits)

    def set_selection(self, order: list[int]) -> None:
        """Replaces the selection with ``order`` (indices, in selection order).

        Used to apply width rounding and clipping: the caller decides which chunks stay,
        and the three selection variables change together here, never from outside.
        """
        mask = np.zeros([self.num_candidates], np.float32)
        mask[order] = 1.0
        padded = list(order) + [-1] * (self.num_candidates - len(order))
        self.selected.assign(mask)
        self.order.assign(np.asarray(padded, np.int32))
        self.num_selected.assign(len(order))

    # ---------------------------------------------------------------- read-only views
    def selected_indices(self) -> list[int]:
        """Selected candidate indices, in selection order."""
        count = int(self.num_selected.numpy())
        return [int(i) for i in self.order.numpy()[:count]]

    def attention_weights(self) -> tf.Tensor:
        """Current gate values, with no side effects."""
        # Read the variables out here: a custom gradient that reads variables itself must
        # return gradients for them, and under tf.distribute the mirrored reads happen
        # inside it (the logits' gradient then reaches the variable through this read).
        return _gate_values(
            tf.convert_to_tensor(self.logits),
            tf.convert_to_tensor(self.selected),
            tf.convert_to_tensor(self.active),
            self.step < self.attention_start,
            self.unselected_mass,
            self.logit_scale,
        )

    def next_event_ranking(self) -> list[int]:
        """The pending, eligible candidates in the order the next event would take them.

        The same tensors as the event itself (``_ranking``), so a caller that vets the
        next picks (e.g. for copies of selected candidates) sees the event's own order.
        """
        pending, ranked = self._ranking()
        count = int(tf.reduce_sum(pending).numpy())
        return [int(i) for i in ranked.numpy()[:count]]

    def mask(self) -> tf.Tensor:
        """Hard gates: 1 for selected or inactive candidates, 0 for pending ones."""
        return self.selected + (1.0 - self.active) * (1.0 - self.selected)

    # ------------------------------------------------------------------- training hook
    def __call__(self, training: bool = False) -> tf.Tensor:
        """Returns the gates; in training, first advances the step and runs due selections."""
        if not training:
            return self.attention_weights()
        step = self.step.assign_add(1)
        with tf.control_dependencies([step]):
            fire = tf.reduce_sum(tf.cast(self.schedule <= step, tf.int32)) > self.events_done
            if tf.distribute.has_strategy():
                updates = self._selection_updates(fire)
            else:
                # One device: run the selection maths only on the few steps with an event
                # (the same updates; a step without one would rewrite the same state).
                updates = [tf.cond(fire, self._event, lambda: tf.constant(False))]
        with tf.control_dependencies(updates):
            return tf.identity(self.attention_weights())

    def _event(self) -> tf.Tensor:
        with tf.control_dependencies(self._selection_updates(tf.constant(True))):
            return tf.constant(True)

    def _selection_updates(self, fire: tf.Tensor) -> list:
        """Applies a selection event when ``fire`` is true, else rewrites the same state.

        Branch-free on purpose: replica-synchronised assignments may not sit inside
        ``tf.cond`` under ``tf.distribute``, so there every step computes the candidate
        update and ``tf.where`` keeps or discards it. Without a strategy ``__call__``
        wraps it in a ``tf.cond`` instead (``fire`` is then always true here).
        """
        n = self.num_candidates
        pending, ranked = self._ranking()
        available = tf.cast(tf.reduce_sum(pending), tf.int32)
        k = tf.where(fire, tf.minimum(self.per_event, available), 0)
        # ``ranked`` is a permutation, so scattering "rank < k" back to candidate positions
        # marks the k best in O(n); a one-hot of ``ranked`` would build an n x n matrix.
        new_mask = tf.scatter_nd(ranked[:, None], tf.cast(tf.range(n) < k, tf.float32), shape=[n])
        offset = tf.range(n) - self.num_selected
        in_event = (offset >= 0) & (offset < k)
        new_order = tf.where(
            in_event, tf.gather(ranked, tf.clip_by_value(offset, 0, n - 1)), self.order
        )
        return [
            self.selected.assign(self.selected + new_mask),
            self.order.assign(new_order),
            self.num_selected.assign(self.num_selected + k),
            self.events_done.assign(self.events_done + tf.cast(fire, tf.int32)),
            self.logits.assign(tf.where(fire, tf.zeros_like(self.logits), self.logits)),
        ]

    def _ranking(self) -> tuple[tf.Tensor, tf.Tensor]:
        """Pending-and-eligible indicator, and all candidates by descending event score."""
        n = self.num_candidates
        pending = self.active * (1.0 - self.selected) * self.eligible
        score = _masked_softmax(self.logits * self.logit_scale, pending) / tf.pow(
            self.cost, self.cost_exponent
        )
        score = tf.where(pending > 0, score, tf.fill([n], -np.inf))
        _, ranked = tf.math.top_k(score, k=n)
        return pending, ranked


def _masked_softmax(logits: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
    """Softmax over the entries where ``mask`` is 1; exactly 0 elsewhere."""
    on = mask > 0
    masked = tf.where(on, logits, -np.inf)
    shifted = masked - tf.reduce_max(tf.where(on, logits, -1e30))
    exp = tf.exp(shifted) * mask
    return tf.math.divide_no_nan(exp, tf.reduce_sum(exp))


@tf.custom_gradient
def _gate_values(
    logits: tf.Tensor,
    selected: tf.Tensor,
    active: tf.Tensor,
    warm: tf.Tensor,
    unselected_mass: float,
    logit_scale: float,
):
    """``SequentialAttention.attention_weights``: 1 while ``warm``, else 1 for selected and
    inactive candidates and ``unselected_mass * softmax(logit_scale * logits)`` over the
    pending ones.

    The gradient (to the logits only; the rest is state) is the softmax's own,
    ``scale * p * (v - sum(p * v))`` with ``v = mass * upstream`` (0 while warm), in a few
    ops. Differentiating the forward ops (the max shift, the ``where`` masks,
    ``divide_no_nan``) put ~50 more ops per attention module into the training step and
    its trace, for the same values up to float rounding (the shift's exact-zero part
    included).
    """
    pending = active * (1.0 - selected)
    weights = _masked_softmax(logits * logit_scale, pending)
    gated = selected + unselected_mass * weights + (1.0 - active)
    values = tf.where(warm, tf.ones_like(gated), gated)

    def gradient(upstream: tf.Tensor):
        v = tf.where(warm, tf.zeros_like(upstream), upstream) * unselected_mass
        logit_gradient = logit_scale * (weights * (v - tf.reduce_sum(weights * v)))
        return logit_gradient, None, None, None, None, None

    return values, gradient
