"""Execution parameters -> ``SelectionConfig`` and the shell's own settings, validated."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

from tfx.utils import import_utils

from recsel import params
from recsel.model.tower import load_tower_fn
from recsel.spec.config import SelectionConfig
from recsel.tfx import spec


@dataclasses.dataclass(frozen=True)
class SelectorParams:
    """The selector's execution parameters, parsed.

    Args:
        label_key: Label feature in the schema.
        train_split: Split the selection model trains on.
        eval_split: Split it is validated (and its AUC measured) on.
        embedding_dim: Full embedding width of every candidate.
        vocabulary_min_count: Values the statistics count fewer times map to OOV.
        nan_policy: ``raise`` or ``impute`` missing numeric values.
        config: Everything else, as the core's ``SelectionConfig``.
    """

    label_key: str
    train_split: str
    eval_split: str
    embedding_dim: int
    nan_policy: str
    config: SelectionConfig
    vocabulary_min_count: int = spec.DEFAULT_VOCABULARY_MIN_COUNT


def _is_plain(value: Any) -> bool:
    # RuntimeParameters and placeholders are resolved later; they cannot be checked here.
    return value is None or isinstance(value, (bool, int, float, str))


def parse_params(props: Mapping[str, Any]) -> SelectorParams:
    """Parses execution properties (None or absent keys take the defaults).

    Args:
        props: Execution properties, keyed as in ``recsel.tfx.spec``.

    Returns:
        The parsed parameters.

    Raises:
        ValueError: A missing label_key, or a value the core rejects (e.g. both
            num_features and feature_fraction); the message names the parameter.

    Example:
        >>> parse_params({"label_key": "clicked", "num_features": 8}).config.num_features
        8
    """
    label = props.get(spec.LABEL_KEY)
    if not label:
        raise ValueError(f"{spec.LABEL_KEY} is required: name the label feature of the schema.")
    # The shared parameters' defaults and checks are recsel.params' (as on the CLI).
    shared = {}
    for name in spec.INPUT_PARAMETERS:
        value = props.get(name)
        param = params.get(name)
        shared[name] = param.check(param.default if value is None else param.kind(value))
    try:
        config = SelectionConfig(**params.config_kwargs(props, params.TFX))
    except ValueError as err:
        raise ValueError(f"Invalid SequentialAttentionSelector parameters: {err}") from err
    return SelectorParams(
        label_key=str(label),
        train_split=props.get(spec.TRAIN_SPLIT_KEY) or spec.DEFAULT_TRAIN_SPLIT,
        eval_split=props.get(spec.EVAL_SPLIT_KEY) or spec.DEFAULT_EVAL_SPLIT,
        embedding_dim=shared[spec.EMBEDDING_DIM_KEY],
        nan_policy=shared[spec.NAN_POLICY_KEY],
        config=config,
        vocabulary_min_count=shared[spec.VOCABULARY_MIN_COUNT_KEY],
    )


def load_tower(props: Mapping[str, Any]) -> Callable | None:
    """The custom tower factory the ``module_file``/``module_path``/``tower_fn`` keys name.

    Follows the TFX user-module convention: ``module_path`` (set by TFX after packaging
    ``module_file`` into a wheel), else ``module_file``, else a fully-qualified ``tower_fn``.

    Args:
        props: Execution properties.

    Returns:
        The factory, or None for recsel's default tower.

    Raises:
        ValueError: The module or function cannot be loaded; the message names them.
    """
    module_path, module_file = props.get(spec.MODULE_PATH_KEY), props.get(spec.MODULE_FILE_KEY)
    fn_name = props.get(spec.TOWER_FN_KEY)
    try:
        if module_path:
            return import_utils.import_func_from_module(
                module_path, fn_name or spec.DEFAULT_TOWER_FN
            )
        if module_file:
            return import_utils.import_func_from_source(
                module_file, fn_name or spec.DEFAULT_TOWER_FN
            )
    except (ImportError, AttributeError, OSError) as err:
        where = module_path or module_file
        raise ValueError(
            f"Cannot load the selector's tower function {fn_name or spec.DEFAULT_TOWER_FN!r} from "
            f"{where!r}: {err}. Define it in the module, or set {spec.TOWER_FN_KEY} to its name."
        ) from err
    if fn_name:
        return load_tower_fn(fn_name)
    return None


def check_plain_params(props: Mapping[str, Any]) -> None:
    """Validates parameters at pipeline-authoring time when they are all plain values."""
    if all(_is_plain(v) for v in props.values()):
        parse_params(props)
