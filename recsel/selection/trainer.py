"""The selection model's training loop: one data stream, progress, traces, evaluation.

One persistent iterator feeds every round, so across the whole run each training
example is seen about ``epochs`` times (once by default) — repeated examples let
ID-like features win by memorisation. Attention trajectories are recorded for the
report and written to TensorBoard when a log directory is given.

Checkpoints hold state, never data: the model, the optimizer, the selection state and
the run bookkeeping. The input position is the global step (every training step reads
exactly one batch), and a source's batch order is a function of its seed, so a resumed
run rebuilds the stream and skips that many batches. The checkpoint's size therefore
does not grow with the rows, and the trajectory is thinned to a bounded length.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd
import tensorflow as tf
import tf_keras

from recsel.inputs.source import INPUT_ERRORS, BatchSource, as_source, explained
from recsel.model.layer import SequentialAttentionEmbedding
from recsel.model.ranker import Ranker
from recsel.progress import Progress
from recsel.selection._trajectory import TrajectoryBuffer, write_summaries
from recsel.selection._validation import (  # noqa: F401  (re-exported: the run's constants)
    SERVING_SAMPLE_ROWS,
    VALID_HEAD_ROWS,
    ValidationRows,
)
from recsel.selection.train_loop import MAX_STEPS_PER_CALL, multi_step_train_function
from recsel.spec.config import SelectionConfig
from recsel.spec.features import FeatureSet

# Attention trajectories keep at most this many points; past it every other point is
# dropped and the recording interval doubles, so memory and checkpoints stay flat.
MAX_TRAJECTORY_POINTS = 512


def config_hash(config: SelectionConfig, features: FeatureSet) -> str:
    """Identifies a run's settings, so a checkpoint is only resumed by the same run."""
    payload = json.dumps(
        {"config": config.to_dict(), "features": features.to_dict()}, sort_keys=True
    )
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


class SelectionTrainer:
    """Builds the gated ranker and trains it step by step.

    Args:
        features: Candidate features.
        train: Training rows: a cleaned frame, or a ``BatchSource`` such as
            ``recsel.inputs.FileStream`` (streamed, never materialised).
        valid: Validation rows, as a frame or a ``BatchSource``.
        label: Label column.
        config: Selection settings.
        log_dir: TensorBoard log directory (None: no summaries).
        progress: Show a progress bar per round.
        checkpoint_dir: Where to checkpoint model, optimizer, selection state, data
            position and run bookkeeping (None: no checkpoints).
        checkpoint_every: Steps between checkpoints.
        step_callback: Called with the global step after every training step.
        strategy: A ``tf.distribute`` strategy to train under (MirroredStrategy,
            MultiWorkerMirroredStrategy, TPUStrategy); None: the default strategy. Under
            several workers, each worker's training source reads its own shards
            (``StreamOptions(num_workers=..., worker_index=...)``), and checkpoints are
            off.
    """

    def __init__(
        self,
        features: FeatureSet,
        train: pd.DataFrame | BatchSource,
        valid: pd.DataFrame | BatchSource,
        label: str,
        config: SelectionConfig,
        *,
        log_dir: str | None = None,
        progress: bool = True,
        checkpoint_dir: str | None = None,
        checkpoint_every: int = 50,
        step_callback: Callable[[int], None] | None = None,
        strategy: tf.distribute.Strategy | None = None,
    ):
        tf_keras.utils.set_random_seed(config.seed)
        self.strategy = strategy or tf.distribute.get_strategy()
        self._distributed = (
            self.strategy.num_replicas_in_sync > 1 or self.strategy.extended._in_multi_worker_mode()
        )
        if checkpoint_dir and self.strategy.extended._in_multi_worker_mode():
            # Workers split each global batch, so "batches read" is not the step count
            # there; resuming a multi-worker run is not supported yet.
            warnings.warn(
                "Checkpoints are off under a multi-worker strategy: a preempted multi-worker "
                "selection restarts from the beginning.",
                stacklevel=3,
            )
            checkpoint_dir = None
        self.features, self.label, self.config = features, label, config
        self.train_source = as_source(train, features, label, "train")
        self.valid_source = as_source(valid, features, label, "valid")
        self.validation = ValidationRows(
            self.valid_source, features, label, config.serving_batch_size
        )
        self.progress = progress
        with self.strategy.scope():  # variables (and so the selection state) per replica
            self.layer = SequentialAttentionEmbedding(
                features,
                chunk_size=config.chunk_size,
                l2=config.l2,
                logit_scale=config.logit_scale,
                seed=config.seed,
            )
            self.model = Ranker(
                self.layer, config.hidden_units, seed=config.seed, tower=config.tower
            )
            # A multi-step train function; each call's step count is set before it runs.
            # Not across replicas: the all-gather of sparse embedding gradients inside
            # the loop fails when replicas look up different numbers of rows.
            self._max_steps_per_call = 1 if self._distributed else MAX_STEPS_PER_CALL
            self.model.compile(
                optimizer=tf_keras.optimizers.Adam(config.learning_rate),
                loss=tf_keras.losses.BinaryCrossentropy(from_logits=True),
                steps_per_execution=self._max_steps_per_call,
            )
        # The training stream ends at the run's last planned step (``end_stream_at``): the
        # pipeline then reads nothing past the plan and has drained when the run ends.
        self.total_steps = config.planned_steps(self.train_source.num_rows)
        # Opened by the first train() at the step reached then, so that setting the end
        # (end_stream_at) and restoring a checkpoint build no pipeline that is dropped.
        self._iterator = None
        self.trajectory: dict = {"steps": [], "weights": {n: [] for n in features.names}}
        self._trajectory_stride = 1
        self.selection_weights: dict[str, float] = {}
        self._writer = tf.summary.create_file_writer(log_dir) if log_dir else None
        # Trajectory points recorded in-graph, so they need not end a compiled chunk; with
        # TensorBoard summaries (which read more state per point) they still do.
        self._trace = (
            TrajectoryBuffer(self.layer.feature_attention, MAX_STEPS_PER_CALL)
            if not self._distributed and self._writer is None
            else None
        )
        self.step_callback = step_callback
        self.checkpoint_every = int(checkpoint_every)
        self._manager = None
        self._train_fn = (
            self.model.make_train_function()
            if self._distributed
            else multi_step_train_function(
                self.model, self._trace.after_step if self._trace else None
            )
        )
        # Building the optimizer's slots now means the train step is traced once, not
        # twice (a first trace that creates variables is thrown away).
        with self.strategy.scope():
            self.model.optimizer.build(self.model.trainable_variables)
        if checkpoint_dir:
            # Run bookkeeping rides inside the checkpoint, so state and weights never disagree.
            # The iterator is left out: it would serialise its shuffle buffer (data).
            self._state_json = tf.Variable("", dtype=tf.string, trainable=False)
            checkpoint = tf.train.Checkpoint(
                model=self.model, optimizer=self.model.optimizer, state=self._state_json
            )
            self._manager = tf.train.CheckpointManager(checkpoint, checkpoint_dir, max_to_keep=2)
        self.state_provider: Callable[[], dict] | None = None
        # Called before each feature event (``recsel.selection._copy_guard``).
        self.before_feature_event: Callable[[], None] | None = None

    @property
    def serving_sample(self) -> pd.DataFrame:
        """Validation rows as serving-latency inputs (``ValidationRows.serving_sample``)."""
        return self.validation.serving_sample

    def valid_head(self, rows: int) -> pd.DataFrame:
        """The validation head, read once for all users (``ValidationRows.head``).

        Example:
            >>> serving = trainer.valid_head(2048)  # reads 5000 rows
            >>> sample = trainer.valid_head(5000)  # no second read
        """
        return self.validation.head(rows)

    def end_stream_at(self, total_steps: int) -> None:
        """Ends the training stream after ``total_steps`` steps of the run (the schedule's).

        A stream that repeats forever has, when the run stops, a prefetch, a parallel
        interleave and a shuffle buffer at work on the next pass, and dropping its
        iterator then waits for them (``close``); a stream that ends at the last planned
        step reads no row past the plan. A run may stop sooner (a budget); it never
        trains longer.

        Args:
            total_steps: Steps of the whole run, counted from step 0.

        Example:
            >>> trainer.end_stream_at(schedule.total_steps)
        """
        total_steps = int(total_steps)
        if total_steps != self.total_steps:
            self.total_steps = total_steps
            self._iterator = None  # reopened, ending there, by the next train()

    def _open_stream(self, skip_batches: int):
        dataset = self.train_source.dataset(
            self.config.batch_size,
            seed=self.config.seed,
            shuffle=True,
            num_epochs=None,
            skip_batches=skip_batches,
        ).take(max(0, self.total_steps - skip_batches))
        if self._distributed:
            # Each global batch is split across the replicas; the step count (and so the
            # selection schedule) is the same on every worker.
            return iter(self.strategy.experimental_distribute_dataset(dataset))
        return iter(dataset)

    # ---------------------------------------------------------------- checkpoints
    def restore(self) -> dict | None:
        """Restores the latest checkpoint; returns its run state, or None to start afresh."""
        if self._manager is None or self._manager.latest_checkpoint is None:
            return None
        self._manager.checkpoint.restore(
            self._manager.latest_checkpoint
        ).assert_existing_objects_matched()
        state = json.loads(self._state_json.numpy().decode())
        if state.get("config_hash") != config_hash(self.config, self.features):
            raise ValueError(
                f"Checkpoint {self._manager.latest_checkpoint} was written by a run with different "
                "settings or features; delete its directory or rerun with the same settings."
            )
        self.trajectory = state["trajectory"]
        self._trajectory_stride = state.get("trajectory_stride", 1)
        self.selection_weights = state["selection_weights"]
        self._iterator = None  # the next train() opens the stream at the restored step
        return state

    def save(self, state: dict) -> None:
        """Checkpoints now, with ``state`` (JSON-able run bookkeeping)."""
        if self._manager is None:
            return
        state = {
            **state,
            "config_hash": config_hash(self.config, self.features),
            "trajectory": self.trajectory,
            "trajectory_stride": self._trajectory_stride,
            "selection_weights": self.selection_weights,
        }
        self._state_json.assign(json.dumps(state))
        self._manager.save(checkpoint_number=self.step)

    def close(self) -> None:
        """Releases the training stream's iterator (its reader threads and buffers) now.

        ``select()`` calls it before it returns, so the input pipeline's shutdown is on
        the run's own clock (and ``benchmarks.stream_scale`` times it as a phase) rather
        than an unattributed cost when the caller drops the trainer.
        """
        self._iterator = None
        if self._writer is not None:
            self._writer.close()

    def clear_checkpoints(self) -> None:
        if self._manager is not None and tf.io.gfile.exists(self._manager.directory):
            tf.io.gfile.rmtree(self._manager.directory)

    @property
    def step(self) -> int:
        return int(self.layer.feature_attention.step.numpy())

    def train(self, num_steps: int, description: str = "training") -> float:
        """Runs ``num_steps`` steps, many per compiled call; returns the running mean loss.

        Steps run in chunks inside one ``tf.function`` call (``multi_step_train_function``;
        Keras' ``steps_per_execution`` loop under a distribution strategy, where a chunk is
        one step), so Python costs are paid per chunk,
        not per step, and selection events stay at their exact steps (they are in-graph).
        A chunk ends just before a selection event (to record the weight the winner was
        chosen at), at a trajectory point, at a checkpoint, after every step when a
        ``step_callback`` is set, or after ``MAX_STEPS_PER_CALL`` steps.

        Every ``checkpoint_every`` steps it checkpoints, with the run state that
        ``state_provider(steps_done_in_this_call)`` returns.
        """
        attention = self.layer.feature_attention
        never = np.iinfo(np.int64).max
        events = sorted(int(s) for s in attention.schedule.numpy() if s < never)
        loss = float("nan")
        bar = Progress(num_steps, description, unit="step", enabled=self.progress)
        done, step = 0, self.step
        if step + num_steps > self.total_steps:
            raise ValueError(
                f"SelectionTrainer.train(): {num_steps} steps from step {step} run past the "
                f"training stream's end at step {self.total_steps}; call "
                "end_stream_at(total) with the run's planned steps first."
            )
        if self._iterator is None:
            self._iterator = self._open_stream(skip_batches=step)
        while done < num_steps:
            length = self._chunk_length(step, num_steps - done, events)
            at_event = (step + 1) in events
            if at_event and self.before_feature_event is not None:
                self.before_feature_event()
            before = attention.attention_weights().numpy() if at_event else None
            seen = len(attention.selected_indices()) if at_event else 0
            if self._trace is not None:
                self._trace.start(self._trace_every)
            try:
                logs = (
                    self._train_fn(self._iterator)
                    if self._distributed
                    else self._train_fn(self._iterator, tf.constant(length, tf.int32))
                )
            except INPUT_ERRORS as err:
                raise explained(self.train_source, err) from err
            done, step = done + length, step + length
            loss = float(logs["loss"])
            if before is not None:
                for index in attention.selected_indices()[seen:]:
                    self.selection_weights[self.features.names[index]] = float(before[index])
            if self._trace is not None:
                for point, weights in self._trace.drain():
                    if point % self._trace_every == 0:  # the stride may double on the way
                        self._append(point, weights)
            elif step % self._trace_every == 0:
                self._record()
            bar.update(length)
            if self.step_callback is not None:
                self.step_callback(step)
            if self._checkpointing and step % self.checkpoint_every == 0:
                self.save(self.state_provider(done))
            bar.set_postfix(loss=f"{loss:.4f}", selected=len(attention.selected_indices()))
        bar.close()
        self._record()
        return loss

    @property
    def _checkpointing(self) -> bool:
        return self._manager is not None and self.state_provider is not None

    def _chunk_length(self, step: int, remaining: int, events: list[int]) -> int:
        """Steps to run in the next compiled call, starting after global step ``step``."""
        if self.step_callback is not None:
            return 1
        length = min(remaining, self._max_steps_per_call)
        first = step + 1
        upcoming = [e for e in events if e > first]
        if upcoming:  # the next event must start a chunk
            length = min(length, upcoming[0] - first)
        if self._trace is None:  # trajectory points are read between chunks
            every = self._trace_every
            length = min(length, every - step % every)
        if self._checkpointing:
            length = min(length, self.checkpoint_every - step % self.checkpoint_every)
        return max(1, length)

    @property
    def _trace_every(self) -> int:
        return self.config.log_every * self._trajectory_stride

    def _record(self) -> None:
        """Appends the current gates to the trajectory (and TensorBoard)."""
        step = self.step
        weights = self.layer.feature_attention.attention_weights().numpy()
        if self._append(step, weights):
            if self._writer is not None:
                write_summaries(self._writer, self.layer, step, weights)

    def _append(self, step: int, weights: np.ndarray) -> bool:
        """Adds one point (thinning to ``MAX_TRAJECTORY_POINTS``); False if already there."""
        if self.trajectory["steps"] and self.trajectory["steps"][-1] == step:
            return False
        self.trajectory["steps"].append(step)
        for name, value in zip(self.features.names, weights):
            self.trajectory["weights"][name].append(round(float(value), 6))
        if len(self.trajectory["steps"]) > MAX_TRAJECTORY_POINTS:
            self._trajectory_stride *= 2
            self.trajectory["steps"] = self.trajectory["steps"][::2]
            for name in self.features.names:
                self.trajectory["weights"][name] = self.trajectory["weights"][name][::2]
        return True

    def evaluate(self, model: tf_keras.Model, features: FeatureSet) -> dict[str, float]:
        """Validation AUC and log loss of ``model`` (which reads ``features``), streamed."""
        return self.validation.evaluate(model, features)
