"""Vocabulary files of the output contract: one value per line, as ``tft.vocabulary`` writes.

Every feature with a vocabulary (from statistics or from a frame) gets
``vocabularies/<feature>.txt`` in the output directory: line ``i`` is the value whose
lookup id is ``i`` (the ``FeatureSpec.vocabulary`` order; out-of-vocabulary rows follow
at ids ``len(vocabulary)`` and up, as the layer's lookup places them). ``feature_spec.json``
and ``embedding_config.json`` reference each file by its path relative to the output
directory (``vocabulary_file``), so a trainer can build its lookup from it
(``tf.keras.layers.StringLookup(vocabulary=path)``, ``tft``-style) without the inline
list. Hashed and numeric features have no file.

A value that holds a line break cannot be one line; such a feature gets no file (its
vocabulary stays inline in ``feature_spec.json``), with a warning naming it.

Example:
    >>> files = vocabulary_files(features)
    >>> write_vocabulary_files(features, files, staging_dir)
    >>> read_vocabulary_file(os.path.join(out, files["country"]), "string")
    ('de', 'fr')
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any

from recsel.atomic import atomic_write_text
from recsel.spec.features import FeatureSet, read_vocabulary_file  # noqa: F401  (re-exported)

VOCABULARY_DIR = "vocabularies"


def _safe_name(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", name).lstrip(".") or "feature"


def vocabulary_files(features: FeatureSet) -> dict[str, str]:
    """Feature name -> the relative path of its vocabulary file, for those that get one.

    File names are the feature names with characters outside ``[A-Za-z0-9._-]``
    replaced; a name that collides after that gets its position appended.

    Example:
        >>> vocabulary_files(features)
        {'country': 'vocabularies/country.txt'}
    """
    out: dict[str, str] = {}
    used: set[str] = set()
    for index, spec in enumerate(features):
        if spec.kind == "numeric" or spec.vocabulary is None:
            continue
        if any("\n" in str(v) or "\r" in str(v) for v in spec.vocabulary):
            warnings.warn(
                f"recsel: feature {spec.name!r} has vocabulary values with line breaks, so it "
                "gets no vocabulary file; its vocabulary stays inline in feature_spec.json.",
                stacklevel=2,
            )
            continue
        stem = _safe_name(spec.name)
        if stem.lower() in used:
            stem = f"{stem}-{index}"
        used.add(stem.lower())  # case-insensitive: the files may land on such a disk
        out[spec.name] = f"{VOCABULARY_DIR}/{stem}.txt"
    return out


def write_vocabulary_files(features: FeatureSet, files: dict[str, str], output_dir: str) -> None:
    """Writes each file of ``files`` (see ``vocabulary_files``) under ``output_dir``, atomically.

    Args:
        features: The features whose vocabularies are written.
        files: Feature name -> path relative to ``output_dir``.
        output_dir: The (staging) output directory.
    """
    import tensorflow as tf

    if files:
        tf.io.gfile.makedirs(os.path.join(output_dir, VOCABULARY_DIR))
    for name, relative in files.items():
        text = "".join(f"{value}\n" for value in features[name].vocabulary)
        atomic_write_text(os.path.join(output_dir, relative), text)


def with_vocabulary_files(data: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """A feature spec or embedding config dict with ``vocabulary_file`` on its features."""
    features = [
        {**entry, "vocabulary_file": files[entry["name"]]} if entry["name"] in files else entry
        for entry in data["features"]
    ]
    return {**data, "features": features}
