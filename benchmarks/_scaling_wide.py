"""One point of the wide candidate sweep of ``benchmarks.scaling``, run in its own process.

A point reads a Parquet table written by the parent. ``gated`` runs ``recsel select``
itself (``recsel.cli.main``, in this process, outputs into a temporary directory): the
user's command end to end, with its trainer's steps timed. ``plain`` prepares the table
as the CLI does (``recsel.inputs.arrow_table.prepare_table``: split, infer and clean on
Arrow buffers) and trains a plain, gate-free model of the same shape (the same features,
widths, tower, batch and optimizer, no attention) for the same number of steps, in
compiled calls of up to ``MAX_STEPS_PER_CALL`` steps as the trainer runs them.
``steps`` times both models' steps in interleaved blocks in one process, so load drifts
hit both alike (as ``benchmarks.layer_overhead`` does): the gated model through the
selection trainer's own train function (gates, in-graph selection events, trajectory
buffer), the plain one through the same multi-step function, both on the same
materialised batches, so the ratio compares the models' steps and not the input pipeline
that both share (it runs beside the step on the same cores). Times start at process
creation.
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


def peak_rss_mib() -> float:
    """This process's own peak RSS (``VmHWM``: its address space's high-water mark), MiB.

    Example:
        >>> peak_rss_mib() > 0
        True
    """
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("/proc/self/status has no VmHWM line (not Linux?)")


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
    """(train, valid, features) as ``recsel select`` prepares a Parquet file (defaults)."""
    from recsel.inputs.arrow_table import prepare_table
    from recsel.inputs.inference import DEFAULT_MIN_COUNT

    inputs = prepare_table(
        path, label, validation_fraction=0.2, seed=seed, embedding_dim=16,
        min_count=DEFAULT_MIN_COUNT,
    )  # fmt: skip
    return inputs.train, inputs.valid, inputs.features


def _timed_train_fn(train_fn, iterator, record: dict, multi_step: bool = False):
    """Traces ``train_fn`` now (timed, op-counted), then times each later call's end.

    With ``multi_step`` it is the selection trainer's ``train(iterator, steps)``
    (``recsel.selection.train_loop.multi_step_train_function``), which runs up to
    ``MAX_STEPS_PER_CALL`` steps per compiled call, so a call is not a step; otherwise a
    Keras ``train(iterator)`` of one step.
    """
    import tensorflow as tf

    extra = (tf.constant(1, tf.int32),) if multi_step else ()
    started = time.perf_counter()
    train_fn.get_concrete_function(iterator, *extra)
    record["tracing_seconds"] = time.perf_counter() - started
    record["graph_ops"] = graph_ops(train_fn, iterator, *extra)
    record["traced_since_start"] = _since_start()
    record["step_ends"], record["call_steps"] = [], []

    def timed(it, *args):
        steps = int(args[0]) if args else 1
        logs = train_fn(it, *args)
        float(logs["loss"])
        record["step_ends"].append(time.perf_counter())
        record["call_steps"].append(steps)
        # The first call done (of one or more steps): the first step done, at the latest.
        record.setdefault("first_step_done_since_start", _since_start())
        # CPU seconds of the process by then: comparable across loads where wall time is not.
        cpu = psutil.Process().cpu_times()
        record.setdefault("first_step_cpu_seconds", cpu.user + cpu.system)
        record.setdefault("first_call_steps", steps)
        return logs

    record["trace_count"] = lambda: train_fn.experimental_get_tracing_count()
    return timed


def _summary(record: dict) -> dict:
    ends, steps = np.asarray(record.pop("step_ends")), np.asarray(record.pop("call_steps"))
    record["trace_count"] = int(record["trace_count"]())
    record["steps"], record["calls"] = int(steps.sum()), len(ends)
    # Per-step time of each call after the first (which traces), weighted by its steps.
    per_step = np.repeat(np.diff(ends) / steps[1:], steps[1:]) if len(ends) > 2 else []
    record["median_step_ms"] = float(np.median(per_step) * 1e3) if len(per_step) else None
    record["peak_rss_mib"] = peak_rss_mib()
    # ru_maxrss survives fork + exec: a child reports at least its parent's RSS at the
    # fork (the parent that generated the tables), which is why it is not the measure.
    record["ru_maxrss_mib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    record["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return record


def gated_point(path: str, label: str, k: int, seed: int = 0) -> dict:
    """``recsel select PATH --num-features K`` in this process; timings from process start.

    Example:
        >>> gated_point("/tmp/wide_400.parquet", "label", 8)["median_step_ms"]
    """
    import contextlib
    import io
    import json
    import tempfile

    import recsel.selection.trainer as training
    from recsel import cli

    imported = _since_start()
    record: dict = {"model": "gated", "command": "recsel select"}
    record["import_seconds"] = imported
    original = training.SelectionTrainer.__init__

    def patched(self, *args, **kwargs):
        # The trainer is built once the data are prepared: that moment ends preparation.
        record.setdefault("prepared_since_start", _since_start())
        original(self, *args, **kwargs)
        record["trainer_built_since_start"] = _since_start()
        record["candidates"] = len(self.features)
        record["rows"] = self.train_source.num_rows + (self.valid_source.num_rows or 0)
        # The trainer opens its stream on the first train(); this one only traces (an
        # iterator of the same element spec, so the run reuses the trace).
        self._train_fn = _timed_train_fn(
            self._train_fn, self._open_stream(0), record, multi_step=not self._distributed
        )

    training.SelectionTrainer.__init__ = patched
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "out")
        argv = ["select", path, "--label", label, "--num-features", str(k), "--seed", str(seed),
                "--quiet", "--output-dir", out]  # fmt: skip
        started = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):
            code = cli.main(argv)
        record["cli_seconds"] = time.perf_counter() - started
        if code != 0:
            raise RuntimeError(f"recsel select {path} exited with {code}")
        with open(os.path.join(out, "selection.json")) as f:
            record["selected"] = json.load(f)["selected"]
    return _summary(record)


def _plain_model(features, config):
    import tf_keras

    from recsel.model.layer import PrunedEmbedding
    from recsel.model.ranker import Ranker

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

    Steps run in compiled calls of up to ``MAX_STEPS_PER_CALL`` steps, as the selection
    trainer runs its own (``recsel.selection.train_loop.multi_step_train_function``), so the two
    points' median steps compare like with like.

    Example:
        >>> plain_point("/tmp/wide_400.parquet", "label", 8)["median_step_ms"]
    """
    import tensorflow as tf

    from recsel.selection.train_loop import MAX_STEPS_PER_CALL, multi_step_train_function
    from recsel.spec.config import SelectionConfig

    imported = _since_start()
    train, valid, features = _prepare(path, label, seed)
    record: dict = {"model": "plain", "candidates": len(features),
                    "rows": train.num_rows + valid.num_rows}  # fmt: skip
    record["import_seconds"], record["prepared_since_start"] = imported, _since_start()
    config = SelectionConfig(num_features=k, seed=seed)
    model = _plain_model(features, config)
    dataset = train.dataset(config.batch_size, shuffle=True, seed=seed, num_epochs=None)
    iterator = iter(dataset)
    step = _timed_train_fn(multi_step_train_function(model), iterator, record, multi_step=True)
    remaining = config.planned_steps(train.num_rows)
    while remaining > 0:
        length = min(remaining, MAX_STEPS_PER_CALL)
        step(iterator, tf.constant(length, tf.int32))
        remaining -= length
    return _summary(record)


# Distinct batches both interleaved models cycle through (materialised once, in memory).
MATERIALISED_BATCHES = 16


def _interleaved(pairs: dict, blocks: int, per_block: int) -> dict:
    """Wall and CPU ms per step of each ``name -> (call, iterator)``, blocks alternating.

    ``call(iterator, steps)`` runs ``steps`` steps; the order flips every block, so a
    load drift costs both models alike. CPU time (this process's) is recorded beside wall
    time: other processes on the box stretch wall time, not this process's CPU time.
    """
    import tensorflow as tf

    steps = tf.constant(per_block, tf.int32)
    wall: dict[str, list[float]] = {name: [] for name in pairs}
    cpu: dict[str, list[float]] = {name: [] for name in pairs}
    names = list(pairs)
    for block in range(blocks):
        for name in names if block % 2 == 0 else names[::-1]:
            call, iterator = pairs[name]
            started, cpu_started = time.perf_counter(), time.process_time()
            float(call(iterator, steps)["loss"])
            wall[name].append((time.perf_counter() - started) / per_block * 1e3)
            cpu[name].append((time.process_time() - cpu_started) / per_block * 1e3)
    medians = {n: float(np.median(v)) for n, v in wall.items()}
    cpu_medians = {n: float(np.median(v)) for n, v in cpu.items()}
    return {
        "median_step_ms": medians,
        "ratio": medians["gated"] / medians["plain"],
        "cpu_median_step_ms": cpu_medians,
        "cpu_ratio": cpu_medians["gated"] / cpu_medians["plain"],
        "block_ms": wall,
        "block_cpu_ms": cpu,
    }


def steps_point(
    path: str, label: str, k: int, seed: int = 0, blocks: int = 12, per_block: int = 20
) -> dict:
    """Interleaved step timing of the gated (attention phase) and the plain model.

    The gated model is a ``SelectionTrainer``'s (the model, optimizer and compiled train
    function that ``recsel select`` runs, trajectory buffer included), scheduled to select
    ``k`` features over the timed steps; the plain model runs through the same
    ``multi_step_train_function``. The target ratio feeds both the same materialised
    batches; ``streamed`` repeats the timing with each model reading the input pipeline
    itself (as before this harness materialised them), for reference.

    Example:
        >>> steps_point("/tmp/wide_400.parquet", "label", 8)["ratio"]
    """
    import tensorflow as tf

    from recsel.selection.trainer import SelectionTrainer, multi_step_train_function
    from recsel.spec.config import SelectionConfig

    train, valid, features = _prepare(path, label, seed)
    config = SelectionConfig(num_features=k, seed=seed)
    trainer = SelectionTrainer(features, train, valid, label, config, progress=False)
    warm_steps = 2 * MATERIALISED_BATCHES
    total = 2 * (warm_steps + blocks * per_block) + 10  # both timings run inside the phase
    trainer.layer.schedule_selection(k, k, total, warmup_fraction=0.0)

    def gated(iterator, steps):
        trainer._trace.start(config.log_every)  # as SelectionTrainer.train does per call
        return trainer._train_fn(iterator, steps)

    plain = multi_step_train_function(_plain_model(features, config))
    dataset = train.dataset(config.batch_size, shuffle=True, seed=seed, num_epochs=None)
    results = {}
    for mode, data in (
        ("materialised", dataset.take(MATERIALISED_BATCHES).cache().repeat()),
        ("streamed", dataset),
    ):
        pairs = {"gated": (gated, iter(data)), "plain": (plain, iter(data))}
        for call, iterator in pairs.values():  # trace, fill the cache, warm up
            for _ in range(2):
                float(call(iterator, tf.constant(MATERIALISED_BATCHES, tf.int32))["loss"])
        results[mode] = _interleaved(pairs, blocks, per_block)
    return {
        "model": "steps",
        "candidates": len(features),
        **results["materialised"],
        "streamed": results["streamed"],
        "blocks": blocks,
        "steps_per_block": per_block,
        "selected_during_timing": len(trainer.layer.selected_features()),
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
