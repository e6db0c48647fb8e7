"""The ``recsel.FeatureSelection`` artifact: the recsel output contract as a TFX artifact.

Its directory holds what ``recsel.outputs.write.write_outputs`` writes: ``embedding_config.json``,
``selection.json``, ``feature_spec.json``, ``report.html`` and (a copy of the pruned)
``schema.pbtxt``. The TYPE_NAME fits Vertex AI Pipelines' artifact-title rule
(``<namespace>.<Title>``), so the type survives compilation for Vertex.

Example:
    >>> selection = load_selection(trainer_fn_args.custom_config["feature_selection_uri"])
    >>> selection.embedding_config["features"][0]["embedding_dim"]
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from tfx.types import artifact

from recsel.outputs.embedding_config import read_embedding_config
from recsel.outputs.write import (
    EMBEDDING_CONFIG_FILE,
    FEATURE_SPEC_FILE,
    REPORT_FILE,
    SELECTION_FILE,
    kept_features,
)
from recsel.spec.features import FeatureSet
from recsel.spec.result import SelectionResult


class FeatureSelection(artifact.Artifact):
    """Selected features and embedding widths (the recsel output directory).

    Files under ``uri``: ``embedding_config.json``, ``selection.json``,
    ``feature_spec.json``, ``report.html``, ``schema.pbtxt``. Custom properties:
    ``selected_features`` (JSON list), ``num_selected``, ``auc`` and, when a latency was
    measured, ``latency_ms_p50``.
    """

    TYPE_NAME = "recsel.FeatureSelection"


@dataclasses.dataclass(frozen=True)
class LoadedSelection:
    """A FeatureSelection artifact's contents, read and validated.

    Args:
        uri: The artifact directory.
        result: The ``SelectionResult`` (``selection.json``).
        candidates: The candidate ``FeatureSet`` the selection ran on.
        kept: The kept features at their chosen widths.
        embedding_config: The validated ``embedding_config.json``.
        report_path: Path of ``report.html``.
    """

    uri: str
    result: SelectionResult
    candidates: FeatureSet
    kept: FeatureSet
    embedding_config: dict[str, Any]
    report_path: str


def load_selection(uri: str) -> LoadedSelection:
    """Reads a FeatureSelection artifact directory (local or ``gs://``).

    Args:
        uri: The artifact's URI, e.g. ``fn_args.custom_config["feature_selection_uri"]``.

    Returns:
        The loaded selection.

    Raises:
        FileNotFoundError: A file of the contract is missing.
        ValueError: A file is invalid (the message names it).

    Example:
        >>> kept = load_selection(uri).kept.names
    """
    result = SelectionResult.from_json(os.path.join(uri, SELECTION_FILE))
    candidates = FeatureSet.from_json(os.path.join(uri, FEATURE_SPEC_FILE))
    return LoadedSelection(
        uri=uri,
        result=result,
        candidates=candidates,
        kept=kept_features(result, candidates),
        embedding_config=read_embedding_config(os.path.join(uri, EMBEDDING_CONFIG_FILE)),
        report_path=os.path.join(uri, REPORT_FILE),
    )
