"""Atomic file and directory writes that also work on ``gs://`` paths.

Outputs are written to a temporary sibling and renamed into place, so a crash never
leaves a half-written file that looks complete, and inputs are never overwritten.
"""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator, Sequence

import tensorflow as tf


def read_text(path: str) -> str:
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{path}: no such file.")
    with tf.io.gfile.GFile(path, "r") as f:
        return f.read()


def atomic_write_text(path: str, text: str) -> None:
    """Writes ``text`` to ``path`` via a temporary file and a rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str, data: bytes) -> None:
    parent = os.path.dirname(path)
    if parent:
        tf.io.gfile.makedirs(parent)
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    with tf.io.gfile.GFile(tmp, "wb") as f:
        f.write(data)
    tf.io.gfile.rename(tmp, path, overwrite=True)


def is_nonempty_dir(path: str) -> bool:
    return tf.io.gfile.isdir(path) and bool(tf.io.gfile.listdir(path))


def check_output_dir(path: str, overwrite: bool = False, inputs: Sequence[str | None] = ()) -> None:
    """Fails early if ``path`` cannot become an output directory without losing data.

    Callers that work for a long time before writing (training, Beam jobs) call this
    first, so a bad path fails in seconds rather than after the run.

    Args:
        path: The output directory.
        overwrite: Allow replacing a non-empty ``path``...
        inputs: ...unless it holds one of these input files or patterns (or the current
            directory): replacing it deleted a data file kept beside the outputs, and
            ``--output-dir .`` failed with a raw "Device or resource busy".

    Raises:
        FileExistsError: ``path`` is a file, a non-empty directory and ``overwrite`` is
            False, or a directory ``overwrite`` would delete an input with.
    """
    path = path.rstrip("/") or "/"
    if tf.io.gfile.exists(path) and not tf.io.gfile.isdir(path):
        raise FileExistsError(f"{path}: exists and is not a directory; choose another output path.")
    if not is_nonempty_dir(path):
        return
    if not overwrite:
        raise FileExistsError(
            f"{path}: output directory is not empty. Pass --overwrite (overwrite=True) to "
            "replace it, or choose an empty directory."
        )
    if _holds(path, os.getcwd()):
        raise FileExistsError(
            f"{path}: is the current directory or holds it, so --overwrite cannot replace it; "
            "choose an output directory of its own (e.g. out/)."
        )
    for item in inputs:
        if item and _holds(path, item):
            raise FileExistsError(
                f"{path}: holds the input {item}, which --overwrite would delete with the "
                "directory; choose an output directory that holds none of the inputs."
            )


def _holds(directory: str, path: str) -> bool:
    """Whether ``path`` (a file, directory or glob) is ``directory`` or inside it."""
    literal = re.split(r"[*?\[]", path, maxsplit=1)[0]  # a pattern's fixed leading part
    if "://" in directory or "://" in literal:
        inner, outer = literal.rstrip("/"), directory.rstrip("/")
        return inner == outer or inner.startswith(outer + "/")
    inner, outer = os.path.realpath(literal or "."), os.path.realpath(directory)
    return inner == outer or inner.startswith(outer.rstrip(os.sep) + os.sep)


@contextlib.contextmanager
def atomic_output_dir(
    path: str, overwrite: bool = False, inputs: Sequence[str | None] = ()
) -> Iterator[str]:
    """Yields a staging directory that replaces ``path`` only if the block succeeds.

    Args:
        path: Final output directory.
        overwrite: Replace ``path`` if it exists and is not empty.
        inputs: Input paths ``path`` must not hold when it is replaced (``check_output_dir``).

    Raises:
        FileExistsError: ``path`` is a non-empty directory and ``overwrite`` is False.
    """
    path = path.rstrip("/")
    check_output_dir(path, overwrite, inputs)
    staging = f"{path}.staging-{uuid.uuid4().hex[:8]}"
    tf.io.gfile.makedirs(staging)
    try:
        yield staging
        if tf.io.gfile.exists(path):
            backup = f"{path}.old-{uuid.uuid4().hex[:8]}"
            tf.io.gfile.rename(path, backup)
            try:
                tf.io.gfile.rename(staging, path)
            except BaseException:
                tf.io.gfile.rename(backup, path)  # the old outputs stay where they were
                raise
            tf.io.gfile.rmtree(backup)
        else:
            tf.io.gfile.rename(staging, path)
    except BaseException:
        if tf.io.gfile.exists(staging):
            tf.io.gfile.rmtree(staging)
        raise
