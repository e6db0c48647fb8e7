"""Training-step overhead of the gated layer versus the same model with plain embeddings.

Both models have identical features, widths, tower and batch; the gated one is in its
attention phase (softmax gates, scheduled selections running). Steps are timed in
interleaved blocks so load drifts hit both alike; the figure is the ratio of medians.

    python -m benchmarks.layer_overhead [--blocks 15] [--steps-per-block 20]
"""

from __future__ import annotations

import argparse
import time

import recsel  # noqa: F401  (pins Keras 2 before TensorFlow loads)

# isort: split
import numpy as np
import tf_keras

from benchmarks._common import machine, write_json
from recsel.data.synthetic import make_synthetic
from recsel.inputs.frame_dataset import to_dataset
from recsel.inputs.inference import infer_feature_set
from recsel.inputs.tabular import validate_frame
from recsel.model.layer import PrunedEmbedding, SequentialAttentionEmbedding
from recsel.model.ranker import Ranker


def _train_function(embedding, features, frame, label, batch_size):
    model = Ranker(embedding, (64, 32))
    model.compile(
        tf_keras.optimizers.Adam(1e-3), tf_keras.losses.BinaryCrossentropy(from_logits=True)
    )
    iterator = iter(
        to_dataset(frame, features, label, batch_size, shuffle=True, repeat=True).prefetch(4)
    )
    train = model.make_train_function()
    for _ in range(5):  # trace and warm up
        train(iterator)
    return train, iterator


def _block(train, iterator, steps: int) -> float:
    start = time.perf_counter()
    for _ in range(steps):
        logs = train(iterator)
    float(logs["loss"])
    return (time.perf_counter() - start) / steps * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=20_000)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--blocks", type=int, default=15)
    parser.add_argument("--steps-per-block", type=int, default=20)
    args = parser.parse_args()
    tf_keras.utils.set_random_seed(0)
    data = make_synthetic(n_rows=args.rows, seed=0)
    features = infer_feature_set(data.frame, data.label, embedding_dim=16)
    frame = validate_frame(data.frame, features, data.label)
    gated_layer = SequentialAttentionEmbedding(features, chunk_size=8)
    total = 10 * args.blocks * args.steps_per_block
    gated_layer.schedule_selection(
        num_features=8, num_chunks=8, num_steps=total, warmup_fraction=0.0
    )
    gated = _train_function(gated_layer, features, frame, data.label, args.batch_size)
    # Same row penalty on both sides, so the ratio isolates the gates and the selection step.
    plain = _train_function(
        PrunedEmbedding(features, l2=gated_layer.l2), features, frame, data.label, args.batch_size
    )
    times = {"gated": [], "plain": []}
    for block in range(args.blocks):
        order = (
            [("gated", gated), ("plain", plain)]
            if block % 2 == 0
            else [("plain", plain), ("gated", gated)]
        )
        for name, (train, iterator) in order:
            times[name].append(_block(train, iterator, args.steps_per_block))
    medians = {k: float(np.median(v)) for k, v in times.items()}
    ratio = medians["gated"] / medians["plain"]
    print(
        f"median step: gated {medians['gated']:.2f} ms, plain {medians['plain']:.2f} ms, ratio {ratio:.3f}"
    )
    write_json(
        "layer_overhead",
        {
            "machine": machine(),
            "command": f"python -m benchmarks.layer_overhead --rows {args.rows} --batch-size {args.batch_size} "
            f"--blocks {args.blocks} --steps-per-block {args.steps_per_block}",
            "candidates": len(features),
            "embedding_columns": sum(s.embedding_dim for s in features),
            "batch_size": args.batch_size,
            "median_step_ms": medians,
            "ratio": ratio,
            "target": 1.10,
            "block_ms": times,
        },
    )


if __name__ == "__main__":
    main()
