"""The attention trajectory recorded inside the compiled loop equals the one read
between chunks (where every point ended a chunk), thinning included."""

from __future__ import annotations

import numpy as np

from recsel.data.synthetic import make_synthetic
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.splits import split_frame
from recsel.inputs.tabular import validate_frame
from recsel.selection import trainer as training
from recsel.selection.driver import select
from recsel.spec.config import SelectionConfig


def test_in_graph_points_match_points_read_between_chunks(tmp_path, monkeypatch):
    # 16 points at most: the stride doubles several times, mid-chunk for the in-graph path.
    monkeypatch.setattr(training, "MAX_TRAJECTORY_POINTS", 16)
    data = make_synthetic(n_rows=3000, n_informative=3, n_duplicates=1, n_noise=3, seed=4)
    train, valid = split_frame(data.frame, 0.2, seed=0)
    features = infer_feature_set(train, data.label, embedding_dim=16)
    train = validate_frame(train, features, data.label)
    valid = validate_frame(valid, features, data.label)
    config = SelectionConfig(num_features=3, batch_size=32, seed=0, log_every=2)
    in_graph = select(train, valid, features, config, progress=False)
    # A TensorBoard log makes the trainer read every point from Python, ending a chunk there.
    between = select(train, valid, features, config, progress=False, log_dir=str(tmp_path))
    assert in_graph.selected == between.selected
    assert in_graph.trajectory["steps"] == between.trajectory["steps"]
    assert 8 <= len(in_graph.trajectory["steps"]) <= 17
    assert max(np.diff(in_graph.trajectory["steps"])) > config.log_every  # it was thinned
    for name in features.names:
        np.testing.assert_allclose(
            in_graph.trajectory["weights"][name], between.trajectory["weights"][name], atol=1e-5
        )
