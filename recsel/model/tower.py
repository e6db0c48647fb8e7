"""Custom towers for the selection model: loading, checking, naming and pruning them.

By default ``select()`` scores the gated embedding with a small ReLU tower
(``SelectionConfig.hidden_units``). A team whose ranker has a different head (DCN
cross layers, a deeper or wider MLP, batch normalisation) can give its own, so that
features are chosen for the model that will serve them. A tower is any ``tf_keras``
layer mapping the embedding vector ``[batch, width]`` to one logit ``[batch, 1]``,
made by a factory:

- ``build_tower()``, called with no arguments (any parameters need defaults), or
- ``build_tower(input_width)``, when the tower must know its input width: a
  parameter named ``input_width`` receives it.

The factory is called once per model (the gated one, each round's pruned copy and each
latency-calibration model), so it must return a fresh layer every time.

A factory is named by a spec string, so that configs, the CLI and TFX can carry it:
``"path/to/towers.py:build_tower"`` or ``"package.module:build_tower"``.

Example:
    >>> def build_tower():
    ...     return tf_keras.Sequential([
    ...         tf_keras.layers.Dense(128, "relu"), tf_keras.layers.Dense(1)])
    >>> recsel.select(features, train, valid, "clicked", SelectionConfig(tower=build_tower))
"""

from __future__ import annotations

import functools
import hashlib
import importlib
import importlib.util
import inspect
import json
import os
import sys
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
import tf_keras

from recsel.spec.config import tower_name  # re-exported: the name recorded in selection.json

TowerFn = Callable[..., tf_keras.layers.Layer]


@functools.cache
def load_tower_fn(spec: str) -> TowerFn:
    """Imports the tower factory a spec string names (once per process).

    Args:
        spec: ``"file.py:function"`` (a source file) or ``"package.module:function"``
            (an importable module; ``"package.module.function"`` also works).

    Returns:
        The factory.

    Raises:
        ValueError: The spec is malformed, or the file, module or function is missing;
            the message names which.

    Example:
        >>> build = load_tower_fn("towers/dcn.py:build_tower")
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(
            f"A tower spec must be 'file.py:function' or 'module:function', got {spec!r}."
        )
    location, sep, name = spec.rpartition(":")
    if not sep:  # "package.module.function"
        location, _, name = spec.rpartition(".")
    if not location or not name:
        raise ValueError(
            f"Tower spec {spec!r} names no function: write 'file.py:function' or 'module:function'."
        )
    if location.endswith(".py"):
        if not os.path.isfile(location):
            raise ValueError(f"Tower module file {location!r} (from spec {spec!r}) does not exist.")
        module_name = (
            "recsel_user_tower_"
            + hashlib.sha256(os.path.abspath(location).encode()).hexdigest()[:12]
        )
        module_spec = importlib.util.spec_from_file_location(module_name, location)
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[module_name] = module  # keeps classes defined there picklable by name
        module_spec.loader.exec_module(module)
    else:
        try:
            module = importlib.import_module(location)
        except ImportError as err:
            raise ValueError(
                f"Cannot import tower module {location!r} (from spec {spec!r}): {err}. "
                "Install it, put it on PYTHONPATH, or give a file path ending in .py."
            ) from err
    fn = getattr(module, name, None)
    if not callable(fn):
        raise ValueError(
            f"Tower module {location!r} has no function {name!r} (from spec {spec!r})."
        )
    return fn


def resolve_tower(tower: str | TowerFn | None) -> TowerFn | None:
    """A factory from a spec string or a callable; None stays None (the default tower)."""
    if tower is None or callable(tower):
        return tower
    return load_tower_fn(tower)


def build_tower(tower_fn: TowerFn, input_width: int) -> tf_keras.layers.Layer:
    """Calls the factory and checks the tower maps ``[batch, input_width]`` to ``[batch, 1]``.

    Args:
        tower_fn: The factory (``input_width`` is passed if it has such a parameter).
        input_width: Width of the embedding vector the tower reads.

    Returns:
        The built tower.

    Raises:
        ValueError: The factory does not return a ``tf_keras`` layer, or the tower fails
            on, or gives the wrong shape for, a probe batch.
    """
    name = tower_name(tower_fn)
    takes_width = "input_width" in inspect.signature(tower_fn).parameters
    try:
        tower = tower_fn(input_width=int(input_width)) if takes_width else tower_fn()
    except Exception as err:  # noqa: BLE001 - user code; re-raised with the factory named
        raise ValueError(
            f"Tower factory {name} raised {type(err).__name__}: {err}. It is called with no "
            "arguments (or input_width=...); give its other parameters defaults."
        ) from err
    if not isinstance(tower, tf_keras.layers.Layer):
        raise ValueError(
            f"Tower factory {name} returned {type(tower).__name__}; it must return a tf_keras "
            "layer or model (import tf_keras, not keras 3)."
        )
    try:
        out = tower(tf.zeros((2, int(input_width))))
    except Exception as err:  # noqa: BLE001 - re-raised with the tower named
        raise ValueError(
            f"Tower {name} failed on a [2, {input_width}] float input: {err}. A tower must accept "
            "any input width (do not fix input_shape) or take an input_width argument."
        ) from err
    if tuple(out.shape) != (2, 1):
        raise ValueError(
            f"Tower {name} must map [batch, width] to one logit [batch, 1]; it returned shape "
            f"{tuple(out.shape)}. End it with Dense(1) and no activation."
        )
    return tower


def tower_fingerprint(tower_fn: TowerFn, input_width: int) -> str:
    """Identity of a tower's architecture, for the latency-calibration cache key."""
    tower = build_tower(tower_fn, input_width)
    try:
        config = json.dumps(tower.get_config(), sort_keys=True, default=str)
    except NotImplementedError:  # subclassed layers may not define a config
        config = type(tower).__qualname__
    return f"{tower_name(tower_fn)}#{hashlib.sha256(config.encode()).hexdigest()[:16]}"


def leading_dense(tower: tf_keras.layers.Layer) -> tf_keras.layers.Dense | None:
    """The Dense layer that first reads the embedding, when the tower is Sequential.

    Only then can pruning drop kernel rows; any other tower is pruned by
    ``ExpandColumns``, which feeds it zeros in the dropped columns.
    """
    if isinstance(tower, tf_keras.Sequential) and tower.layers:
        first = tower.layers[0]
        if type(first) is tf_keras.layers.Dense:
            return first
    return None


class ExpandColumns(tf_keras.layers.Layer):
    """Runs an embedding layer and puts its columns back at their full-width positions.

    The pruned model of a tower that is not Dense-first: dropped columns read as the
    zeros that hard masking gives, so the unchanged tower predicts exactly as the gated
    model did with unselected candidates masked out.

    Args:
        embedding: The pruned embedding (``PrunedEmbedding``).
        columns: For each of its output columns, the position in the full-width vector.
        output_width: Full width.
    """

    def __init__(
        self, embedding: tf_keras.layers.Layer, columns: Sequence[int], output_width: int, **kwargs
    ):
        super().__init__(**kwargs)
        self.embedding = embedding
        self.columns = [int(c) for c in columns]
        self.output_width = int(output_width)
        source = np.full(self.output_width, len(self.columns), np.int32)  # the zero column
        source[self.columns] = np.arange(len(self.columns), dtype=np.int32)
        self._source = tf.constant(source)

    @property
    def features(self):
        return self.embedding.features

    def call(self, inputs: dict) -> tf.Tensor:
        kept = self.embedding(inputs)
        padded = tf.concat([kept, tf.zeros_like(kept[:, :1])], axis=1)
        return tf.gather(padded, self._source, axis=1)
