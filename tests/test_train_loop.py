"""The compiled multi-step loop trains exactly as one step per call: same state, same selection."""

from __future__ import annotations

import numpy as np

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig


def test_many_steps_per_call_give_the_state_of_one_step_per_call():
    data = make_synthetic(n_rows=4000, n_informative=3, n_duplicates=1, n_noise=3, seed=2)
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    config = SelectionConfig(num_features=3, batch_size=32, seed=1, log_every=5)
    chunked = select(train, valid, features, config, progress=False)
    steps: list[int] = []
    # A step callback makes every compiled call one step long.
    stepwise = select(train, valid, features, config, progress=False, step_callback=steps.append)
    assert steps == list(range(1, chunked.provenance["steps"] + 1))  # it really was one per call
    assert chunked.selected == stepwise.selected and chunked.dims == stepwise.dims
    assert chunked.selection_weights == stepwise.selection_weights
    assert chunked.final_weights == stepwise.final_weights
    assert chunked.trajectory == stepwise.trajectory
    assert chunked.metrics["auc"] == stepwise.metrics["auc"]
    assert np.isfinite(chunked.metrics["log_loss"])
