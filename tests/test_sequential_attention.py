"""Tests of the framework-free Sequential Attention module."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow)
from recsel.sequential_attention import SequentialAttention, selection_steps


def test_selection_steps_spread_evenly_after_warmup():
    steps = selection_steps(num_events=4, num_steps=100, warmup_fraction=0.2, start_step=10)
    np.testing.assert_array_equal(steps, [50, 70, 90, 110])


def test_selection_steps_rejects_too_few_steps():
    with pytest.raises(ValueError, match="at least as many training steps"):
        selection_steps(num_events=5, num_steps=3)


def test_gates_are_one_in_warmup_then_softmax_plus_selected():
    sa = SequentialAttention(4)
    sa.set_schedule(num_selections=2, num_steps=10, warmup_fraction=0.5)
    np.testing.assert_allclose(sa(training=True).numpy(), np.ones(4))
    for _ in range(5):
        gates = sa(training=True)
    # After warm-up, pending candidates share mass 1 (uniform at zero logits).
    np.testing.assert_allclose(gates.numpy(), np.full(4, 0.25), atol=1e-6)


def test_top_logit_is_selected_and_logits_reset():
    sa = SequentialAttention(5)
    sa.set_schedule(num_selections=2, num_steps=4, warmup_fraction=0.0)
    sa.logits.assign([0.0, 3.0, 1.0, 0.0, 2.0])
    sa(training=True)  # step 1: no event yet
    sa(training=True)  # step 2: first event fires
    assert sa.selected_indices() == [1]
    np.testing.assert_array_equal(sa.logits.numpy(), np.zeros(5))
    gates = sa.attention_weights().numpy()
    assert gates[1] == 1.0
    np.testing.assert_allclose(gates[[0, 2, 3, 4]], np.full(4, 0.25), atol=1e-6)
    sa.logits.assign([0.0, 9.0, 1.0, 0.0, 2.0])  # the selected one is ignored
    sa(training=True)
    sa(training=True)
    assert sa.selected_indices() == [1, 4]


def test_k_per_event_and_hard_mask():
    sa = SequentialAttention(6)
    sa.set_schedule(num_selections=4, num_steps=4, warmup_fraction=0.0, per_event=2)
    sa.logits.assign([5.0, 4.0, 0.0, 0.0, 0.0, 0.0])
    for _ in range(2):
        sa(training=True)
    assert sa.selected_indices() == [0, 1]
    np.testing.assert_array_equal(sa.mask().numpy(), [1, 1, 0, 0, 0, 0])


def test_cost_rule_prefers_weight_per_unit_cost():
    sa = SequentialAttention(3)
    sa.set_schedule(num_selections=1, num_steps=1, warmup_fraction=0.0)
    sa.logits.assign([1.0, 0.8, 0.0])
    sa.set_costs(np.array([10.0, 1.0, 1.0]))
    sa(training=True)
    assert sa.selected_indices() == [1]


def test_ineligible_candidates_are_never_selected():
    sa = SequentialAttention(3)
    sa.set_schedule(num_selections=2, num_steps=2, warmup_fraction=0.0)
    sa.logits.assign([3.0, 2.0, 1.0])
    sa.set_eligible(np.array([0.0, 1.0, 0.0]))
    sa(training=True)
    sa(training=True)  # second event: nothing eligible is left
    assert sa.selected_indices() == [1]


def test_next_event_ranking_is_the_order_the_event_takes():
    sa = SequentialAttention(6)
    sa.set_schedule(num_selections=3, num_steps=1, warmup_fraction=0.0, per_event=3)
    sa.logits.assign([0.5, 3.0, -1.0, 2.0, 1.0, 2.5])
    sa.set_costs(np.array([1.0, 4.0, 1.0, 1.0, 1.0, 1.0]))  # weight per cost: 1 falls back
    sa.set_eligible(np.array([1.0, 1.0, 1.0, 1.0, 0.0, 1.0]))
    ranking = sa.next_event_ranking()
    assert ranking == [5, 3, 1, 0, 2]  # ineligible 4 left out
    sa(training=True)
    assert sa.selected_indices() == ranking[:3]
    assert sa.next_event_ranking() == [0, 2]  # selected ones are no longer pending


def test_too_many_selections_is_a_clear_error():
    sa = SequentialAttention(3)
    with pytest.raises(ValueError, match="only 3 of 3 are still unselected"):
        sa.set_schedule(num_selections=4, num_steps=10)


def test_state_round_trips_through_a_checkpoint(tmp_path):
    sa = SequentialAttention(4)
    sa.set_schedule(num_selections=2, num_steps=2, warmup_fraction=0.0)
    sa.logits.assign([0.0, 0.0, 7.0, 0.0])
    sa(training=True)
    path = tf.train.Checkpoint(sa=sa).save(str(tmp_path / "ckpt"))
    restored = SequentialAttention(4)
    tf.train.Checkpoint(sa=restored).restore(path).assert_consumed()
    assert restored.selected_indices() == [2]
    assert int(restored.step.numpy()) == 1
    np.testing.assert_array_equal(restored.schedule.numpy()[:2], sa.schedule.numpy()[:2])


def _correlated_regression(seed: int, n: int = 2000, d: int = 50, k: int = 10, rho: float = 0.8):
    rng = np.random.default_rng(seed)
    cov = rho ** np.abs(np.subtract.outer(np.arange(d), np.arange(d)))
    x = rng.standard_normal((n, d)) @ np.linalg.cholesky(cov).T
    x = (x - x.mean(0)) / x.std(0)
    beta = np.zeros(d)
    support = rng.choice(d, k, replace=False)
    beta[support] = rng.uniform(1, 2, k) * rng.choice([-1, 1], k)
    y = x @ beta + 0.5 * rng.standard_normal(n)
    return x.astype(np.float32), y.astype(np.float32)


def _omp(x: np.ndarray, y: np.ndarray, k: int) -> list[int]:
    """Orthogonal Matching Pursuit, written out: pick max |x_j . residual|, refit."""
    y = y - y.mean()
    chosen: list[int] = []
    residual = y
    for _ in range(k):
        score = np.abs(x.T @ residual)
        score[chosen] = -1.0
        chosen.append(int(np.argmax(score)))
        coef, *_ = np.linalg.lstsq(x[:, chosen], y, rcond=None)
        residual = y - x[:, chosen] @ coef
    return chosen


def _sequential_attention_linear(x, y, k, l2=1e-2, steps_per_selection=300, lr=0.05):
    d = x.shape[1]
    sa = SequentialAttention(d)
    sa.set_schedule(num_selections=k, num_steps=steps_per_selection * k, warmup_fraction=0.0)
    w = tf.Variable(tf.zeros([d]))
    b = tf.Variable(0.0)
    optimizer = tf_keras.optimizers.Adam(lr)
    xt, yt = tf.constant(x), tf.constant(y)
    trainable = [w, b, sa.logits]

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            prediction = tf.linalg.matvec(xt, w * sa(training=True)) + b
            loss = tf.reduce_mean(tf.square(prediction - yt)) + l2 * tf.reduce_sum(tf.square(w))
        optimizer.apply_gradients(zip(tape.gradient(loss, trainable), trainable))

    for _ in range(steps_per_selection * k + 1):
        train_step()
    return sa.selected_indices()


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_regression_selection_equals_omp(seed):
    x, y = _correlated_regression(seed)
    omp = _omp(x, y, 10)
    marginal = np.argsort(-np.abs(x.T @ (y - y.mean())))[:10]
    assert set(marginal.tolist()) != set(omp), "problem too easy: a marginal filter matches OMP"
    selected = _sequential_attention_linear(x, y, 10)
    assert len(selected) == 10
    assert set(selected) == set(omp)
