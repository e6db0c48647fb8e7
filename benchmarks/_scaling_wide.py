"""One point of the wide candidate sweep of ``benchmarks.scaling``, run in its own process.

A point reads a Parquet table written by the parent (as ``recsel select`` reads a file),
prepares it as the CLI does (split, infer, validate) and then either runs ``select()``
(``gated``) or trains a plain, gate-free model of the same shape (``plain``: the same
features, widths, tower, batch and optimizer, no attention) for the same number of
steps, with the same one-step-per-call loop. ``steps`` times both models' steps in
interleaved blocks in one process, so load drifts hit both alike (as
``benchmarks.layer_overhead`` does). Times start at process creation.
"""

from __future__ import annotations

import os
import resource
import time

import numpy as np
import psutil

PROCESS_START = psutil.Process().create_time()


def _since_start() -> float:
    return time.time() - PROCESS_START


def graph_ops(function, *args) -> int:
    """Nodes in a traced function's graph, counting the nodes of its library functions.

    Args:
        function: A ``tf.function`` that was already called with ``args``.
        *args: Arguments of that call (picks the cached concrete function, no retrace).

    Example:
        >>> graph_ops(model.make_train_function(), iterator)
    """
    graph = function.get_concrete_function(*args).graph.as_graph_def()
    return len(graph.node) + sum(len(f.node_def) for f in graph.library.function)


def _prepare(path: str, label: str, seed: int):
    from recsel.inference import infer_feature_set
    from recsel.tabular import read_table, split_frame, validate_frame

    frame = read_table(path, label=label)
    train, valid = split_frame(frame, 0.2, seed=seed)
    features = infer_feature_set(train, label, embedding_dim=16)
    return (
        validate_frame(train, features, label),
        validate_frame(valid, features, label),
        features,
    )


def _timed_train_fn(train_fn, iterator, record: dict):
    """Traces ``train_fn`` now (timed, op-counted), then times each later call's end."""
    started = time.perf_counter()
    train_fn.get_concrete_function(iterator)
    record["tracing_seconds"] = time.perf_counter() - started
    record["graph_ops"] = graph_ops(train_fn, iterator)
    record["step_ends"] = []

    def timed(it):
        logs = train_fn(it)
        float(logs["loss"])
        record["step_ends"].append(time.perf_counter())
        if len(record["step_ends"]) == 1:
            record["first_step_done_since_start"] = _since_start()
        return logs

    record["trace_count"] = lambda: train_fn.experimental_get_tracing_count()
    return timed


def _summary(record: dict) -> dict:
    ends = np.asarray(record.pop("step_ends"))
    record["trace_count"] = int(record["trace_count"]())
    record["steps"] = len(ends)
    record["median_step_ms"] = float(np.median(np.diff(ends)) * 1e3) if len(ends) > 2 else None
    record["peak_rss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return record


def gated_point(path: str, label: str, k: int, seed: int = 0) -> dict:
    """``select()`` on the table at ``path``; timings from process start.

    Example:
        >>> gated_point("/tmp/wide_400.parquet", "label", 8)["median_step_ms"]
    """
    import recsel.training as training
    from recsel.config import SelectionConfig
    from recsel.selection import select

    imported = _since_start()
    train, valid, features = _prepare(path, label, seed)
    record: dict = {"model": "gated", "candidates": len(features), "rows": len(train) + len(valid)}
    record["import_seconds"], record["prepared_since_start"] = imported, _since_start()
    original = training.SelectionTrainer.__init__

    def patched(self, *args, **kwargs):
        original(self, *args, **kwargs)
        self._train_fn = _timed_train_fn(self._train_fn, self._iterator, record)

    training.SelectionTrainer.__init__ = patched
    started = time.perf_counter()
    result = select(
        train, valid, features, SelectionConfig(num_features=k, seed=seed), progress=False
    )
    record["select_seconds"] = time.perf_counter() - started
    record["selected"] = list(result.selected)
    return _summary(record)


def _plain_model(features, config):
    import tf_keras

    from recsel.layer import PrunedEmbedding
    from recsel.model import Ranker

    tf_keras.utils.set_random_seed(config.seed)
    model = Ranker(PrunedEmbedding(features, l2=config.l2), config.hidden_units, seed=config.seed)
    model.compile(
        optimizer=tf_keras.optimizers.Adam(config.learning_rate),
        loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
    )
    model.optimizer.build(model.trainable_variables)
    return model


def plain_point(path: str, label: str, k: int, seed: int = 0) -> dict:
    """The plain model of the same shape, trained for select()'s planned steps.

    Example:
        >>> plain_point("/tmp/wide_400.parquet", "label", 8)["median_step_ms"]
    """
    from recsel.config import SelectionConfig
    from recsel.tabular import to_dataset

    imported = _since_start()
    train, valid, features = _prepare(path, label, seed)
    record: dict = {"model": "plain", "candidates": len(features), "rows": len(train) + len(valid)}
    record["import_seconds"], record["prepared_since_start"] = imported, _since_start()
    config = SelectionConfig(num_features=k, seed=seed)
    model = _plain_model(features, config)
    dataset = to_dataset(
        train, features, label, config.batch_size, shuffle=True, seed=seed, repeat=True
    )
    iterator = iter(dataset)
    step = _timed_train_fn(model.make_train_function(), iterator, record)
    for _ in range(config.planned_steps(len(train))):
        step(iterator)
    return _summary(record)


def steps_point(
    path: str, label: str, k: int, seed: int = 0, blocks: int = 8, per_block: int = 15
) -> dict:
    """Interleaved step timing of the gated (attention phase) and the plain model.

    Example:
        >>> steps_point("/tmp/wide_400.parquet", "label", 8)["ratio"]
    """
    import tf_keras

    from benchmarks.layer_overhead import _block
    from recsel.config import SelectionConfig
    from recsel.layer import SequentialAttentionEmbedding
    from recsel.model import Ranker
    from recsel.tabular import to_dataset

    train, _, features = _prepare(path, label, seed)
    config = SelectionConfig(num_features=k, seed=seed)
    layer = SequentialAttentionEmbedding(features, chunk_size=config.chunk_size, l2=config.l2)
    layer.schedule_selection(k, k, 10 * blocks * per_block + 10, warmup_fraction=0.0)
    gated = Ranker(layer, config.hidden_units, seed=seed)
    gated.compile(
        tf_keras.optimizers.Adam(config.learning_rate),
        tf_keras.losses.BinaryCrossentropy(from_logits=True),
    )
    plain = _plain_model(features, config)
    pairs = {}
    for name, model in (("gated", gated), ("plain", plain)):
        iterator = iter(
            to_dataset(
                train, features, label, config.batch_size, shuffle=True, seed=seed, repeat=True
            )
        )
        fn = model.make_train_function()
        for _ in range(5):  # trace and warm up
            fn(iterator)
        pairs[name] = (fn, iterator)
    times: dict[str, list[float]] = {"gated": [], "plain": []}
    for block in range(blocks):
        order = ("gated", "plain") if block % 2 == 0 else ("plain", "gated")
        for name in order:
            times[name].append(_block(*pairs[name], per_block))
    medians = {n: float(np.median(v)) for n, v in times.items()}
    return {
        "model": "steps",
        "candidates": len(features),
        "median_step_ms": medians,
        "ratio": medians["gated"] / medians["plain"],
        "block_ms": times,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
