"""Which files a path means, and their format: one file, a directory of shards, or a glob.

Every reader (``recsel.inputs.tabular.read_table``, the streaming readers of
``recsel.inputs.readers``, the statistics pass and the Beam jobs) resolves its input here,
so all accept the same paths and refuse the same ones with the same words.

Example:
    >>> resolve_files("data/")  # part-0.parquet, part-1.parquet; _SUCCESS is skipped
    >>> format_of("data_tfrecord-00000-of-00004.gz"), gzipped("train.csv.gz")
    ('tfrecord', True)
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
from collections.abc import Iterator

import tensorflow as tf

SUPPORTED_EXTENSIONS = (
    ".csv", ".csv.gz", ".parquet", ".parquet.brotli", ".pq", ".tfrecord", ".tfrecords",
    ".tfrecord.gz", ".tfrecords.gz",
)  # fmt: skip
_SHARD_SUFFIX = re.compile(r"-\d+-of-\d+")  # Beam/TFX shard names: data_tfrecord-00000-of-00004.gz


def format_of(path: str) -> str | None:
    """``csv``, ``parquet`` or ``tfrecord`` from a file name, or None if unsupported."""
    name = _SHARD_SUFFIX.sub("", os.path.basename(path).lower())
    if name.endswith((".csv", ".csv.gz")):
        return "csv"
    if name.endswith((".parquet", ".parquet.brotli", ".pq")):
        return "parquet"
    if re.search(r"[._]tfrecords?(\.gz)?$", name):
        return "tfrecord"
    return None


def gzipped(path: str) -> bool:
    """Whether a shard is GZIP-compressed (``.csv.gz``, ``.tfrecord.gz``, Beam's ``-of-N.gz``)."""
    return path.lower().endswith(".gz")


def tfrecord_compression(path: str) -> str:
    """``TFRecordDataset``'s ``compression_type`` for a shard: ``GZIP`` or ``""``."""
    return "GZIP" if gzipped(path) else ""


@contextlib.contextmanager
def open_bytes(path: str) -> Iterator:
    """A shard's bytes, decompressed when it is gzipped (local or ``gs://``)."""
    with tf.io.gfile.GFile(path, "rb") as raw:
        yield gzip.GzipFile(fileobj=raw) if gzipped(path) else raw


def _suffix_in(folder: str) -> str:
    """The extension of the first data file in ``folder`` (Hive-style partitions), or ''."""
    for name in sorted(tf.io.gfile.listdir(folder)):
        if format_of(name) is not None:
            lower = name.lower()
            return max((e for e in SUPPORTED_EXTENSIONS if lower.endswith(e)), key=len, default="")
    return ""


def _folders_hint(path: str, folders: list[str]) -> str:
    """Names a directory's folders (Hive-style partitions) and the pattern over their files."""
    shown = ", ".join(folders[:3]) + (", ..." if len(folders) > 3 else "")
    pattern = os.path.join(path, "*", "*" + _suffix_in(os.path.join(path, folders[0])))
    return f" It holds folders ({shown}): pass a pattern over their files, e.g. '{pattern}'."


def resolve_files(path: str) -> list[str]:
    """The data files behind ``path``: one file, a directory of shards, or a glob."""
    if any(ch in path for ch in "*?["):
        files = sorted(f for f in tf.io.gfile.glob(path) if not tf.io.gfile.isdir(f))
        if not files:
            raise FileNotFoundError(f"{path}: no files match this pattern.")
    elif tf.io.gfile.isdir(path):
        names = sorted(n.rstrip("/") for n in tf.io.gfile.listdir(path))
        # Hidden and marker files (.crc, _SUCCESS) are written by Spark/Beam next to the shards.
        entries = [os.path.join(path, n) for n in names if not n.startswith((".", "_"))]
        files = [f for f in entries if not tf.io.gfile.isdir(f)]
        if not files:
            folders = [os.path.basename(f) for f in entries if f not in files]
            hint = _folders_hint(path, folders) if folders else ""
            raise FileNotFoundError(f"{path}: the directory holds no data files.{hint}")
    elif tf.io.gfile.exists(path):
        files = [path]
    else:
        raise FileNotFoundError(f"{path}: no such file or directory.")
    unsupported = [f for f in files if format_of(f) is None]
    if unsupported:
        raise ValueError(
            f"{', '.join(unsupported[:5])}: unsupported file extension. Supported: "
            f"{', '.join(SUPPORTED_EXTENSIONS)} (or a directory / glob of such shards)."
        )
    formats = {format_of(f) for f in files}
    if len(formats) > 1:
        raise ValueError(f"{path}: shards mix formats {sorted(formats)}; use one format per table.")
    return files
