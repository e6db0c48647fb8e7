"""Serving latency measured on real SavedModels (the measuring half of ``recsel.cost.model``).

Latency is timed on the ``serving_default`` signature that ``recsel.model.serving`` exports,
so tf.Example parsing, lookups, the tower and fetching the outputs are all counted.

Example:
    >>> stats = measure_model_latency(pruned, kept, valid, batch_size=512, workdir="/tmp")
    >>> stats.p50_ms, stats.p99_ms
"""

from __future__ import annotations

import dataclasses
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import tensorflow as tf

from recsel.model.serving import export_saved_model, load_serving_fn, serialize_examples
from recsel.spec.features import FeatureSet


@dataclasses.dataclass
class LatencyStats:
    """Wall-clock latency of one serving call on a batch.

    Args:
        p50_ms: Median of the timed calls, in milliseconds.
        p99_ms: 99th percentile (numpy's linear interpolation), in milliseconds.
        mean_ms: Mean, in milliseconds.
        repeats: Timed calls.
        batch_size: Examples per call.
    """

    p50_ms: float
    p99_ms: float
    mean_ms: float
    repeats: int
    batch_size: int


def measure_latency(
    serve: Callable[..., dict[str, tf.Tensor]],
    serialized: Sequence[bytes],
    batch_size: int,
    warmup: int = 5,
    repeats: int = 30,
) -> LatencyStats:
    """Times a serving signature on one batch of serialized tf.Examples.

    Args:
        serve: The ``serving_default`` function (``recsel.model.serving.load_serving_fn``).
        serialized: Serialized examples; cycled if fewer than ``batch_size``.
        batch_size: Examples per call.
        warmup: Untimed calls first (graph optimisation, allocator warm-up).
        repeats: Timed calls.

    Returns:
        p50 / p99 / mean of the timed calls, each including fetching the outputs.

    Example:
        >>> stats = measure_latency(load_serving_fn(path), serialized, batch_size=512)
        >>> stats.p50_ms
    """
    if not serialized:
        raise ValueError("measure_latency needs at least one serialized example.")
    if not all(isinstance(s, bytes) for s in serialized):
        raise TypeError("serialized must hold bytes (tf.Example.SerializeToString()).")
    if batch_size < 1 or repeats < 1 or warmup < 0:
        raise ValueError(
            f"Need batch_size >= 1, repeats >= 1, warmup >= 0; got {batch_size}, {repeats}, "
            f"{warmup}."
        )
    times = _time_calls(serve, _batch(serialized, batch_size), warmup, repeats)
    return _stats(times, np.percentile(times, 50), batch_size)


def _batch(serialized: Sequence[bytes], batch_size: int) -> tf.Tensor:
    return tf.constant([serialized[i % len(serialized)] for i in range(batch_size)])


def _time_calls(
    serve: Callable[..., dict[str, tf.Tensor]], examples: tf.Tensor, warmup: int, repeats: int
) -> np.ndarray:
    def call() -> None:
        # Fetching the outputs makes the timing cover the whole request, even on a GPU.
        for value in serve(examples=examples).values():
            value.numpy()

    for _ in range(warmup):
        call()
    times = np.empty(repeats)
    for i in range(repeats):
        start = time.perf_counter()
        call()
        times[i] = (time.perf_counter() - start) * 1e3
    return times


def _stats(times: np.ndarray, p50_ms: float, batch_size: int) -> LatencyStats:
    return LatencyStats(
        p50_ms=float(p50_ms),
        p99_ms=float(np.percentile(times, 99)),
        mean_ms=float(times.mean()),
        repeats=len(times),
        batch_size=batch_size,
    )


@dataclasses.dataclass
class ServingTarget:
    """A loaded serving signature and the serialized examples to time it on.

    Args:
        serve: The ``serving_default`` function.
        serialized: Serialized tf.Examples; cycled up to the batch size.
    """

    serve: Callable[..., dict[str, tf.Tensor]]
    serialized: Sequence[bytes]


def measure_interleaved(
    targets: Sequence[ServingTarget],
    batch_size: int,
    *,
    passes: int = 3,
    calls_per_pass: int = 10,
    warmup: int = 5,
    seed: int = 0,
) -> list[LatencyStats]:
    """Times several signatures side by side, in passes that visit them in shuffled order.

    Background load only ever adds time, so each target's p50 is the least of its
    per-pass medians (as ``timeit`` advises); a load burst spoils one pass, not the
    estimate, and drifting load hits every target alike. p99 and mean pool all calls.

    Args:
        targets: The signatures to compare.
        batch_size: Examples per call.
        passes: Timing passes over all targets.
        calls_per_pass: Timed calls per target per pass.
        warmup: Untimed calls per target before its first pass (one before later ones).
        seed: Seed of the pass orders.

    Returns:
        One ``LatencyStats`` per target, in the order given.

    Example:
        >>> pruned_stats, full_stats = measure_interleaved([pruned, full], batch_size=512)
        >>> pruned_stats.p50_ms / full_stats.p50_ms
    """
    if not targets or passes < 1 or calls_per_pass < 1 or warmup < 0:
        raise ValueError(
            f"Need at least one target, passes >= 1, calls_per_pass >= 1 and warmup >= 0; got "
            f"{len(targets)}, {passes}, {calls_per_pass}, {warmup}."
        )
    batches = []
    for target in targets:
        if not target.serialized or not all(isinstance(s, bytes) for s in target.serialized):
            raise ValueError("Each ServingTarget needs serialized tf.Examples (a list of bytes).")
        batches.append(_batch(target.serialized, batch_size))
    rng = np.random.default_rng(seed)
    times = np.zeros((len(targets), passes, calls_per_pass))
    for p in range(passes):
        for i in rng.permutation(len(targets)):
            first = warmup if p == 0 else min(warmup, 1)
            times[i, p] = _time_calls(targets[i].serve, batches[i], first, calls_per_pass)
    return [_stats(t.ravel(), np.median(t, axis=1).min(), batch_size) for t in times]


def sample_rows(frame: pd.DataFrame, features: FeatureSet, batch_size: int) -> pd.DataFrame:
    """The first ``batch_size`` rows, after checking every feature column is there."""
    missing = [n for n in features.names if n not in frame.columns]
    if missing:
        raise ValueError(
            f"sample_frame lacks feature column(s) {missing}; pass rows of the training frame."
        )
    if len(frame) == 0:
        raise ValueError("sample_frame is empty; pass a few hundred rows of the training frame.")
    return frame.head(batch_size)


def load_serving_target(
    model: tf.Module,
    features: FeatureSet,
    sample_frame: pd.DataFrame,
    batch_size: int,
    workdir: str,
    *,
    production_export: bool = True,
) -> ServingTarget:
    """Exports ``model`` like production does and loads its signature back for timing.

    The export is removed once loaded (a first call has run by then), so the target
    can be kept and re-timed for as long as needed without leaving files behind.

    Args:
        model: A (pruned) ranker reading ``features``.
        features: The features the model reads, at their kept widths.
        sample_frame: Rows to serialize (the first ``batch_size``; cycled if fewer).
        batch_size: Examples per serving call.
        workdir: Directory for the temporary export.
        production_export: Export with ``export_saved_model`` exactly; False uses
            ``export_for_timing`` (the same serving graph, seconds faster to save).

    Returns:
        The loaded signature with the serialized sample rows.

    Example:
        >>> full = load_serving_target(ranker, features, valid, 512, "/tmp/recsel")
        >>> (stats,) = measure_interleaved([full], 512)
    """
    rows = sample_rows(sample_frame, features, batch_size)
    path = f"{workdir.rstrip('/')}/latency-{uuid.uuid4().hex[:8]}"
    try:
        export = export_saved_model if production_export else export_for_timing
        serve = load_serving_fn(export(model, features, path))
        serialized = serialize_examples(rows, features)
        _time_calls(serve, _batch(serialized, batch_size), warmup=1, repeats=0)
        return ServingTarget(serve, serialized)
    finally:
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)


def measure_model_latency(
    model: tf.Module,
    features: FeatureSet,
    sample_frame: pd.DataFrame,
    batch_size: int,
    workdir: str,
    *,
    production_export: bool = True,
    **kw: Any,
) -> LatencyStats:
    """Exports ``model`` like production does, reloads it and times its signature.

    Args:
        model: A (pruned) ranker reading ``features``.
        features: The features the model reads, at their kept widths.
        sample_frame: Rows to serialize (the first ``batch_size``; cycled if fewer).
        batch_size: Examples per serving call.
        workdir: Directory for the temporary export (removed afterwards).
        production_export: Export with ``export_saved_model`` exactly; False uses
            ``export_for_timing`` (the same serving graph, seconds faster to save).
        **kw: ``warmup`` / ``repeats`` for ``measure_latency``.

    Returns:
        The latency statistics.

    Example:
        >>> stats = measure_model_latency(pruned, kept, valid, 512, "/tmp/recsel")
    """
    target = load_serving_target(
        model, features, sample_frame, batch_size, workdir, production_export=production_export
    )
    return measure_latency(target.serve, target.serialized, batch_size, **kw)


class _ServingOnly(tf.Module):
    """Export root holding only what the serving graph captures: variables and tables.

    ``tf.saved_model.save`` on a Keras model also walks and serialises every layer's
    Keras metadata, which costs seconds per calibration model. The serving signature is
    traced through the same ``model.__call__`` either way, so its graph is identical
    (``tests/test_cost.py`` compares op counts with ``export_saved_model``'s).
    """

    def __init__(self, model: tf.Module):
        super().__init__(name="serving_only")
        self.model_variables = list(model.variables)
        self.model_resources = [
            value
            for module in (model, *model.submodules)
            for value in vars(module).values()
            if isinstance(value, tf.saved_model.experimental.TrackableResource)
        ]
        # A closure is not tracked, so the Keras objects stay out of the object graph.
        self._forward = lambda inputs, training: model(inputs, training=training)

    # Autograph adds nothing here (no tensor-dependent Python control flow) but slows
    # tracing; the traced ops are the same.
    @tf.autograph.experimental.do_not_convert
    def __call__(self, inputs: dict, training: bool = False) -> tf.Tensor:
        return self._forward(inputs, training)


def export_for_timing(model: tf.Module, features: FeatureSet, path: str) -> str:
    """``export_saved_model`` without the Keras object metadata: same signature, 3x faster.

    Example:
        >>> serve = load_serving_fn(export_for_timing(ranker, kept, "/tmp/m"))
    """
    return export_saved_model(_ServingOnly(model), features, path)
